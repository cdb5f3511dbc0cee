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

namespace {

const char* const psk_1 = "0x6c6561662d612d6d656d6265722d70736b"; // test only
const char* const psk_2 = "0x7472756e6b2d6d656d6265722d70736b2d";

/// A boundary gateway keyed by two key servers: group `leaf` by leaf-a's, `trunk` by the trunk's.
/// `members` is the member section (starts on line 8); the policies follow it.
std::string keyed_boundary(const std::string& members, const std::string& trunk_policy_region = "trunk")
{
    return "regions: [leaf-a, trunk]\n"
           "ports:\n"
           "  - {port: 0, side: protected, region: leaf-a}\n"
           "  - {port: 1, side: protected, region: trunk}\n"
           "groups:\n"
           "  - {name: leaf, id: 1, dst: 239.0.0.0/8, region: leaf-a}\n"
           "  - {name: trunk, id: 2, dst: 239.0.0.0/8, region: trunk}\n" +
           members +
           "policies:\n"
           "  - {dir: in, region: leaf-a, dst: 239.0.0.0/8, action: protect, group: leaf}\n"
           "  - {dir: out, region: " + trunk_policy_region + ", dst: 239.0.0.0/8, action: protect, group: trunk}\n";
}

std::string member_entry(const std::string& region, const std::string& identity, const char* psk,
                         const std::string& key_server)
{
    return "  - {" + (region.empty() ? "" : "region: " + region + ", ") + "identity: " + identity + ", psk: \"" + psk +
           "\", key_server: \"" + key_server + "\"}\n";
}

} // namespace

TEST(config_regions, each_region_has_its_own_key_server)
{
    const gateway_cfg c = load_ok(keyed_boundary("member:\n" + member_entry("leaf-a", "gw-1", psk_1, "10.1.0.9") +
                                                 member_entry("trunk", "gw-1-trunk", psk_2, "10.7.0.9:1848")));
    ASSERT_EQ(c.groups.size(), 2u);
    EXPECT_EQ(c.groups[0].region, 0);
    EXPECT_EQ(c.groups[1].region, 1);
    ASSERT_EQ(c.members.size(), 2u);
    ASSERT_NE(c.member_for(0), nullptr);
    ASSERT_NE(c.member_for(1), nullptr);
    EXPECT_EQ(c.member_for(0)->identity, "gw-1");
    EXPECT_EQ(c.member_for(0)->key_server, (udp_endpoint{"10.1.0.9", 848}));
    EXPECT_EQ(c.member_for(1)->identity, "gw-1-trunk");
    EXPECT_EQ(c.member_for(1)->key_server, (udp_endpoint{"10.7.0.9", 1848}));
    EXPECT_EQ(c.policies[0].region, 0);
    EXPECT_EQ(c.policies[1].region, 1);
}

TEST(config_regions, a_member_entry_without_region_serves_every_region_without_its_own)
{
    const gateway_cfg one = load_ok(keyed_boundary("member:\n  identity: gw-1\n  psk: \"" + std::string(psk_1) +
                                                   "\"\n  key_server: 10.1.0.9\n"));
    ASSERT_EQ(one.members.size(), 1u);
    EXPECT_FALSE(one.members[0].region.has_value());
    EXPECT_EQ(one.member_for(0), &one.members[0]);
    EXPECT_EQ(one.member_for(1), &one.members[0]);
    const gateway_cfg mixed = load_ok(keyed_boundary("member:\n" + member_entry("trunk", "gw-t", psk_2, "10.7.0.9") +
                                                     member_entry("", "gw-1", psk_1, "10.1.0.9")));
    ASSERT_EQ(mixed.members.size(), 2u);
    EXPECT_EQ(mixed.member_for(0)->identity, "gw-1");
    EXPECT_EQ(mixed.member_for(1)->identity, "gw-t");
}

TEST(config_regions, group_member_errors_name_file_line_key)
{
    const std::string both = "member:\n" + member_entry("leaf-a", "gw-1", psk_1, "10.1.0.9") +
                             member_entry("trunk", "gw-1", psk_2, "10.7.0.9");
    auto error = [](const std::string& yaml, errc code, int line, const std::string& key, const std::string& word) {
        test::expect_config_error(yaml, code, line, key, word, {"6d656d626572", "70736b"});
    };
    // A policy naming a group sits in the group's region.
    error(keyed_boundary(both, "leaf-a"), errc::config_reference, 13, "policies[1].group", "region 'trunk'");
    // One member entry per region, and one for every region at most.
    error(keyed_boundary("member:\n" + member_entry("trunk", "gw-1", psk_1, "10.1.0.9") +
                         member_entry("trunk", "gw-2", psk_2, "10.7.0.9")),
          errc::config_duplicate, 10, "member[1].region", "second member entry for region 'trunk'");
    error(keyed_boundary("member:\n" + member_entry("", "gw-1", psk_1, "10.1.0.9") +
                         member_entry("", "gw-2", psk_2, "10.7.0.9")),
          errc::config_duplicate, 10, "member[1]", "every region");
    // A group a policy names needs a member entry for its region.
    error(keyed_boundary("member:\n" + member_entry("leaf-a", "gw-1", psk_1, "10.1.0.9")), errc::config_missing_key,
          12, "policies", "'member' entry for its region 'trunk'");
    error(keyed_boundary(""), errc::config_missing_key, 9, "policies", "top-level key 'member'");
    error(keyed_boundary("member:\n" + member_entry("nowhere", "gw-1", psk_1, "10.1.0.9")), errc::config_reference,
          9, "member[0].region", "not in 'regions'");
    error(keyed_boundary("member: []\n"), errc::config_bad_value, 8, "member", "non-empty list");
    error(keyed_boundary("member: [7]\n"), errc::config_bad_value, 8, "member[0]", "mapping");
    std::string bad_group = keyed_boundary(both);
    bad_group.replace(bad_group.find("id: 2, dst: 239.0.0.0/8, region: trunk}"), 39, "id: 2, dst: 239.0.0.0/8, region: sky}");
    error(bad_group, errc::config_reference, 7, "groups[1].region", "not in 'regions'");
}
