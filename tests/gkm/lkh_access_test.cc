// [E2] acceptance 1: forward and backward access control with real data. Every epoch the key
// server multicasts the LKH rekey (encoded parts), a TEK wrapped under the new root (SA_KEY,
// KWK ID 1) and a data packet sealed under that TEK with AES-GCM. The adversary records all of it
// and holds every key it was ever given, closed under unwrapping everything recorded.
#include <gtest/gtest.h>

#include "lkh_sim.hh"

using namespace msecgw;
using namespace msecgw::gkm;
using msecgw::gkm::test::lkh_group;

namespace {

constexpr size_t tek_key_bytes = 16;

struct captured_epoch {
    std::vector<bytes> parts;  ///< the LKH rekey as multicast
    bytes wrapped_tek;         ///< TEK key ‖ salt wrapped under the root
    bytes iv;
    bytes packet;              ///< AES-128-GCM ciphertext ‖ ICV
    secret salt;               ///< given to the adversary for free
};

const bytes aad{0, 0, 0x10, 0x01, 0, 0, 0, 1};
const std::string payload = "multicast data for the current members only";

/// Commits the pending batch, delivers it to the simulated members and sends one data packet.
captured_epoch next_epoch(lkh_group& g)
{
    captured_epoch e;
    result<lkh_rekey> rekey = g.tree.commit();
    EXPECT_TRUE(rekey.ok());
    e.parts = *encode_lkh_rekey(*rekey, test::part_budget);
    result<lkh_rekey_index> index = decode_lkh_rekey(e.parts);
    for (uint32_t leaf : rekey->left) {
        g.members.erase(leaf);
    }
    for (auto& [leaf, m] : g.members) {
        EXPECT_TRUE(m.apply(*index).ok());
    }
    for (uint32_t leaf : rekey->joined) {
        g.members.insert_or_assign(leaf, g.join_keys(leaf));
    }
    const secret tek = random_secret(tek_key_bytes + gcm_salt_size);
    e.salt = tek.after(tek_key_bytes);
    e.wrapped_tek = *key_wrap(g.tree.group_key()->view(), tek.view());
    e.iv = random_bytes(gcm_iv_size);
    e.packet = *gcm_seal(tek.view(), e.iv, aad, as_bytes(payload));
    return e;
}

/// Everything an adversary holding `keys` gets from the recorded rekeys: unwraps until nothing new.
std::vector<secret> close_over(std::vector<secret> keys, std::span<const captured_epoch> recorded)
{
    std::vector<wrapped_key> all;
    for (const captured_epoch& e : recorded) {
        result<lkh_rekey_index> rekey = decode_lkh_rekey(e.parts);
        EXPECT_TRUE(rekey.ok());
        if (rekey) {
            all.insert(all.end(), rekey->keys().begin(), rekey->keys().end());
        }
    }
    for (bool grew = true; grew;) {
        grew = false;
        for (const wrapped_key& wk : all) {
            for (size_t i = 0; i < keys.size(); ++i) {
                result<secret> k = key_unwrap(keys[i].view(), wk.wrapped);
                if (!k) {
                    continue;
                }
                const bool known = std::any_of(keys.begin(), keys.end(), [&](const secret& h) {
                    return equal_constant_time(h.view(), k->view());
                });
                if (!known) {
                    keys.push_back(std::move(*k));
                    grew = true;
                }
            }
        }
    }
    return keys;
}

std::vector<secret> path_keys(const lkh_tree& t, uint32_t leaf)
{
    std::vector<secret> out;
    result<std::vector<lkh_path_key>> path = t.member_path(leaf);
    EXPECT_TRUE(path.ok());
    if (path) {
        for (lkh_path_key& k : path.value()) {
            out.push_back(std::move(k.key));
        }
    }
    return out;
}

/// True when some key opens the epoch's data: as the KWK of its TEK, or as the TEK itself.
bool decrypts(const std::vector<secret>& keys, const captured_epoch& e)
{
    for (const secret& k : keys) {
        if (result<secret> tek = key_unwrap(k.view(), e.wrapped_tek);
            tek && gcm_open(tek->view(), e.iv, aad, e.packet).ok()) {
            return true;
        }
        bytes as_tek(k.view().begin(), k.view().begin() + tek_key_bytes);
        as_tek.insert(as_tek.end(), e.salt.view().begin(), e.salt.view().end());
        if (gcm_open(as_tek, e.iv, aad, e.packet).ok()) {
            return true;
        }
    }
    return false;
}

bool opens_with_group_key(const lkh_member_keys& m, const captured_epoch& e)
{
    result<secret> tek = key_unwrap(m.group_key(), e.wrapped_tek);
    if (!tek) {
        return false;
    }
    result<secret> plain = gcm_open(tek->view(), e.iv, aad, e.packet);
    return plain && std::equal(plain->view().begin(), plain->view().end(), payload.begin(), payload.end());
}

/// n members added to g, their first epoch recorded.
std::vector<uint32_t> start(lkh_group& g, int n, std::vector<captured_epoch>& recorded)
{
    std::vector<uint32_t> leaves;
    for (int i = 0; i < n; ++i) {
        result<uint32_t> leaf = g.tree.add_member();
        EXPECT_TRUE(leaf.ok());
        leaves.push_back(leaf ? *leaf : 0);
    }
    recorded.push_back(next_epoch(g));
    return leaves;
}

TEST(LkhAccessControl, EvictedMemberCannotDecryptAfterTheNextRekey)
{
    lkh_group g = lkh_group::make({2, 64, 16});
    std::vector<captured_epoch> recorded;
    const std::vector<uint32_t> leaves = start(g, 24, recorded);
    const uint32_t evicted = leaves[9];
    const std::vector<secret> given = path_keys(g.tree, evicted);
    // Churn while it is a member: it follows every rekey and decrypts.
    for (int i = 0; i < 3; ++i) {
        ASSERT_TRUE(g.tree.remove_member(leaves[20 + i]).ok());
        ASSERT_TRUE(g.tree.add_member().ok());
        recorded.push_back(next_epoch(g));
        EXPECT_TRUE(opens_with_group_key(g.members.at(evicted), recorded.back()));
    }
    const size_t t = recorded.size();

    lkh_member_keys kept = g.join_keys(leaves[0]);  // a member that stays, for contrast
    lkh_member_keys evictee = g.join_keys(evicted);
    ASSERT_TRUE(g.tree.remove_member(evicted).ok());
    recorded.push_back(next_epoch(g));
    // Its own member-side derivation refuses, and every key it ever held opens nothing new.
    EXPECT_FALSE(evictee.apply(*decode_lkh_rekey(recorded.back().parts)).ok());
    ASSERT_TRUE(kept.apply(*decode_lkh_rekey(recorded.back().parts)).ok());
    EXPECT_TRUE(opens_with_group_key(kept, recorded.back()));

    for (int i = 0; i < 3; ++i) {
        ASSERT_TRUE(g.tree.add_member().ok());
        ASSERT_TRUE(g.tree.remove_member(leaves[1 + i]).ok());
        recorded.push_back(next_epoch(g));
    }
    // Every key it held up to t: what it was given at join, and all it could unwrap since.
    std::vector<secret> ever_held;
    for (const secret& k : given) {
        ever_held.push_back(k.clone());
    }
    ever_held = close_over(std::move(ever_held), std::span<const captured_epoch>(recorded).first(t));
    ASSERT_TRUE(decrypts(ever_held, recorded[t - 1])) << "the adversary must at least hold what it was given";
    const std::vector<secret> knowledge = close_over(std::move(ever_held), recorded);
    for (size_t e = t; e < recorded.size(); ++e) {
        EXPECT_FALSE(decrypts(knowledge, recorded[e])) << "epoch " << e;
    }
    const secret root = g.tree.group_key().value();
    for (const secret& k : knowledge) {
        EXPECT_FALSE(equal_constant_time(k.view(), root.view()));
    }
}

TEST(LkhAccessControl, JoinerCannotDecryptWhatWasSentBeforeItJoined)
{
    lkh_group g = lkh_group::make({2, 64, 16});
    std::vector<captured_epoch> recorded;
    const std::vector<uint32_t> leaves = start(g, 20, recorded);
    for (int i = 0; i < 3; ++i) {
        ASSERT_TRUE(g.tree.remove_member(leaves[i * 3]).ok());
        ASSERT_TRUE(g.tree.add_member().ok());
        recorded.push_back(next_epoch(g));
    }
    const size_t t = recorded.size();
    std::vector<secret> old_roots;
    old_roots.push_back(g.tree.group_key().value());

    // Joins into a free leaf whose neighbours are old members: it shares its upper path with them.
    const uint32_t joiner = *g.tree.add_member();
    recorded.push_back(next_epoch(g));
    std::vector<secret> knowledge = path_keys(g.tree, joiner);
    for (int i = 0; i < 3; ++i) {
        ASSERT_TRUE(g.tree.remove_member(leaves[10 + i]).ok());
        recorded.push_back(next_epoch(g));
        EXPECT_TRUE(opens_with_group_key(g.members.at(joiner), recorded.back()));
    }
    knowledge = close_over(std::move(knowledge), recorded);
    EXPECT_TRUE(decrypts(knowledge, recorded[t])) << "the joiner must decrypt from its join on";
    for (size_t e = 0; e < t; ++e) {
        EXPECT_FALSE(decrypts(knowledge, recorded[e])) << "epoch " << e;
    }
    for (const secret& k : knowledge) {
        EXPECT_FALSE(equal_constant_time(k.view(), old_roots.front().view()));
    }
}

} // namespace
