#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "store/store.hh"
#include "store_fixture.hh"

using namespace msecgw;
using namespace msecgw::store;
using namespace msecgw::store::test;


TEST(IvStoreCrc, KnownAnswer)
{
    EXPECT_EQ(crc32_ieee("123456789"), 0xcbf43926u);
    EXPECT_EQ(crc32_ieee(""), 0u);
}

TEST_F(IvStore, FreshStoreStartsAtZero)
{
    result<iv_store> s = iv_store::open(dir, "spi-00001001-g1-out", 4, mib * mib);
    ASSERT_TRUE(s.ok()) << s.err().detail;
    EXPECT_EQ(s->lcores(), 4u);
    EXPECT_EQ(s->path(), file("spi-00001001-g1-out"));
    for (uint32_t k = 0; k < 4; ++k) {
        EXPECT_EQ(s->high_water(k), 0u);
        EXPECT_EQ(s->remaining(k), mib * mib);
    }
    EXPECT_FALSE(std::filesystem::exists(s->path())); // nothing persisted before the first reserve
    result<iv_block> b = s->reserve(0, mib);
    ASSERT_TRUE(b.ok()) << b.err().detail;
    EXPECT_EQ(b->start, 0u);
    EXPECT_EQ(b->count, mib);
    EXPECT_TRUE(std::filesystem::exists(s->path()));
}

TEST_F(IvStore, FileFormatIsAsDocumented)
{
    result<iv_store> s = iv_store::open(dir, "g1", 2, 1000);
    ASSERT_TRUE(s.ok());
    ASSERT_TRUE(s->reserve(1, 10).ok());
    EXPECT_EQ(slurp(file("g1")), with_crc("msecgw-iv-store v1\nsa g1\nlimit 1000\nlcore 0 0\nlcore 1 10\n"));
}

TEST_F(IvStore, SequentialReservationsAreContiguous)
{
    result<iv_store> s = iv_store::open(dir, "seq", 1, mib * mib);
    ASSERT_TRUE(s.ok());
    uint64_t next = 0;
    for (uint64_t size : {mib, mib, uint64_t{1}, uint64_t{12345}, mib * 3}) {
        result<iv_block> b = s->reserve(0, size);
        ASSERT_TRUE(b.ok()) << b.err().detail;
        EXPECT_EQ(b->start, next);
        EXPECT_EQ(b->count, size);
        next += size;
        EXPECT_EQ(s->high_water(0), next);
    }
}

TEST_F(IvStore, ReopenContinuesAfterHighWater)
{
    {
        result<iv_store> s = iv_store::open(dir, "re", 2, mib * mib);
        ASSERT_TRUE(s.ok());
        for (int i = 0; i < 3; ++i) {
            ASSERT_TRUE(s->reserve(0, mib).ok());
        }
        ASSERT_TRUE(s->reserve(1, 5).ok());
    }
    result<iv_store> s = iv_store::open(dir, "re", 2, mib * mib);
    ASSERT_TRUE(s.ok()) << s.err().detail;
    EXPECT_EQ(s->high_water(0), 3 * mib);
    EXPECT_EQ(s->high_water(1), 5u);
    result<iv_block> b = s->reserve(0, mib);
    ASSERT_TRUE(b.ok());
    EXPECT_EQ(b->start, 3 * mib);
}

TEST_F(IvStore, PeakAndFloorRaiseEveryLcoreAboveAnotherStore)
{
    {
        result<iv_store> a = iv_store::open(dir, "k-sid8-1", 3, mib * mib);
        ASSERT_TRUE(a.ok());
        ASSERT_TRUE(a->reserve(0, 7).ok());
        ASSERT_TRUE(a->reserve(2, 40).ok());
    }
    result<uint64_t> top = iv_store::peak(dir, "k-sid8-1");
    ASSERT_TRUE(top.ok()) << top.err().detail;
    EXPECT_EQ(*top, 40u);
    result<uint64_t> none = iv_store::peak(dir, "k-sid8-2");
    ASSERT_TRUE(none.ok());
    EXPECT_EQ(*none, 0u);
    {
        // A new store with a floor: every lcore starts there.
        result<iv_store> b = iv_store::open(dir, "k-sid8-2", 3, mib * mib, *top);
        ASSERT_TRUE(b.ok()) << b.err().detail;
        result<iv_block> blk = b->reserve(1, 5);
        ASSERT_TRUE(blk.ok());
        EXPECT_EQ(blk->start, 40u);
    }
    // An existing store is raised to the floor where it is below it, and kept where it is above.
    result<iv_store> a = iv_store::open(dir, "k-sid8-1", 3, mib * mib, 45);
    ASSERT_TRUE(a.ok()) << a.err().detail;
    EXPECT_EQ(a->high_water(0), 45u);
    EXPECT_EQ(a->high_water(2), 45u);
    result<iv_store> c = iv_store::open(dir, "k-sid8-3", 1, 10, 45);
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(c->remaining(0), 0u) << "a floor beyond the limit leaves no counter";
}

TEST_F(IvStore, LcoresAreIndependent)
{
    result<iv_store> s = iv_store::open(dir, "lc", 4, 1 << 30);
    ASSERT_TRUE(s.ok());
    std::vector<uint64_t> next(4, 0);
    for (uint32_t i = 0; i < 40; ++i) {
        const uint32_t k = (i * 7) % 4;
        const uint64_t size = 100 + k;
        result<iv_block> b = s->reserve(k, size);
        ASSERT_TRUE(b.ok());
        EXPECT_EQ(b->start, next[k]);
        next[k] += size;
    }
    for (uint32_t k = 0; k < 4; ++k) {
        EXPECT_EQ(s->high_water(k), next[k]);
    }
}

TEST_F(IvStore, LcoreCountMayChangeAcrossRestarts)
{
    {
        result<iv_store> s = iv_store::open(dir, "grow", 2, 1000);
        ASSERT_TRUE(s.ok());
        ASSERT_TRUE(s->reserve(0, 10).ok());
        ASSERT_TRUE(s->reserve(1, 20).ok());
    }
    {
        result<iv_store> s = iv_store::open(dir, "grow", 4, 1000);
        ASSERT_TRUE(s.ok());
        EXPECT_EQ(s->high_water(0), 10u);
        EXPECT_EQ(s->high_water(1), 20u);
        EXPECT_EQ(s->high_water(3), 0u);
        ASSERT_TRUE(s->reserve(3, 30).ok());
    }
    {
        result<iv_store> s = iv_store::open(dir, "grow", 1, 1000);
        ASSERT_TRUE(s.ok());
        EXPECT_EQ(s->stored_lcores(), 4u);
        EXPECT_FALSE(s->reserve(1, 5).ok()); // index not in use now
        ASSERT_TRUE(s->reserve(0, 5).ok());  // rewrites the file, keeping indices 1..3
    }
    result<iv_store> s = iv_store::open(dir, "grow", 4, 1000);
    ASSERT_TRUE(s.ok());
    EXPECT_EQ(s->high_water(0), 15u);
    EXPECT_EQ(s->high_water(1), 20u);
    EXPECT_EQ(s->high_water(2), 0u);
    EXPECT_EQ(s->high_water(3), 30u);
}

TEST_F(IvStore, ExhaustionGivesShortBlockThenError)
{
    {
        result<iv_store> s = iv_store::open(dir, "ex", 2, 100);
        ASSERT_TRUE(s.ok());
        EXPECT_EQ(s->reserve(0, 40)->start, 0u);
        EXPECT_EQ(s->reserve(0, 40)->start, 40u);
        result<iv_block> last = s->reserve(0, 40);
        ASSERT_TRUE(last.ok());
        EXPECT_EQ(last->start, 80u);
        EXPECT_EQ(last->count, 20u);
        EXPECT_EQ(s->remaining(0), 0u);
        result<iv_block> none = s->reserve(0, 1);
        ASSERT_FALSE(none.ok());
        EXPECT_EQ(none.err().code, errc::unsupported);
        EXPECT_NE(none.err().detail.find("exhausted"), std::string::npos);
        EXPECT_TRUE(s->reserve(1, 100).ok()); // other lcores are unaffected
    }
    result<iv_store> s = iv_store::open(dir, "ex", 2, 100);
    ASSERT_TRUE(s.ok());
    EXPECT_FALSE(s->reserve(0, 1).ok());
    EXPECT_FALSE(s->reserve(1, 1).ok());
}

TEST_F(IvStore, FullSixtyFourBitSpace)
{
    result<iv_store> s = iv_store::open(dir, "big", 1, UINT64_MAX);
    ASSERT_TRUE(s.ok());
    ASSERT_TRUE(s->reserve(0, UINT64_MAX - 5).ok());
    result<iv_block> b = s->reserve(0, 100);
    ASSERT_TRUE(b.ok());
    EXPECT_EQ(b->count, 5u);
    s = iv_store::open(dir, "other", 1, 1); // releases "big"
    result<iv_store> again = iv_store::open(dir, "big", 1, UINT64_MAX);
    ASSERT_TRUE(again.ok()) << again.err().detail;
    EXPECT_EQ(again->high_water(0), UINT64_MAX);
}

TEST_F(IvStore, BadArguments)
{
    for (const char* id : {"", "a/b", "a b", "../x", "x\n"}) {
        result<iv_store> s = iv_store::open(dir, id, 1, 10);
        ASSERT_FALSE(s.ok()) << id;
        EXPECT_EQ(s.err().code, errc::config_bad_value);
    }
    EXPECT_FALSE(iv_store::open(dir, std::string(129, 'a'), 1, 10).ok());
    EXPECT_TRUE(iv_store::open(dir, std::string(128, 'a'), 1, 10).ok());
    EXPECT_FALSE(iv_store::open(dir, "ok", 0, 10).ok());
    EXPECT_FALSE(iv_store::open(dir, "ok", iv_store::max_lcores + 1, 10).ok());
    EXPECT_FALSE(iv_store::open(dir, "ok", 1, 0).ok());
    result<iv_store> s = iv_store::open(dir, "ok", 2, 10);
    ASSERT_TRUE(s.ok());
    EXPECT_EQ(s->reserve(2, 1).err().code, errc::config_bad_value);
    EXPECT_EQ(s->reserve(0, 0).err().code, errc::config_bad_value);
}

TEST_F(IvStore, StateDirIsCreatedOneLevel)
{
    result<iv_store> s = iv_store::open(dir + "/state", "d", 1, 10);
    ASSERT_TRUE(s.ok()) << s.err().detail;
    ASSERT_TRUE(s->reserve(0, 1).ok());
    EXPECT_TRUE(std::filesystem::exists(dir + "/state/iv-d.store"));
    result<iv_store> deep = iv_store::open(dir + "/no/such", "d", 1, 10);
    ASSERT_FALSE(deep.ok());
    EXPECT_EQ(deep.err().code, errc::io);
}

TEST_F(IvStore, SecondOpenIsRefusedWhileLocked)
{
    result<iv_store> a = iv_store::open(dir, "lk", 1, 10);
    ASSERT_TRUE(a.ok());
    result<iv_store> b = iv_store::open(dir, "lk", 1, 10);
    ASSERT_FALSE(b.ok());
    EXPECT_NE(b.err().detail.find("another"), std::string::npos) << b.err().detail;
    EXPECT_TRUE(iv_store::open(dir, "lk2", 1, 10).ok()); // other SAs are independent
    iv_store moved = std::move(a.value());              // the lock moves with the object
    EXPECT_FALSE(iv_store::open(dir, "lk", 1, 10).ok());
    moved = std::move(iv_store::open(dir, "lk3", 1, 10).value()); // releases "lk"
    EXPECT_TRUE(iv_store::open(dir, "lk", 1, 10).ok());
}

TEST_F(IvStore, FailedPersistHandsOutNothing)
{
    result<iv_store> s = iv_store::open(dir, "fail", 1, 1000);
    ASSERT_TRUE(s.ok());
    ASSERT_TRUE(s->reserve(0, 10).ok());
    std::filesystem::create_directory(file("fail") + ".tmp"); // the temp file cannot be created
    result<iv_block> b = s->reserve(0, 10);
    ASSERT_FALSE(b.ok());
    EXPECT_EQ(b.err().code, errc::io);
    EXPECT_NE(b.err().detail.find(file("fail")), std::string::npos);
    EXPECT_EQ(s->high_water(0), 10u);
    std::filesystem::remove(file("fail") + ".tmp");
    b = s->reserve(0, 10);
    ASSERT_TRUE(b.ok());
    EXPECT_EQ(b->start, 10u);
}
