#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <set>
#include <vector>

#include "replay/replay.hh"

using namespace msecgw::replay;

namespace {

/// A window together with its storage, for tests.
struct owned_window {
    explicit owned_window(uint32_t size, uint32_t extra_words = 0)
        : bits(storage_words(size) + extra_words, ~uint64_t{0}), // garbage: reset must clear
          w(bits, size)
    {
    }
    std::vector<uint64_t> bits;
    replay_window w;
};

/// Reference model: RFC 4303 §3.4.3 spelled out with a set of accepted numbers.
class model {
public:
    explicit model(uint32_t size) : _size(size) {}

    verdict check(uint32_t seq) const
    {
        if (seq == 0) {
            return verdict::zero;
        }
        if (seq > _top) {
            return verdict::ok;
        }
        if (uint64_t{_top} - seq >= _size) {
            return verdict::too_old;
        }
        return _seen.count(seq) != 0 ? verdict::replayed : verdict::ok;
    }

    verdict update(uint32_t seq)
    {
        const verdict v = check(seq);
        if (v == verdict::ok) {
            _seen.insert(seq);
            if (seq > _top) {
                _top = seq;
                // Forget what can no longer matter, to keep the set small.
                const uint32_t floor = _top >= _size ? _top - _size : 0;
                _seen.erase(_seen.begin(), _seen.upper_bound(floor));
            }
        }
        return v;
    }

    uint32_t top() const { return _top; }

private:
    uint32_t _size;
    uint32_t _top = 0;
    std::set<uint32_t> _seen;
};

} // namespace

TEST(ReplayWindow, SizesRoundUpToMultiplesOf64)
{
    EXPECT_EQ(round_window_size(0), 0u);
    EXPECT_EQ(round_window_size(1), 64u);
    EXPECT_EQ(round_window_size(64), 64u);
    EXPECT_EQ(round_window_size(65), 128u);
    EXPECT_EQ(round_window_size(1000), 1024u);
    EXPECT_EQ(round_window_size(1024), 1024u);
    EXPECT_EQ(round_window_size(65536), 65536u);
    EXPECT_EQ(round_window_size(65537), 65536u);
    EXPECT_EQ(storage_words(0), 0u);
    EXPECT_EQ(storage_words(64), 2u);
    EXPECT_EQ(storage_words(1000), 17u);
    EXPECT_EQ(storage_words(65536), 1025u);
    EXPECT_EQ(owned_window(100).w.size(), 128u);
}

TEST(ReplayWindow, StartsEmptyAndAcceptsAnyFirstSeq)
{
    for (uint32_t first : {1u, 2u, 1000u, 0x7fffffffu, 0x80000000u, 0xffffffffu}) {
        owned_window o(64);
        EXPECT_EQ(o.w.top(), 0u);
        EXPECT_EQ(o.w.check(first), verdict::ok);
        EXPECT_EQ(o.w.update(first), verdict::ok);
        EXPECT_EQ(o.w.top(), first);
        EXPECT_EQ(o.w.update(first), verdict::replayed);
    }
}

TEST(ReplayWindow, SeqZeroIsNeverValid)
{
    owned_window o(64);
    EXPECT_EQ(o.w.check(0), verdict::zero);
    EXPECT_EQ(o.w.update(0), verdict::zero);
    EXPECT_EQ(o.w.top(), 0u);
    ASSERT_EQ(o.w.update(5), verdict::ok);
    EXPECT_EQ(o.w.check(0), verdict::zero);
    EXPECT_EQ(o.w.update(0), verdict::zero);
}

TEST(ReplayWindow, InOrder)
{
    for (uint32_t size : {64u, 1024u}) {
        owned_window o(size);
        for (uint32_t s = 1; s <= 5000; ++s) {
            ASSERT_EQ(o.w.check(s), verdict::ok) << s;
            ASSERT_EQ(o.w.update(s), verdict::ok) << s;
        }
        EXPECT_EQ(o.w.top(), 5000u);
        for (uint32_t s = 5000 - size + 1; s <= 5000; ++s) {
            ASSERT_EQ(o.w.check(s), verdict::replayed) << s;
        }
        EXPECT_EQ(o.w.check(5000 - size), verdict::too_old);
        EXPECT_EQ(o.w.check(1), verdict::too_old);
    }
}

TEST(ReplayWindow, ReorderWithinWindow)
{
    owned_window o(1024);
    ASSERT_EQ(o.w.update(3000), verdict::ok);
    for (uint32_t s = 2999; s > 3000 - 1024; --s) { // newest first
        ASSERT_EQ(o.w.update(s), verdict::ok) << s;
    }
    EXPECT_EQ(o.w.top(), 3000u);
    EXPECT_EQ(o.w.update(3000 - 1024), verdict::too_old);
    for (uint32_t s = 3000 - 1023; s <= 3000; ++s) {
        ASSERT_EQ(o.w.check(s), verdict::replayed) << s;
    }
}

TEST(ReplayWindow, WindowEdges)
{
    for (uint32_t size : {64u, 128u, 1024u, 65536u}) {
        owned_window o(size);
        const uint32_t top = 200000;
        ASSERT_EQ(o.w.update(top), verdict::ok);
        EXPECT_EQ(o.w.check(top - size + 1), verdict::ok) << size;
        EXPECT_EQ(o.w.check(top - size), verdict::too_old) << size;
        EXPECT_EQ(o.w.update(top - size + 1), verdict::ok) << size;
        EXPECT_EQ(o.w.update(top - size + 1), verdict::replayed) << size;
        EXPECT_EQ(o.w.check(top + 1), verdict::ok) << size;
    }
}

TEST(ReplayWindow, JumpsForgetOnlyWhatLeftTheWindow)
{
    owned_window o(64);
    std::set<uint32_t> accepted;
    for (uint32_t s = 1; s <= 128; ++s) {
        ASSERT_EQ(o.w.update(s), verdict::ok);
        accepted.insert(s);
    }
    // Every jump lands where ring slots alias older buckets; stale bits must not show through.
    for (uint32_t top : {130u, 191u, 192u, 256u, 1000u, 1064u}) {
        ASSERT_EQ(o.w.update(top), verdict::ok);
        accepted.insert(top);
        for (uint32_t s = top - 63; s < top; ++s) {
            const verdict want = accepted.count(s) != 0 ? verdict::replayed : verdict::ok;
            ASSERT_EQ(o.w.check(s), want) << "top " << top << " seq " << s;
        }
    }
}

TEST(ReplayWindow, JumpsLargerThanWindowAndHalfTheSpace)
{
    owned_window o(1024);
    ASSERT_EQ(o.w.update(1), verdict::ok);
    ASSERT_EQ(o.w.update(1 + 1024 + 5), verdict::ok); // > W
    EXPECT_EQ(o.w.check(1), verdict::too_old);
    EXPECT_EQ(o.w.check(10), verdict::ok);
    ASSERT_EQ(o.w.update(0x80000005u), verdict::ok); // > 2^31: no ESN, plain 32-bit order
    EXPECT_EQ(o.w.top(), 0x80000005u);
    EXPECT_EQ(o.w.check(1030), verdict::too_old);
    EXPECT_EQ(o.w.check(0x80000004u), verdict::ok);
    ASSERT_EQ(o.w.update(0xffffffffu), verdict::ok);
    EXPECT_EQ(o.w.update(0xffffffffu), verdict::replayed);
    EXPECT_EQ(o.w.check(0xffffffffu - 1023), verdict::ok);
    EXPECT_EQ(o.w.check(0xffffffffu - 1024), verdict::too_old);
    EXPECT_EQ(o.w.check(0x80000005u), verdict::too_old);
    EXPECT_EQ(o.w.check(1), verdict::too_old);
}

TEST(ReplayWindow, CheckDoesNotChangeStateUpdateRechecks)
{
    owned_window o(64);
    EXPECT_EQ(o.w.check(7), verdict::ok);
    EXPECT_EQ(o.w.check(7), verdict::ok);
    EXPECT_EQ(o.w.top(), 0u);
    // Two packets with seq 7 in one burst: both pass check before crypto...
    const verdict a = o.w.check(7);
    const verdict b = o.w.check(7);
    EXPECT_EQ(a, verdict::ok);
    EXPECT_EQ(b, verdict::ok);
    // ...but only the first to be updated after its ICV verified is accepted.
    EXPECT_EQ(o.w.update(7), verdict::ok);
    EXPECT_EQ(o.w.update(7), verdict::replayed);
    // A packet that was fine at check time can leave the window before its update.
    EXPECT_EQ(o.w.check(8), verdict::ok);
    EXPECT_EQ(o.w.update(8 + 64), verdict::ok);
    EXPECT_EQ(o.w.update(8), verdict::too_old);
}

TEST(ReplayWindow, DisabledAcceptsEverything)
{
    owned_window o(0);
    EXPECT_FALSE(o.w.enabled());
    EXPECT_EQ(o.w.size(), 0u);
    for (uint32_t s : {0u, 1u, 1u, 5u, 0xffffffffu, 1u}) {
        EXPECT_EQ(o.w.check(s), verdict::ok);
        EXPECT_EQ(o.w.update(s), verdict::ok);
    }
    replay_window dflt;
    EXPECT_EQ(dflt.update(3), verdict::ok);
    EXPECT_EQ(dflt.update(3), verdict::ok);
}

TEST(ReplayWindow, TooLittleStorageFailsClosed)
{
    std::vector<uint64_t> bits(storage_words(1024) - 1);
    replay_window w(bits, 1024);
    EXPECT_FALSE(w.enabled());
    EXPECT_EQ(w.check(1), verdict::too_old);
    EXPECT_EQ(w.update(1), verdict::too_old);
}

TEST(ReplayWindow, ResetEmptiesTheWindow)
{
    owned_window o(64, 1); // room for 128
    ASSERT_EQ(o.w.update(100), verdict::ok);
    o.w.reset(o.bits, 128);
    EXPECT_EQ(o.w.size(), 128u);
    EXPECT_EQ(o.w.top(), 0u);
    EXPECT_EQ(o.w.update(100), verdict::ok);
    EXPECT_EQ(o.w.update(1), verdict::ok);
}

class ReplayModel : public ::testing::TestWithParam<uint32_t> {};

TEST_P(ReplayModel, MatchesReference)
{
    const uint32_t size = round_window_size(GetParam());
    std::mt19937_64 rng(0x5eed0000u + GetParam());
    owned_window o(GetParam());
    model ref(size);
    auto pick = [&]() -> uint32_t {
        const uint32_t top = ref.top();
        switch (rng() % 16) {
        case 0: return 0;
        case 1: return static_cast<uint32_t>(rng()); // anywhere
        case 2: return top + static_cast<uint32_t>(rng() % (3 * uint64_t{size})); // jump
        case 3: case 4: return top + 1 + static_cast<uint32_t>(rng() % 4);
        default: { // around and just beyond the left edge
            const uint32_t back = static_cast<uint32_t>(rng() % (size + size / 4 + 2));
            return top >= back ? top - back : 1;
        }
        }
    };
    for (int i = 0; i < 200000; ++i) {
        const uint32_t seq = pick();
        ASSERT_EQ(o.w.check(seq), ref.check(seq)) << "op " << i << " seq " << seq;
        if (rng() % 4 != 0) { // some packets fail their ICV and are never updated
            ASSERT_EQ(o.w.update(seq), ref.update(seq)) << "op " << i << " seq " << seq;
        }
        ASSERT_EQ(o.w.top(), ref.top());
    }
}

INSTANTIATE_TEST_SUITE_P(Sizes, ReplayModel, ::testing::Values(1u, 64u, 100u, 1024u, 65536u));
