// Outbound IV layout (DESIGN.md invariant 1, RFC 6054): [Sender-ID][lane][counter], checked on
// the IVs out_sa builds, across counter blocks handed out by the IV store up to exhaustion.
#include <gtest/gtest.h>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "sa/sa_rt.hh"
#include "store/store.hh"

#include "../common/temp_dir.hh"

using namespace msecgw;

namespace {

const std::vector<uint8_t> key_material = {0xfe, 0xff, 0xe9, 0x92, 0x86, 0x65, 0x73, 0x1c, 0x6d, 0x6a,
                                           0x8f, 0x94, 0x67, 0x30, 0x83, 0x08, 0xca, 0xfe, 0xba, 0xbe};

config::sa_cfg out_cfg()
{
    config::sa_cfg c;
    c.name = "g1-out";
    c.spi = 0x1001;
    c.key = config::secret_bytes(key_material);
    return c;
}

crypto::engine& control_engine()
{
    static crypto::engine e = crypto::engine::create().value();
    return e;
}

std::shared_ptr<sa::out_sa> make(uint32_t sender_id, uint8_t bits)
{
    auto sa = sa::make_out_sa(out_cfg(), control_engine(), 1, sender_id, bits);
    EXPECT_TRUE(sa.ok()) << sa.err().detail;
    return sa.ok() ? sa.value() : nullptr;
}

/// Every field of `iv` where the layout puts it; the bits between counter and lane are zero.
void expect_layout(const sa::out_sa& sa, uint32_t sender_id, uint8_t bits, uint16_t lane, uint64_t ctr)
{
    const uint64_t iv = sa.iv(lane, ctr);
    SCOPED_TRACE("sender_id " + std::to_string(sender_id) + "/" + std::to_string(bits) + " lane " +
                 std::to_string(lane) + " ctr " + std::to_string(ctr));
    const uint8_t counter_bits = static_cast<uint8_t>(64 - bits - sa::lane_bits);
    EXPECT_EQ(sa.counter_bits, counter_bits);
    if (bits > 0) {
        EXPECT_EQ(iv >> (64 - bits), sender_id);
    }
    EXPECT_EQ((iv >> counter_bits) & ((uint64_t{1} << sa::lane_bits) - 1), lane);
    EXPECT_EQ(iv & ((uint64_t{1} << counter_bits) - 1), ctr);
    EXPECT_EQ((iv >> 32) & ((uint64_t{1} << (counter_bits - 32)) - 1), 0u) << "counter spilled above 32 bits";
}

class sa_rt_store : public ::testing::Test {
protected:
    test::temp_dir state_dir{"sa-rt-test"};
};

} // namespace

TEST(sa_rt, no_sender_id_puts_the_lane_in_the_top_bits)
{
    auto sa = make(0, 0);
    ASSERT_TRUE(sa);
    EXPECT_EQ(sa->iv_prefix, 0u);
    EXPECT_EQ(sa->counter_bits, 58);
    EXPECT_EQ(sa->counter_limit(), 0xffffffffu); // seq = ctr + 1 must fit 32 bits
    EXPECT_EQ(sa->iv(0, 0), 0u);
    EXPECT_EQ(sa->iv(1, 5), uint64_t{1} << 58 | 5);
    EXPECT_EQ(sa->iv(63, 0xfffffffe), uint64_t{63} << 58 | 0xfffffffe);
}

TEST(sa_rt, sender_id_fills_the_top_bits_of_every_iv)
{
    const uint64_t limit = 0xffffffff;
    for (uint8_t bits : {1, 8, 12, 16}) {
        const uint32_t top = (uint32_t{1} << bits) - 1;
        for (uint32_t id : {uint32_t{0}, uint32_t{1}, top / 3, top}) {
            auto sa = make(id, bits);
            ASSERT_TRUE(sa);
            EXPECT_EQ(sa->counter_limit(), limit);
            EXPECT_EQ(sa->iv_prefix, uint64_t{id} << (64 - bits));
            for (uint16_t lane : {0, 1, 37, 63}) {
                for (uint64_t ctr : {uint64_t{0}, uint64_t{1}, uint64_t{0xffff}, uint64_t{1} << 31, limit - 1}) {
                    expect_layout(*sa, id, bits, lane, ctr);
                }
            }
        }
    }
}

TEST(sa_rt, sender_id_must_fit_its_width)
{
    for (auto [id, bits] : {std::pair<uint32_t, uint8_t>{1, 0}, {256, 8}, {4096, 12}, {65536, 16}, {0, 17}}) {
        auto sa = sa::make_out_sa(out_cfg(), control_engine(), 1, id, bits);
        ASSERT_FALSE(sa.ok()) << id << "/" << int{bits};
        EXPECT_EQ(sa.err().code, errc::config_bad_value);
        EXPECT_NE(sa.err().detail.find("g1-out"), std::string::npos) << sa.err().detail;
    }
    EXPECT_TRUE(sa::make_out_sa(out_cfg(), control_engine(), 1, 255, 8).ok());
    EXPECT_TRUE(sa::make_out_sa(out_cfg(), control_engine(), 1, 65535, 16).ok());
}

TEST(sa_rt, one_width_different_sender_ids_never_share_an_iv)
{
    auto a = make(0x2a, 8), b = make(0x2b, 8);
    ASSERT_TRUE(a && b);
    std::set<uint64_t> seen;
    for (uint16_t lane : {0, 1, 63}) {
        for (uint64_t ctr : {uint64_t{0}, uint64_t{7}, uint64_t{0xfffffffe}}) {
            EXPECT_TRUE(seen.insert(a->iv(lane, ctr)).second);
            EXPECT_TRUE(seen.insert(b->iv(lane, ctr)).second);
        }
    }
    EXPECT_EQ(seen.size(), 18u);
}

TEST(sa_rt, different_widths_can_share_an_iv)
{
    // Why sa_manager refuses a key whose counters are stored under another Sender-ID width:
    // no Sender-ID, lane 1 is the same IV as Sender-ID 4 of 8 bits, lane 0.
    auto none = make(0, 0), eight = make(4, 8);
    ASSERT_TRUE(none && eight);
    EXPECT_EQ(none->iv(1, 1234), eight->iv(0, 1234));
}

TEST_F(sa_rt_store, every_block_up_to_exhaustion_keeps_sender_id_and_lane)
{
    // Counters as the control core hands them out: blocks from the store, 2^30 at a time, until
    // the lane's space is used up; the first and last IV of every block keep the layout.
    const uint32_t id = 0xabc;
    const uint8_t bits = 12;
    auto sa = make(id, bits);
    ASSERT_TRUE(sa);
    auto st = store::iv_store::open(state_dir.path(), "key-test-sid12-2748", sa::max_workers, sa->counter_limit());
    ASSERT_TRUE(st.ok()) << st.err().detail;
    for (uint16_t lane : {0, 5, 63}) {
        uint64_t next = 0;
        int blocks = 0;
        for (;;) {
            auto blk = st->reserve(lane, uint64_t{1} << 30);
            if (!blk) {
                EXPECT_EQ(blk.err().code, errc::unsupported) << blk.err().detail;
                break;
            }
            ++blocks;
            EXPECT_EQ(blk->start, next);
            next = blk->start + blk->count;
            expect_layout(*sa, id, bits, lane, blk->start);
            expect_layout(*sa, id, bits, lane, blk->start + blk->count - 1);
        }
        EXPECT_EQ(blocks, 4);                        // 3 full blocks and a short one
        EXPECT_EQ(next, sa->counter_limit());        // the last counter handed out is limit - 1
        EXPECT_EQ(st->remaining(lane), 0u);
        EXPECT_EQ(next, uint64_t{0xffffffff});       // so the last sequence number is 2^32 - 1
        expect_layout(*sa, id, bits, lane, next - 1);
    }
    EXPECT_EQ(st->remaining(1), sa->counter_limit()); // lanes do not share counters
}
