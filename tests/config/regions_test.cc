// Key regions in the configuration (docs/regions.md): names, the region of ports, SAs and
// policies, boundary port pairs, and one-line errors naming file:line: key.
#include <gtest/gtest.h>

#include <string>

#include "config/config.hh"
#include "config_expect.hh"

using namespace msecgw;
using namespace msecgw::config;
using msecgw::config::test::load_ok;

namespace {

const char* const key_a = "0x000102030405060708090a0b0c0d0e0f10111213";
const char* const key_t = "0x202122232425262728292a2b2c2d2e2f30313233";

/// A boundary gateway between leaf-a (port 0) and trunk (port 1); `extra` starts on line 14.
std::string boundary(const std::string& extra = "")
{
    return std::string("regions: [leaf-a, trunk]\n"
                       "ports:\n"
                       "  - {port: 0, side: protected, region: leaf-a}\n"
                       "  - {port: 1, side: protected, region: trunk}\n"
                       "sas:\n"
                       "  - {name: a-in, dir: in, spi: 0xa100, aead: aes-128-gcm, key: \"") +
           key_a + "\", region: leaf-a}\n"
                   "  - {name: t-out, dir: out, spi: 0x7100, aead: aes-128-gcm, key: \"" +
           key_t + "\", region: trunk}\n"
                   "policies:\n"
                   "  - {dir: in, region: leaf-a, dst: 239.0.0.0/8, action: protect, sa: a-in}\n"
                   "  - {dir: out, region: trunk, dst: 239.0.0.0/8, action: protect, sa: t-out}\n"
                   "\n"
                   "\n"
                   "\n" +
           extra;
}

void expect_error(const std::string& yaml, errc code, int line, const std::string& key, const std::string& word)
{
    test::expect_config_error(yaml, code, line, key, word, {"0405060708", "2425262728"});
}

} // namespace

TEST(config_regions, boundary_gateway_loads)
{
    const gateway_cfg c = load_ok(boundary());
    ASSERT_EQ(c.regions.size(), 2u);
    EXPECT_EQ(c.region_count(), 2u);
    EXPECT_EQ(c.ports[0].region, 0);
    EXPECT_EQ(c.ports[1].region, 1);
    EXPECT_EQ(c.sas[0].region, 0);
    EXPECT_EQ(c.sas[1].region, 1);
    EXPECT_EQ(c.policies[0].region, 0);
    EXPECT_EQ(c.policies[1].region, 1);
}

TEST(config_regions, without_regions_everything_is_region_zero)
{
    const gateway_cfg c = load_ok("ports: [{port: 0, side: clear}, {port: 1, side: protected}]\n");
    EXPECT_TRUE(c.regions.empty());
    EXPECT_EQ(c.region_count(), 1u);
    EXPECT_EQ(c.ports[1].region, 0);
}

TEST(config_regions, port_pairs)
{
    std::string why;
    using ps = port_side;
    using pairs = std::vector<std::pair<std::size_t, std::size_t>>;
    EXPECT_EQ(port_pairs({ps::clear, ps::protected_side}, why), (pairs{{0, 1}}));
    EXPECT_EQ(port_pairs({ps::protected_side, ps::protected_side}, why), (pairs{{0, 1}}));
    EXPECT_EQ(port_pairs({ps::protected_side, ps::clear, ps::protected_side, ps::protected_side}, why),
              (pairs{{1, 0}, {2, 3}}));
    EXPECT_TRUE(port_pairs({ps::clear, ps::clear, ps::protected_side}, why).empty());
    EXPECT_NE(why.find("2 clear and 1 protected"), std::string::npos) << why;
    EXPECT_TRUE(port_pairs({ps::protected_side, ps::protected_side, ps::protected_side}, why).empty());
    EXPECT_TRUE(port_pairs({ps::protected_side}, why).empty());
}

TEST(config_regions, errors_name_file_line_key)
{
    expect_error("regions: [a, a]\nports: [{port: 0, side: clear}, {port: 1, side: protected}]\n",
                 errc::config_duplicate, 1, "regions[1]", "twice");
    expect_error("ports:\n  - {port: 0, side: clear}\n  - {port: 1, side: protected, region: x}\n",
                 errc::config_reference, 3, "ports[1].region", "not declared");
    expect_error("regions: [a, b]\nports:\n  - {port: 0, side: protected, region: a}\n"
                 "  - {port: 1, side: protected, region: a}\n",
                 errc::config_bad_value, 4, "ports[1]", "same region");
    expect_error("regions: [a, b]\nports:\n  - {port: 0, side: protected, region: c}\n",
                 errc::config_reference, 3, "ports[0].region", "not in 'regions'");
    expect_error(boundary("  - {dir: out, region: leaf-a, dst: 239.0.0.0/8, action: protect, sa: t-out}\n"),
                 errc::config_reference, 14, "policies[2].sa", "region 'trunk'");
    expect_error(boundary("  - {dir: in, region: nowhere, action: bypass}\n"), errc::config_reference, 14,
                 "policies[2].region", "nowhere");
}
