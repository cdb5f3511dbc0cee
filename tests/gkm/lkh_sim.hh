#pragma once
// In-process LKH group for tests: the key server's tree and simulated members that get their
// path at join (as registration would give it) and every rekey as encoded parts (as GSA_REKEY
// would carry them). No sockets.

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <unordered_map>
#include <vector>

#include "gkm/lkh.hh"

namespace msecgw::gkm::test {

inline constexpr size_t part_budget = 1500 - gsa_rekey_envelope_bytes;

struct lkh_group {
    lkh_tree tree;
    std::unordered_map<uint32_t, lkh_member_keys> members;  ///< by leaf Key ID

    static lkh_group make(const lkh_config& config)
    {
        result<lkh_tree> t = lkh_tree::create(config);
        EXPECT_TRUE(t.ok()) << (t ? "" : t.err().detail);
        return lkh_group{std::move(*t), {}};
    }

    /// Commits the pending batch, sends the parts through the codec, lets every continuing member
    /// apply them and gives each joiner its path. Returns the decoded rekey.
    lkh_rekey_index commit_and_deliver()
    {
        result<lkh_rekey> rekey = tree.commit();
        EXPECT_TRUE(rekey.ok()) << (rekey ? "" : rekey.err().detail);
        result<std::vector<bytes>> parts = encode_lkh_rekey(*rekey, part_budget);
        EXPECT_TRUE(parts.ok());
        for (const bytes& p : *parts) {
            EXPECT_LE(p.size(), part_budget);
        }
        result<lkh_rekey_index> index = decode_lkh_rekey(*parts);
        EXPECT_TRUE(index.ok()) << (index ? "" : index.err().detail);
        for (uint32_t leaf : rekey->left) {
            members.erase(leaf);
        }
        for (auto& [leaf, m] : members) {
            result<void> r = m.apply(*index);
            EXPECT_TRUE(r.ok()) << "member " << leaf << ": " << (r ? "" : r.err().detail);
        }
        for (uint32_t leaf : rekey->joined) {
            members.insert_or_assign(leaf, join_keys(leaf));
        }
        return std::move(*index);
    }

    lkh_member_keys join_keys(uint32_t leaf) const
    {
        result<std::vector<lkh_path_key>> path = tree.member_path(leaf);
        EXPECT_TRUE(path.ok());
        result<lkh_member_keys> m = lkh_member_keys::from_path(*path, tree.epoch());
        EXPECT_TRUE(m.ok());
        return std::move(*m);
    }

    /// Adds n members and commits.
    std::vector<uint32_t> add(size_t n)
    {
        std::vector<uint32_t> leaves;
        for (size_t i = 0; i < n; ++i) {
            result<uint32_t> leaf = tree.add_member();
            EXPECT_TRUE(leaf.ok());
            leaves.push_back(*leaf);
        }
        commit_and_deliver();
        return leaves;
    }

    /// Number of members whose group key is not the tree's.
    size_t members_without_group_key() const
    {
        result<secret> root = tree.group_key();
        size_t wrong = 0;
        for (const auto& [leaf, m] : members) {
            wrong += !root || !equal_constant_time(m.group_key(), root->view());
        }
        return wrong;
    }
};

} // namespace msecgw::gkm::test
