// RFC 5374 §5 SAD lookup: SPI+dst+src, then SPI+dst, then SPI.
#include <gtest/gtest.h>

#include <arpa/inet.h>

#include "sa/sad.hh"

using namespace msecgw;

namespace {

config::ip_prefix pfx(const char* t)
{
    return config::parse_prefix(t).value();
}

std::array<uint8_t, 16> a4(const char* t)
{
    std::array<uint8_t, 16> out{};
    inet_pton(AF_INET, t, out.data());
    return out;
}

std::array<uint8_t, 16> a6(const char* t)
{
    std::array<uint8_t, 16> out{};
    inet_pton(AF_INET6, t, out.data());
    return out;
}

} // namespace

TEST(sad, longest_match_prefers_spi_dst_src_then_spi_dst_then_spi)
{
    sa::sad db({{0x1001, pfx("any"), pfx("any"), 10},
                {0x1001, pfx("239.1.0.0/16"), pfx("any"), 20},
                {0x1001, pfx("239.1.0.0/16"), pfx("10.1.0.0/16"), 30},
                {0x1001, pfx("239.1.2.0/24"), pfx("any"), 40},
                {0x2002, pfx("ff0e::/16"), pfx("any"), 50}});
    auto q = [&](uint32_t spi, const char* d, const char* s) {
        auto dd = a4(d), ss = a4(s);
        return db.lookup(spi, 4, dd.data(), ss.data());
    };
    EXPECT_EQ(q(0x1001, "239.1.9.9", "10.1.0.5"), 30u);  // spi+dst+src
    EXPECT_EQ(q(0x1001, "239.1.2.3", "10.1.0.5"), 30u);  // the 3-selector class wins over a longer dst
    EXPECT_EQ(q(0x1001, "239.1.2.3", "10.9.0.5"), 40u);  // spi+dst, longer prefix first
    EXPECT_EQ(q(0x1001, "239.1.9.9", "10.9.0.5"), 20u);
    EXPECT_EQ(q(0x1001, "239.7.0.1", "10.1.0.5"), 10u);  // spi only
    EXPECT_EQ(q(0x3003, "239.1.9.9", "10.1.0.5"), sa::sad::not_found);
    auto d6 = a6("ff0e::1"), s6 = a6("2001:db8::1");
    EXPECT_EQ(db.lookup(0x2002, 6, d6.data(), s6.data()), 50u);
    auto d4 = a4("239.1.0.1");
    EXPECT_EQ(db.lookup(0x2002, 4, d4.data(), s6.data()), sa::sad::not_found); // family must agree
}

TEST(sad, many_spis_and_empty_database)
{
    sa::sad empty;
    auto d = a4("239.1.1.1");
    EXPECT_EQ(empty.lookup(1, 4, d.data(), d.data()), sa::sad::not_found);
    std::vector<sa::sad_entry> es;
    for (uint32_t i = 0; i < 5000; ++i) {
        es.push_back({0x10000 + i * 7, pfx("any"), pfx("any"), i});
    }
    sa::sad db(es);
    for (uint32_t i = 0; i < 5000; ++i) {
        ASSERT_EQ(db.lookup(0x10000 + i * 7, 4, d.data(), d.data()), i);
        ASSERT_EQ(db.lookup(0x10000 + i * 7 + 1, 4, d.data(), d.data()), sa::sad::not_found);
    }
}

TEST(sad, prefix_contains_checks_partial_bytes)
{
    auto in = a4("10.1.127.1"), out = a4("10.1.128.1");
    EXPECT_TRUE(sa::prefix_contains(pfx("10.1.0.0/17"), 4, in.data()));
    EXPECT_FALSE(sa::prefix_contains(pfx("10.1.0.0/17"), 4, out.data()));
    EXPECT_TRUE(sa::prefix_contains(pfx("0.0.0.0/0"), 4, out.data()));
    EXPECT_FALSE(sa::prefix_contains(pfx("0.0.0.0/0"), 6, out.data()));
}
