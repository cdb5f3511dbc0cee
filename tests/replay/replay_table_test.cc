#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <tuple>

#include "replay/replay.hh"

using namespace msecgw::replay;

namespace {

uint8_t v4a[4] = {10, 1, 2, 3};
uint8_t v4b[4] = {10, 1, 2, 4};
uint8_t v6a[16] = {10, 1, 2, 3}; // same leading bytes as v4a, different family

} // namespace

TEST(ReplayTable, InsertFindCheck)
{
    replay_table t(16, 1024);
    const replay_key k = replay_key::v4(3, v4a);
    EXPECT_EQ(t.find(k), nullptr);
    EXPECT_EQ(t.check(k, 0), verdict::zero);
    EXPECT_EQ(t.check(k, 12345), verdict::ok);
    EXPECT_EQ(t.size(), 0u); // check never inserts
    replay_window* w = t.find_or_insert(k, 1024);
    ASSERT_NE(w, nullptr);
    EXPECT_EQ(w->size(), 1024u);
    EXPECT_EQ(t.find(k), w);
    EXPECT_EQ(t.find_or_insert(k, 64), w); // existing window keeps its size
    EXPECT_EQ(w->size(), 1024u);
    ASSERT_EQ(w->update(500), verdict::ok);
    EXPECT_EQ(t.check(k, 500), verdict::replayed);
    EXPECT_EQ(t.size(), 1u);
}

TEST(ReplayTable, KeysDoNotCollide)
{
    replay_table t(64, 64);
    const replay_key keys[] = {
        replay_key::v4(1, v4a), replay_key::v4(1, v4b), replay_key::v4(2, v4a),
        replay_key::v6(1, v6a), replay_key::v6(2, v6a),
    };
    std::set<replay_window*> windows;
    for (const replay_key& k : keys) {
        replay_window* w = t.find_or_insert(k, 64);
        ASSERT_NE(w, nullptr);
        windows.insert(w);
        ASSERT_EQ(w->update(9), verdict::ok);
    }
    EXPECT_EQ(windows.size(), std::size(keys));
    for (const replay_key& k : keys) {
        EXPECT_EQ(t.check(k, 9), verdict::replayed);
        EXPECT_EQ(t.check(k, 10), verdict::ok);
    }
}

TEST(ReplayTable, WindowSizesPerEntry)
{
    replay_table t(4, 1024);
    EXPECT_EQ(t.find_or_insert(replay_key::v4(1, v4a), 64)->size(), 64u);
    EXPECT_EQ(t.find_or_insert(replay_key::v4(2, v4a), 1000)->size(), 1024u);
    EXPECT_FALSE(t.find_or_insert(replay_key::v4(3, v4a), 0)->enabled());
    replay_window* big = t.find_or_insert(replay_key::v4(4, v4a), 2048);
    ASSERT_NE(big, nullptr);
    EXPECT_EQ(big->update(1), verdict::too_old); // above max_window_size: fails closed
}

TEST(ReplayTable, FullReturnsNullptr)
{
    replay_table t(8, 64);
    uint8_t a[4] = {192, 0, 2, 0};
    for (uint8_t i = 0; i < 8; ++i) {
        a[3] = i;
        ASSERT_NE(t.find_or_insert(replay_key::v4(7, a), 64), nullptr);
    }
    EXPECT_EQ(t.size(), 8u);
    a[3] = 200;
    EXPECT_EQ(t.find_or_insert(replay_key::v4(7, a), 64), nullptr);
    a[3] = 3;
    EXPECT_NE(t.find_or_insert(replay_key::v4(7, a), 64), nullptr); // existing still found
}

TEST(ReplayTable, EraseSa)
{
    replay_table t(512, 128);
    uint8_t a[16] = {0x20, 0x01, 0x0d, 0xb8};
    for (uint32_t slot = 1; slot <= 3; ++slot) {
        for (uint8_t i = 0; i < 100; ++i) {
            a[15] = i;
            replay_window* w = t.find_or_insert(replay_key::v6(slot, a), 128);
            ASSERT_NE(w, nullptr);
            ASSERT_EQ(w->update(slot * 1000 + i), verdict::ok);
        }
    }
    EXPECT_EQ(t.erase_sa(2), 100u);
    EXPECT_EQ(t.erase_sa(2), 0u);
    EXPECT_EQ(t.size(), 200u);
    for (uint32_t slot = 1; slot <= 3; ++slot) {
        for (uint8_t i = 0; i < 100; ++i) {
            a[15] = i;
            replay_window* w = t.find(replay_key::v6(slot, a));
            if (slot == 2) {
                ASSERT_EQ(w, nullptr);
                continue;
            }
            ASSERT_NE(w, nullptr);
            EXPECT_EQ(w->top(), slot * 1000 + i);
        }
    }
    a[15] = 5;
    replay_window* fresh = t.find_or_insert(replay_key::v6(2, a), 128);
    ASSERT_NE(fresh, nullptr);
    EXPECT_EQ(fresh->top(), 0u);
    EXPECT_EQ(fresh->update(2005), verdict::ok);
}

TEST(ReplayTable, RandomInsertEraseAgainstMap)
{
    replay_table t(300, 64, 0x1234);
    std::map<std::tuple<uint32_t, uint8_t, uint32_t>, uint32_t> ref; // (slot, family, src) -> top
    std::mt19937 rng(7);
    for (int round = 0; round < 40; ++round) {
        for (int i = 0; i < 200; ++i) {
            const uint32_t slot = rng() % 6;
            const uint32_t src = rng() % 64;
            const bool v6 = rng() % 2 != 0;
            uint8_t a[16] = {};
            std::memcpy(a, &src, 4);
            const replay_key k = v6 ? replay_key::v6(slot, a) : replay_key::v4(slot, a);
            const auto rk = std::make_tuple(slot, k.family, src);
            replay_window* w = t.find_or_insert(k, 64);
            if (w == nullptr) {
                ASSERT_EQ(ref.count(rk), 0u);
                continue;
            }
            const uint32_t seq = ref.count(rk) != 0 ? ref[rk] + 1 : 1 + rng() % 1000;
            ASSERT_EQ(w->update(seq), verdict::ok);
            ref[rk] = seq;
        }
        const uint32_t victim = rng() % 6;
        uint32_t expected = 0;
        for (auto it = ref.begin(); it != ref.end();) {
            if (std::get<0>(it->first) == victim) {
                it = ref.erase(it);
                ++expected;
            } else {
                ++it;
            }
        }
        ASSERT_EQ(t.erase_sa(victim), expected);
        ASSERT_EQ(t.size(), ref.size());
        for (const auto& [rk, top] : ref) {
            uint8_t a[16] = {};
            std::memcpy(a, &std::get<2>(rk), 4);
            const uint32_t slot = std::get<0>(rk);
            const replay_key k = std::get<1>(rk) == 6 ? replay_key::v6(slot, a) : replay_key::v4(slot, a);
            const replay_window* w = t.find(k);
            ASSERT_NE(w, nullptr);
            ASSERT_EQ(w->top(), top);
        }
    }
}
