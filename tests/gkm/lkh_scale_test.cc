// [E2] acceptance 2: correctness at scale. 10^5 simulated members in-process (no sockets), 1,000
// random joins and leaves in batches of growing size. After every batch every current member has
// applied the rekey (each looks up only the keys wrapped under its own path keys) and holds the
// current root; every member evicted so far fails to derive it.
#include <gtest/gtest.h>

#include "lkh_sim.hh"

using namespace msecgw;
using namespace msecgw::gkm;
using msecgw::gkm::test::lkh_group;

namespace {

constexpr size_t initial_members = 100000;
constexpr size_t batch_sizes[] = {1, 9, 40, 100, 150, 200, 250, 250};

TEST(LkhScale, HundredThousandMembersThousandChangesInBatches)
{
    lkh_group g = lkh_group::make({2, 1u << 17, 16});
    std::vector<uint32_t> live = g.add(initial_members);
    ASSERT_EQ(g.members.size(), initial_members);
    ASSERT_EQ(g.members_without_group_key(), 0u);

    std::mt19937 rng(20250607);
    std::vector<lkh_member_keys> evicted;
    size_t changes = 0;
    size_t joins = 0;
    for (size_t batch_size : batch_sizes) {
        std::vector<lkh_member_keys> evicted_now;
        for (size_t op = 0; op < batch_size; ++op) {
            if (rng() % 2 == 0) {
                const size_t i = rng() % live.size();
                ASSERT_TRUE(g.tree.remove_member(live[i]).ok());
                auto it = g.members.find(live[i]);
                evicted_now.push_back(std::move(it->second));
                g.members.erase(it);
                live[i] = live.back();
                live.pop_back();
            } else {
                result<uint32_t> leaf = g.tree.add_member();
                ASSERT_TRUE(leaf.ok());
                live.push_back(*leaf);
                ++joins;
            }
        }
        changes += batch_size;
        const lkh_rekey_index rekey = g.commit_and_deliver();
        const secret root = g.tree.group_key().value();

        // Every current member, checked after every batch.
        ASSERT_EQ(g.members.size(), live.size());
        ASSERT_EQ(g.tree.members(), live.size());
        ASSERT_EQ(g.members_without_group_key(), 0u) << "after " << changes << " changes";
        // Members evicted in this batch try the rekey that follows their eviction.
        for (lkh_member_keys& m : evicted_now) {
            EXPECT_FALSE(m.apply(rekey).ok()) << "evicted leaf " << m.leaf_id() << " derived the root";
            evicted.push_back(std::move(m));
        }
        for (const lkh_member_keys& m : evicted) {
            ASSERT_FALSE(equal_constant_time(m.group_key(), root.view())) << "evicted leaf " << m.leaf_id();
        }
    }
    EXPECT_EQ(changes, 1000u);
    EXPECT_GT(evicted.size(), 400u);
    EXPECT_GT(joins, 400u);
}

} // namespace
