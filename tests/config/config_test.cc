// The YAML loader: every field of the contract, defaults, and one-line errors naming file:line: key.
#include <gtest/gtest.h>

#include <string>

#include "config/config.hh"

using namespace msecgw;
using namespace msecgw::config;

namespace {

const char* const key128 = "0xfeffe9928665731c6d6a8f9467308308cafebabe";

std::string base(const std::string& extra = "")
{
    return "state_dir: /tmp/s\n"
           "ports:\n"
           "  - {port: 0, side: clear}\n"
           "  - {port: 1, side: protected, mtu: 1400}\n" +
           extra;
}

/// Loads text that must fail; checks the class and that the message starts "c.yaml:LINE: KEY:".
void expect_error(const std::string& yaml, errc code, int line, const std::string& key,
                  const std::string& word = "")
{
    auto r = load_string(yaml, "c.yaml");
    ASSERT_FALSE(r.ok()) << yaml;
    EXPECT_EQ(r.err().code, code) << r.err().detail;
    const std::string prefix = "c.yaml:" + std::to_string(line) + ": " + key + ": ";
    EXPECT_EQ(r.err().detail.rfind(prefix, 0), 0u) << "want prefix '" << prefix << "' in '" << r.err().detail << "'";
    EXPECT_EQ(r.err().detail.find('\n'), std::string::npos);
    if (!word.empty()) {
        EXPECT_NE(r.err().detail.find(word), std::string::npos) << r.err().detail;
    }
}

} // namespace

TEST(config, full_example_parses_every_field)
{
    const std::string yaml = base(std::string("sas:\n"
                                              "  - name: g1-out\n"
                                              "    dir: out\n"
                                              "    spi: 0x00001001\n"
                                              "    aead: aes-128-gcm\n"
                                              "    key: \"") + key128 + "\"\n"
                                  "  - name: g1-in\n"
                                  "    dir: in\n"
                                  "    spi: 4097\n"
                                  "    dst: 239.1.0.0/16\n"
                                  "    src: 10.1.0.0/16\n"
                                  "    aead: aes-256-gcm\n"
                                  "    key: \"0x" + std::string(72, 'a') + "\"\n"
                                  "    replay_window: 0\n"
                                  "policies:\n"
                                  "  - {dir: out, src: any, dst: 239.0.0.0/8, action: protect, sa: g1-out}\n"
                                  "  - {dir: out, dst: 0.0.0.0/0, action: bypass}\n"
                                  "  - {dir: in, dst: 'ff0e::/16', proto: udp, dport: 5000-5999, sport: 7, vlan: 100, action: discard}\n"
                                  "  - {dir: in, vlan: none, proto: 132, action: bypass}\n"
                                  "  - {dir: in, dst: 239.0.0.0/8, action: protect, sa: g1-in}\n");
    auto r = load_string(yaml, "c.yaml");
    ASSERT_TRUE(r.ok()) << r.err().detail;
    const gateway_cfg& c = *r;
    EXPECT_EQ(c.state_dir, "/tmp/s");
    ASSERT_EQ(c.ports.size(), 2u);
    EXPECT_EQ(c.ports[0].mtu, 1500);
    EXPECT_EQ(c.ports[1].side, port_side::protected_side);
    EXPECT_EQ(c.ports[1].mtu, 1400);
    EXPECT_EQ(c.ports[1].line, 4);
    ASSERT_EQ(c.sas.size(), 2u);
    EXPECT_EQ(c.sas[0].spi, 0x1001u);
    EXPECT_EQ(c.sas[0].key.size(), 20u);
    EXPECT_EQ(c.sas[0].key.bytes()[19], 0xbe);
    EXPECT_EQ(c.sas[0].replay_window, 1024u);
    EXPECT_FALSE(c.sas[0].dst.has_value());
    EXPECT_EQ(c.sas[1].aead, aead_alg::aes_256_gcm);
    EXPECT_EQ(c.sas[1].key.size(), 36u);
    EXPECT_EQ(to_string(*c.sas[1].dst), "239.1.0.0/16");
    EXPECT_EQ(c.sas[1].replay_window, 0u);
    ASSERT_EQ(c.policies.size(), 5u);
    EXPECT_EQ(c.policies[0].sa, "g1-out");
    EXPECT_TRUE(c.policies[0].src.is_any());
    EXPECT_TRUE(c.policies[1].applies_to(ip_family::v4));
    EXPECT_FALSE(c.policies[1].applies_to(ip_family::v6));
    const auto& p2 = c.policies[2];
    EXPECT_EQ(p2.proto.value(), 17);
    EXPECT_EQ(p2.dport, (u16_range{5000, 5999}));
    EXPECT_EQ(p2.sport, (u16_range{7, 7}));
    EXPECT_EQ(p2.vlan, (u16_range{100, 100}));
    EXPECT_EQ(to_string(p2.dst), "ff0e::/16");
    EXPECT_EQ(c.policies[3].vlan, (u16_range{vlan_untagged, vlan_untagged}));
    EXPECT_EQ(c.policies[3].proto.value(), 132);
    EXPECT_TRUE(c.policies[3].applies_to(ip_family::v6) && c.policies[3].applies_to(ip_family::v4));
    EXPECT_EQ(c.policies[4].line, 24);
}

TEST(config, prefixes)
{
    EXPECT_TRUE(parse_prefix("any")->is_any());
    EXPECT_EQ(parse_prefix("10.0.0.1")->length, 32);
    EXPECT_EQ(parse_prefix("ff02::1")->length, 128);
    EXPECT_FALSE(parse_prefix("10.0.0.1/8").ok());    // host bits
    EXPECT_FALSE(parse_prefix("10.0.0.0/33").ok());
    EXPECT_FALSE(parse_prefix("10.0.0/8").ok());
    EXPECT_FALSE(parse_prefix("ff00::/8x").ok());
}

TEST(config, syntax_and_structure_errors)
{
    expect_error("ports: [", errc::config_syntax, 1, "(yaml)");
    expect_error("", errc::config_missing_key, 1, "(top)", "empty");
    expect_error("state_dir: /x\n", errc::config_missing_key, 1, "(top)", "ports");
    expect_error(base("colour: blue\n"), errc::config_unknown_key, 5, "colour", "expected one of");
    expect_error(base("policies:\n  - {dir: out, acton: bypass}\n"), errc::config_unknown_key, 6,
                 "policies[0].acton");
    expect_error("ports:\n  - {port: 0, side: clear}\n", errc::config_bad_value, 2, "ports", "protected");
}

TEST(config, bad_values_name_their_key)
{
    expect_error("ports:\n  - {port: zero, side: clear}\n  - {port: 1, side: protected}\n", errc::config_bad_value, 2,
                 "ports[0].port", "integer");
    expect_error("ports:\n  - {port: 0, side: clear}\n  - {port: 1, side: dirty}\n", errc::config_bad_value, 3,
                 "ports[1].side", "clear");
    expect_error(base("policies:\n  - {dir: out, dst: 239.0.0.1/8, action: bypass}\n"), errc::config_bad_value, 6,
                 "policies[0].dst", "host bits");
    expect_error(base("policies:\n  - {dir: out, dst: 239.0.0.300, action: bypass}\n"), errc::config_bad_value, 6,
                 "policies[0].dst");
    expect_error(base("policies:\n  - {dir: out, src: 10.0.0.0/8, dst: 'ff00::/8', action: bypass}\n"),
                 errc::config_bad_value, 6, "policies[0].dst", "mix");
    expect_error(base("policies:\n  - {dir: out, dport: 80, action: bypass}\n"), errc::config_bad_value, 6,
                 "policies[0].dport", "proto");
    expect_error(base("policies:\n  - {dir: out, proto: udp, dport: 90-80, action: bypass}\n"), errc::config_bad_value,
                 6, "policies[0].dport");
    expect_error(base("policies:\n  - {dir: out, vlan: 5000, action: bypass}\n"), errc::config_bad_value, 6,
                 "policies[0].vlan");
    expect_error(base("policies:\n  - {dir: sideways, action: bypass}\n"), errc::config_bad_value, 6,
                 "policies[0].dir");
}

TEST(config, sa_errors_never_echo_the_key)
{
    const std::string sa = "sas:\n  - name: a\n    dir: out\n    spi: 0x1001\n    aead: aes-128-gcm\n";
    const std::string short_key = "0xfeffe9928665731c6d6a8f9467308308cafeba";
    auto r = load_string(base(sa + "    key: \"" + short_key + "\"\n"), "c.yaml");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.err().detail.find("c.yaml:10: sas[0].key: expected 20 bytes"), std::string::npos) << r.err().detail;
    EXPECT_EQ(r.err().detail.find("feffe9"), std::string::npos) << "key material leaked into the message";
    expect_error(base(sa + "    key: \"0xzz\"\n"), errc::config_bad_value, 10, "sas[0].key", "hex");
    expect_error(base("sas:\n  - name: a\n    dir: out\n    spi: 5\n    aead: aes-128-gcm\n    key: x\n"),
                 errc::config_bad_value, 8, "sas[0].spi", "256");
    expect_error(base("sas:\n  - name: a\n    dir: out\n    aead: aes-128-gcm\n    key: x\n"),
                 errc::config_missing_key, 6, "sas[0]", "spi");
    const std::string good = sa + "    key: \"" + key128 + "\"\n";
    expect_error(base(good + "    replay_window: 64\n"), errc::config_bad_value, 11, "sas[0].replay_window");
}

TEST(config, references_and_duplicates)
{
    const std::string sa = std::string("sas:\n  - {name: a, dir: out, spi: 0x1001, aead: aes-128-gcm, key: \"") +
                           key128 + "\"}\n";
    expect_error(base(sa + "policies:\n  - {dir: out, action: protect, sa: b}\n"), errc::config_reference, 8,
                 "policies[0].sa", "no SA named 'b'");
    expect_error(base(sa + "policies:\n  - {dir: in, action: protect, sa: a}\n"), errc::config_reference, 8,
                 "policies[0].sa", "dir: out");
    expect_error(base(sa + "policies:\n  - {dir: out, action: protect}\n"), errc::config_missing_key, 8,
                 "policies[0]", "sa");
    expect_error(base(sa + "policies:\n  - {dir: out, action: bypass, sa: a}\n"), errc::config_bad_value, 8,
                 "policies[0].sa");
    expect_error(base(sa + "  - {name: a, dir: in, spi: 0x1002, aead: aes-128-gcm, key: \"" + key128 + "\"}\n"),
                 errc::config_duplicate, 7, "sas[1].name", "twice");
    expect_error("ports:\n  - {port: 0, side: clear}\n  - {port: 0, side: protected}\n", errc::config_duplicate, 3,
                 "ports[1].port", "twice");
}

TEST(config, missing_file_is_an_io_error_naming_it)
{
    auto r = load_file("/nonexistent/msecgw.yaml");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.err().code, errc::io);
    EXPECT_NE(r.err().detail.find("/nonexistent/msecgw.yaml"), std::string::npos);
}

TEST(config, clear_and_protected_ports_pair_one_to_one)
{
    expect_error("ports:\n  - {port: 0, side: clear}\n  - {port: 1, side: protected}\n  - {port: 2, side: clear}\n",
                 errc::config_bad_value, 2, "ports", "pair");
}
