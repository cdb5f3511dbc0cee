// LKH key tree: shape, join/leave/batch rekey contents, member-side derivation, RFC 9838 encoding
// and split, SQLite persistence across a reopen.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>

#include <unistd.h>

#include "gkm/lkh_store.hh"
#include "lkh_sim.hh"

using namespace msecgw;
using namespace msecgw::gkm;
using msecgw::gkm::test::lkh_group;

namespace {

std::set<uint32_t> path_ids(const lkh_tree& t, uint32_t leaf)
{
    std::set<uint32_t> ids;
    for (uint32_t n = leaf;; n = (n - 2) / t.arity() + 1) {
        ids.insert(n);
        if (n == lkh_root_key_id) {
            return ids;
        }
    }
}

TEST(Lkh, ShapeFollowsArityAndMaxMembers)
{
    lkh_group binary = lkh_group::make({2, 1000, 16});
    EXPECT_EQ(binary.tree.depth(), 10u);
    EXPECT_EQ(binary.tree.capacity(), 1024u);
    EXPECT_EQ(binary.tree.first_leaf(), 1024u);
    lkh_group quad = lkh_group::make({4, 1000, 32});
    EXPECT_EQ(quad.tree.depth(), 5u);
    EXPECT_EQ(quad.tree.capacity(), 1024u);
    EXPECT_FALSE(lkh_tree::create({1, 1000, 16}).ok());
    EXPECT_FALSE(lkh_tree::create({2, 1000, 24}).ok());
    EXPECT_FALSE(lkh_tree::create({2, 1u << 30, 16}).ok());
}

TEST(Lkh, LeaveWrapsEachNewPathKeyUnderChildrenTheLeaverDoesNotKnow)
{
    lkh_group g = lkh_group::make({2, 16, 16});
    const std::vector<uint32_t> leaves = g.add(16);
    const uint32_t leaver = leaves[5];
    const std::set<uint32_t> leaver_path = path_ids(g.tree, leaver);
    ASSERT_TRUE(g.tree.remove_member(leaver).ok());
    result<lkh_rekey> rekey = g.tree.commit();
    ASSERT_TRUE(rekey.ok());
    // Depth 4: the parent under the sibling leaf only, then two wraps per level.
    EXPECT_EQ(rekey->keys.size(), 1u + 2u * 3u);
    uint32_t previous = UINT32_MAX;
    for (const wrapped_key& wk : rekey->keys) {
        EXPECT_TRUE(leaver_path.count(wk.key_id)) << "key " << wk.key_id << " is not on the leaver's path";
        EXPECT_NE(wk.kwk_id, leaver);
        EXPECT_NE(wk.kwk_id, wk.key_id);
        // A KWK on the leaver's path is a key replaced earlier in this array.
        if (leaver_path.count(wk.kwk_id)) {
            EXPECT_TRUE(std::any_of(rekey->keys.begin(), rekey->keys.end(),
                                    [&](const wrapped_key& o) { return &o < &wk && o.key_id == wk.kwk_id; }));
        }
        EXPECT_LE(wk.key_id, previous);  // bottom-up
        previous = wk.key_id;
    }
    EXPECT_EQ(rekey->left, std::vector<uint32_t>{leaver});
}

TEST(Lkh, JoinRekeysThePathUnderEachNodesPreviousKey)
{
    lkh_group g = lkh_group::make({2, 16, 16});
    g.add(5);
    result<secret> before = g.tree.group_key();
    result<uint32_t> joiner = g.tree.add_member();
    ASSERT_TRUE(joiner.ok());
    lkh_rekey_index rekey = g.commit_and_deliver();
    for (const wrapped_key& wk : rekey.keys()) {
        EXPECT_EQ(wk.key_id, wk.kwk_id);
    }
    // Nodes with old members below: the leaf's parent (shared with member 5) and its three ancestors.
    EXPECT_EQ(rekey.keys().size(), 4u);
    EXPECT_FALSE(equal_constant_time(before->view(), g.tree.group_key()->view()));
    EXPECT_EQ(g.members_without_group_key(), 0u);
    EXPECT_EQ(g.members.size(), 6u);
}

TEST(Lkh, BatchReplacesSharedPathKeysOnce)
{
    lkh_group g = lkh_group::make({2, 128, 16});
    const std::vector<uint32_t> leaves = g.add(100);
    size_t singles = 0;
    for (uint32_t leaver : {leaves[3], leaves[80]}) {
        lkh_group copy = lkh_group::make({2, 128, 16});
        copy.add(100);
        ASSERT_TRUE(copy.tree.remove_member(leaver).ok());
        singles += copy.tree.commit()->keys.size();
    }
    {
        lkh_group copy = lkh_group::make({2, 128, 16});
        copy.add(100);
        ASSERT_TRUE(copy.tree.add_member().ok());
        singles += copy.tree.commit()->keys.size();
    }
    ASSERT_TRUE(g.tree.remove_member(leaves[3]).ok());
    ASSERT_TRUE(g.tree.remove_member(leaves[80]).ok());
    ASSERT_TRUE(g.tree.add_member().ok());
    lkh_rekey_index rekey = g.commit_and_deliver();
    std::set<std::pair<uint32_t, uint32_t>> seen;
    size_t root_wraps = 0;
    for (const wrapped_key& wk : rekey.keys()) {
        EXPECT_TRUE(seen.insert({wk.key_id, wk.kwk_id}).second) << "wrapped twice: " << wk.key_id << "/" << wk.kwk_id;
        root_wraps += wk.key_id == lkh_root_key_id;
    }
    EXPECT_EQ(root_wraps, 2u);  // once under each child of the root
    EXPECT_LT(rekey.keys().size(), singles);
    EXPECT_EQ(g.members_without_group_key(), 0u);
    EXPECT_EQ(g.members.size(), 99u);
}

TEST(Lkh, AnyArityStaysCorrectUnderRandomChurn)
{
    for (unsigned arity : {3u, 4u, 8u}) {
        lkh_group g = lkh_group::make({arity, 300, 32});
        std::vector<uint32_t> live = g.add(200);
        std::mt19937 rng(arity);
        for (int batch = 0; batch < 12; ++batch) {
            for (int op = 0; op < 15; ++op) {
                if (rng() % 2 == 0 && !live.empty()) {
                    const size_t i = rng() % live.size();
                    ASSERT_TRUE(g.tree.remove_member(live[i]).ok());
                    live.erase(live.begin() + long(i));
                } else if (result<uint32_t> leaf = g.tree.add_member(); leaf) {
                    live.push_back(*leaf);
                }
            }
            g.commit_and_deliver();
            EXPECT_EQ(g.members.size(), live.size());
            EXPECT_EQ(g.members_without_group_key(), 0u) << "arity " << arity << " batch " << batch;
        }
    }
}

TEST(Lkh, CancelledJoinAndUnknownLeaveChangeNothing)
{
    lkh_group g = lkh_group::make({2, 8, 16});
    g.add(3);
    result<uint32_t> leaf = g.tree.add_member();
    ASSERT_TRUE(leaf.ok());
    ASSERT_TRUE(g.tree.remove_member(*leaf).ok());
    EXPECT_EQ(g.tree.pending(), 0u);
    EXPECT_FALSE(g.tree.commit().ok());
    EXPECT_FALSE(g.tree.remove_member(*leaf).ok());
    EXPECT_FALSE(g.tree.remove_member(lkh_root_key_id).ok());
    // The cancelled leaf is handed out again.
    EXPECT_EQ(*g.tree.add_member(), *leaf);
}

TEST(Lkh, FullTreeRefusesAJoin)
{
    lkh_group g = lkh_group::make({2, 4, 16});
    g.add(4);
    EXPECT_FALSE(g.tree.add_member().ok());
}

TEST(Lkh, MemberRefusesARekeyAfterAMissedOne)
{
    lkh_group g = lkh_group::make({2, 16, 16});
    const std::vector<uint32_t> leaves = g.add(8);
    lkh_member_keys stale = g.join_keys(leaves[0]);
    const bytes old_root(stale.group_key().begin(), stale.group_key().end());
    ASSERT_TRUE(g.tree.remove_member(leaves[7]).ok());
    g.commit_and_deliver();
    ASSERT_TRUE(g.tree.remove_member(leaves[6]).ok());
    lkh_rekey_index second = g.commit_and_deliver();
    result<void> r = stale.apply(second);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.err().detail.find("re-register"), std::string::npos);
    EXPECT_TRUE(equal_constant_time(stale.group_key(), old_root));  // keys kept
}

TEST(Lkh, RekeySplitsIntoPartsThatFitAndDecodeInAnyOrder)
{
    lkh_group g = lkh_group::make({2, 1024, 32});
    const std::vector<uint32_t> leaves = g.add(1024);
    for (size_t i = 0; i < leaves.size(); i += 9) {
        ASSERT_TRUE(g.tree.remove_member(leaves[i]).ok());
    }
    result<lkh_rekey> rekey = g.tree.commit();
    ASSERT_TRUE(rekey.ok());
    result<std::vector<bytes>> parts = encode_lkh_rekey(*rekey, 600);
    ASSERT_TRUE(parts.ok());
    ASSERT_GT(parts->size(), 5u);
    for (const bytes& p : *parts) {
        EXPECT_LE(p.size(), 600u);
    }
    std::vector<bytes> shuffled = *parts;
    std::reverse(shuffled.begin(), shuffled.end());
    result<lkh_rekey_index> index = decode_lkh_rekey(shuffled);
    ASSERT_TRUE(index.ok());
    ASSERT_EQ(index->keys().size(), rekey->keys.size());
    for (size_t i = 0; i < rekey->keys.size(); ++i) {
        EXPECT_EQ(index->keys()[i].key_id, rekey->keys[i].key_id);
        EXPECT_EQ(index->keys()[i].kwk_id, rekey->keys[i].kwk_id);
        EXPECT_EQ(index->keys()[i].wrapped, rekey->keys[i].wrapped);
    }
    EXPECT_EQ(index->epoch(), rekey->epoch);

    std::vector<bytes> missing(parts->begin() + 1, parts->end());
    EXPECT_FALSE(decode_lkh_rekey(missing).ok());
    std::vector<bytes> twice = *parts;
    twice.back() = twice.front();
    EXPECT_FALSE(decode_lkh_rekey(twice).ok());
    EXPECT_FALSE(encode_lkh_rekey(*rekey, 40).ok());
}

TEST(Lkh, RegistrationPathRoundTripsUnderTheWrapKey)
{
    lkh_group g = lkh_group::make({2, 64, 16});
    const std::vector<uint32_t> leaves = g.add(20);
    result<std::vector<lkh_path_key>> path = g.tree.member_path(leaves[11]);
    ASSERT_TRUE(path.ok());
    const secret gsk_w = random_secret(32);
    result<std::vector<attribute>> attrs = encode_lkh_path(*path, gsk_w.view());
    ASSERT_TRUE(attrs.ok());
    ASSERT_EQ(attrs->size(), g.tree.depth() + 1);
    result<std::vector<lkh_path_key>> back = decode_lkh_path(*attrs, gsk_w.view());
    ASSERT_TRUE(back.ok());
    ASSERT_EQ(back->size(), path->size());
    for (size_t i = 0; i < path->size(); ++i) {
        EXPECT_EQ((*back)[i].key_id, (*path)[i].key_id);
        EXPECT_TRUE(equal_constant_time((*back)[i].key.view(), (*path)[i].key.view()));
    }
    EXPECT_EQ(back->back().key_id, lkh_root_key_id);
    EXPECT_FALSE(decode_lkh_path(*attrs, random_secret(32).view()).ok());
}

class LkhStore : public ::testing::Test {
protected:
    void SetUp() override
    {
        dir = std::filesystem::temp_directory_path() / ("lkh_store_test_" + std::to_string(::getpid()));
        std::filesystem::remove_all(dir);
        std::filesystem::create_directories(dir);
        path = (dir / "gcks.db").string();
    }
    void TearDown() override { std::filesystem::remove_all(dir); }
    lkh_store open_store() const
    {
        result<lkh_store> s = lkh_store::open(path, storage_key.clone());
        EXPECT_TRUE(s.ok()) << (s ? "" : s.err().detail);
        return std::move(*s);
    }

    std::filesystem::path dir;
    std::string path;
    secret storage_key = random_secret(32);
};

TEST_F(LkhStore, RestartReloadsTheTreeAndMembersKeepDeriving)
{
    lkh_group g = lkh_group::make({2, 128, 16});
    std::vector<uint32_t> leaves = g.add(100);
    {
        lkh_store store = open_store();
        ASSERT_TRUE(store.save_tree(7, g.tree).ok());
        ASSERT_TRUE(g.tree.remove_member(leaves[10]).ok());
        ASSERT_TRUE(g.tree.add_member().ok());
        result<lkh_rekey> rekey = g.tree.commit();
        ASSERT_TRUE(rekey.ok());
        ASSERT_TRUE(store.save_rekey(7, g.tree, *rekey).ok());
        EXPECT_FALSE(store.save_rekey(7, g.tree, *rekey).ok());  // already at that epoch
        result<std::vector<bytes>> parts = encode_lkh_rekey(*rekey, 1300);
        result<lkh_rekey_index> index = decode_lkh_rekey(*parts);
        g.members.erase(leaves[10]);
        for (auto& [leaf, m] : g.members) {
            ASSERT_TRUE(m.apply(*index).ok());
        }
    }
    // The root key is not in the file in clear.
    result<secret> root = g.tree.group_key();
    std::ifstream in(path, std::ios::binary);
    const std::string file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(file.find(std::string(root->view().begin(), root->view().end())), std::string::npos);

    lkh_store reopened = open_store();
    result<std::optional<lkh_tree>> loaded = reopened.load(7);
    ASSERT_TRUE(loaded.ok()) << (loaded ? "" : loaded.err().detail);
    ASSERT_TRUE(loaded->has_value());
    lkh_tree& t = **loaded;
    EXPECT_EQ(t.epoch(), g.tree.epoch());
    EXPECT_EQ(t.members(), 100u);
    EXPECT_EQ(t.member_leaves(), g.tree.member_leaves());
    EXPECT_TRUE(equal_constant_time(t.group_key()->view(), root->view()));
    EXPECT_FALSE(reopened.load(8)->has_value());

    // The reloaded tree rekeys members who never noticed the restart.
    g.tree = std::move(t);
    ASSERT_TRUE(g.tree.remove_member(leaves[20]).ok());
    g.members.erase(leaves[20]);
    g.commit_and_deliver();
    EXPECT_EQ(g.members_without_group_key(), 0u);

    EXPECT_FALSE(lkh_store::open(path, random_secret(32)).ok());
}

} // namespace
