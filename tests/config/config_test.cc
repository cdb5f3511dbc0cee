// The YAML loader: every field of the contract, defaults, and one-line errors naming file:line: key.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <unistd.h>

#include "config/config.hh"
#include "config_expect.hh"

using namespace msecgw;
using namespace msecgw::config;
using msecgw::config::test::load_ok;

namespace {

// RFC 4106-style test keying material: 16-byte key then 4-byte salt ("cafebabe").
const char* const key128 = "0xfeffe9928665731c6d6a8f9467308308cafebabe";
const std::string key256 = "0x" + std::string(64, 'a') + "0badc0de";

/// Four lines: state_dir, ports, one clear and one protected port. `extra` starts on line 5.
std::string base(const std::string& extra = "")
{
    return "state_dir: /tmp/s\n"
           "ports:\n"
           "  - {port: 0, side: clear}\n"
           "  - {port: 1, side: protected, mtu: 1400}\n" +
           extra;
}

/// One outbound SA `a` on line 6 (flow style) after "sas:" on line 5.
std::string one_sa(const std::string& dir = "out")
{
    return std::string("sas:\n  - {name: a, dir: ") + dir + ", spi: 0x1001, aead: aes-128-gcm, key: \"" + key128 +
           "\"}\n";
}

/// One SA `a` in block style: "sas:" on line 5, the SA from line 6 to its key on line 10.
std::string block_sa(const std::string& dir)
{
    return std::string("sas:\n  - name: a\n    dir: ") + dir + "\n    spi: 0x1001\n    aead: aes-128-gcm\n" +
           "    key: \"" + key128 + "\"\n";
}

/// Loads text that must fail; checks the class, that the message starts "c.yaml:LINE: KEY: ",
/// and that neither the key part nor the salt of our test keys reaches it.
void expect_error(const std::string& yaml, errc code, int line, const std::string& key, const std::string& word = "")
{
    test::expect_config_error(yaml, code, line, key, word, {"feffe9928665", "cafebabe", "aaaaaaaa", "0badc0de"});
}

/// The single policy of `base() + "policies:\n  - {" + rule + "}"`.
policy_cfg one_policy(const std::string& rule)
{
    gateway_cfg c = load_ok(base("policies:\n  - {" + rule + "}\n"));
    EXPECT_EQ(c.policies.size(), 1u);
    return c.policies.empty() ? policy_cfg{} : c.policies[0];
}

/// The contract's example with every key given (drivers_cfg on line 5, sas from line 6, policies from 20).
gateway_cfg full_example()
{
    return load_ok(base(std::string("drivers_cfg: /etc/msecgw/drivers\n"
                                    "sas:\n"
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
                        "    key: \"" + key256 + "\"\n"
                        "    replay_window: 0\n"
                        "policies:\n"
                        "  - {dir: out, src: any, dst: 239.0.0.0/8, action: protect, sa: g1-out}\n"
                        "  - {dir: out, dst: 0.0.0.0/0, action: bypass}\n"
                        "  - {dir: in, dst: 'ff0e::/16', proto: udp, dport: 5000-5999, sport: 7, vlan: 100,"
                        " action: discard}\n"
                        "  - {dir: in, vlan: none, proto: 132, action: bypass}\n"
                        "  - {dir: in, dst: 239.0.0.0/8, action: protect, sa: g1-in}\n"));
}

} // namespace

TEST(config, full_example_top_level_and_ports)
{
    const gateway_cfg c = full_example();
    EXPECT_EQ(c.file, "c.yaml");
    EXPECT_EQ(c.state_dir, "/tmp/s");
    EXPECT_EQ(c.drivers_cfg, "/etc/msecgw/drivers");
    ASSERT_EQ(c.ports.size(), 2u);
    EXPECT_EQ(c.ports[0].port, 0);
    EXPECT_EQ(c.ports[0].side, port_side::clear);
    EXPECT_EQ(c.ports[0].mtu, 1500);
    EXPECT_EQ(c.ports[0].line, 3);
    EXPECT_EQ(c.ports[1].port, 1);
    EXPECT_EQ(c.ports[1].side, port_side::protected_side);
    EXPECT_EQ(c.ports[1].mtu, 1400);
    EXPECT_EQ(c.ports[1].line, 4);
}

TEST(config, full_example_sas)
{
    const gateway_cfg c = full_example();
    ASSERT_EQ(c.sas.size(), 2u);
    const sa_cfg& out = c.sas[0];
    EXPECT_EQ(out.name, "g1-out");
    EXPECT_EQ(out.dir, direction::out);
    EXPECT_EQ(out.spi, 0x1001u);
    EXPECT_EQ(out.aead, aead_alg::aes_128_gcm);
    ASSERT_EQ(out.key.size(), 20u);
    EXPECT_EQ(out.key.bytes()[0], 0xfe);
    EXPECT_EQ(out.key.bytes()[15], 0x08);
    EXPECT_EQ(out.key.bytes()[16], 0xca); // the salt follows the 16-byte key
    EXPECT_EQ(out.key.bytes()[19], 0xbe);
    EXPECT_EQ(out.replay_window, 1024u);
    EXPECT_FALSE(out.dst.has_value());
    EXPECT_FALSE(out.src.has_value());
    EXPECT_EQ(out.line, 7);
    const sa_cfg& in = c.sas[1];
    EXPECT_EQ(in.name, "g1-in");
    EXPECT_EQ(in.dir, direction::in);
    EXPECT_EQ(in.spi, 4097u);
    EXPECT_EQ(in.aead, aead_alg::aes_256_gcm);
    ASSERT_EQ(in.key.size(), 36u);
    EXPECT_EQ(in.key.bytes()[31], 0xaa);
    EXPECT_EQ(in.key.bytes()[32], 0x0b);
    ASSERT_TRUE(in.dst && in.src);
    EXPECT_EQ(to_string(*in.dst), "239.1.0.0/16");
    EXPECT_EQ(to_string(*in.src), "10.1.0.0/16");
    EXPECT_EQ(in.replay_window, 0u);
    EXPECT_EQ(in.line, 12);
    ASSERT_NE(c.find_sa("g1-in"), nullptr);
    EXPECT_EQ(c.find_sa("g1-in")->spi, 4097u);
    EXPECT_EQ(c.find_sa("g1"), nullptr);
}

TEST(config, full_example_policies)
{
    const gateway_cfg c = full_example();
    ASSERT_EQ(c.policies.size(), 5u);
    const auto& p0 = c.policies[0];
    EXPECT_EQ(p0.dir, direction::out);
    EXPECT_EQ(p0.action, policy_action::protect);
    EXPECT_EQ(p0.sa, "g1-out");
    EXPECT_TRUE(p0.src.is_any());
    EXPECT_EQ(to_string(p0.dst), "239.0.0.0/8");
    EXPECT_EQ(p0.line, 21);
    const auto& p1 = c.policies[1];
    EXPECT_EQ(p1.action, policy_action::bypass);
    EXPECT_EQ(p1.dst.family, ip_family::v4);
    EXPECT_EQ(p1.dst.length, 0);
    EXPECT_TRUE(p1.sa.empty());
    EXPECT_TRUE(p1.applies_to(ip_family::v4));
    EXPECT_FALSE(p1.applies_to(ip_family::v6)); // 0.0.0.0/0 is IPv4 only
    const auto& p2 = c.policies[2];
    EXPECT_EQ(p2.dir, direction::in);
    EXPECT_EQ(p2.action, policy_action::discard);
    EXPECT_EQ(p2.proto.value(), 17);
    EXPECT_EQ(p2.dport, (u16_range{5000, 5999}));
    EXPECT_EQ(p2.sport, (u16_range{7, 7}));
    EXPECT_EQ(p2.vlan, (u16_range{100, 100}));
    EXPECT_EQ(to_string(p2.dst), "ff0e::/16");
    EXPECT_TRUE(p2.applies_to(ip_family::v6));
    EXPECT_FALSE(p2.applies_to(ip_family::v4));
    const auto& p3 = c.policies[3];
    EXPECT_EQ(p3.vlan, (u16_range{vlan_untagged, vlan_untagged}));
    EXPECT_EQ(p3.proto.value(), 132);
    EXPECT_TRUE(p3.applies_to(ip_family::v6) && p3.applies_to(ip_family::v4));
    EXPECT_EQ(c.policies[4].sa, "g1-in");
    EXPECT_EQ(c.policies[4].line, 25);
}

TEST(config, defaults)
{
    const gateway_cfg c = load_ok("ports: [{port: 3, side: protected}, {port: 2, side: clear}]\n");
    EXPECT_EQ(c.state_dir, "/var/lib/msecgw");
    EXPECT_TRUE(c.drivers_cfg.empty());
    ASSERT_EQ(c.ports.size(), 2u);
    EXPECT_EQ(c.ports[0].port, 3);
    EXPECT_EQ(c.ports[0].mtu, 1500);
    EXPECT_TRUE(c.sas.empty());
    EXPECT_TRUE(c.policies.empty());

    const policy_cfg p = one_policy("dir: in, action: discard");
    EXPECT_EQ(p.dir, direction::in);
    EXPECT_EQ(p.action, policy_action::discard);
    EXPECT_TRUE(p.src.is_any());
    EXPECT_TRUE(p.dst.is_any());
    EXPECT_FALSE(p.proto.has_value());
    EXPECT_EQ(p.sport, (u16_range{0, 0xffff}));
    EXPECT_EQ(p.dport, (u16_range{0, 0xffff}));
    EXPECT_EQ(p.vlan, (u16_range{0, 0xffff}));
    EXPECT_TRUE(p.sa.empty());

    // An SA whose selectors are written `any` is the same as one without them.
    const gateway_cfg s = load_ok(base(std::string("sas:\n  - {name: x, dir: in, spi: 256, aead: aes-128-gcm, "
                                                   "dst: any, src: any, key: \"") + key128 + "\"}\n"));
    ASSERT_EQ(s.sas.size(), 1u);
    EXPECT_FALSE(s.sas[0].dst.has_value());
    EXPECT_FALSE(s.sas[0].src.has_value());
    EXPECT_EQ(s.sas[0].replay_window, 1024u);

    // Lists with every entry commented out are empty lists.
    const gateway_cfg e = load_ok(base("sas:\n#  - {name: x}\npolicies:\n"));
    EXPECT_TRUE(e.sas.empty());
    EXPECT_TRUE(e.policies.empty());
}

TEST(config, vlan_forms)
{
    EXPECT_EQ(one_policy("dir: in, vlan: none, action: bypass").vlan, (u16_range{vlan_untagged, vlan_untagged}));
    EXPECT_EQ(one_policy("dir: in, vlan: 0, action: bypass").vlan, (u16_range{0, 0}));
    EXPECT_EQ(one_policy("dir: in, vlan: 4095, action: bypass").vlan, (u16_range{4095, 4095}));
    EXPECT_EQ(one_policy("dir: in, vlan: 10-20, action: bypass").vlan, (u16_range{10, 20}));
    EXPECT_EQ(one_policy("dir: in, vlan: \"100-100\", action: bypass").vlan, (u16_range{100, 100}));
    expect_error(base("policies:\n  - {dir: out, vlan: 4096, action: bypass}\n"), errc::config_bad_value, 6,
                 "policies[0].vlan", "none");
    expect_error(base("policies:\n  - {dir: out, vlan: 20-10, action: bypass}\n"), errc::config_bad_value, 6,
                 "policies[0].vlan");
    expect_error(base("policies:\n  - {dir: out, vlan: untagged, action: bypass}\n"), errc::config_bad_value, 6,
                 "policies[0].vlan");
}

TEST(config, proto_by_name_and_number)
{
    EXPECT_EQ(one_policy("dir: in, proto: tcp, action: bypass").proto, std::optional<uint8_t>(6));
    EXPECT_EQ(one_policy("dir: in, proto: sctp, action: bypass").proto, std::optional<uint8_t>(132));
    EXPECT_EQ(one_policy("dir: in, proto: esp, action: bypass").proto, std::optional<uint8_t>(50));
    EXPECT_EQ(one_policy("dir: in, proto: icmp, action: bypass").proto, std::optional<uint8_t>(1));
    EXPECT_EQ(one_policy("dir: in, proto: icmpv6, action: bypass").proto, std::optional<uint8_t>(58));
    EXPECT_EQ(one_policy("dir: in, proto: 47, action: bypass").proto, std::optional<uint8_t>(47));
    EXPECT_EQ(one_policy("dir: in, proto: 0, action: bypass").proto, std::optional<uint8_t>(0));
    EXPECT_FALSE(one_policy("dir: in, proto: any, action: bypass").proto.has_value());
    const policy_cfg numbered = one_policy("dir: in, proto: 6, sport: 1024-65535, dport: 22, action: bypass");
    EXPECT_EQ(numbered.sport, (u16_range{1024, 65535}));
    EXPECT_EQ(numbered.dport, (u16_range{22, 22}));
    expect_error(base("policies:\n  - {dir: out, proto: 256, action: bypass}\n"), errc::config_bad_value, 6,
                 "policies[0].proto", "got '256'");
    expect_error(base("policies:\n  - {dir: out, proto: gre, action: bypass}\n"), errc::config_bad_value, 6,
                 "policies[0].proto", "got 'gre'");
}

TEST(config, prefixes)
{
    EXPECT_TRUE(parse_prefix("any")->is_any());
    auto host = parse_prefix("10.0.0.1");
    ASSERT_TRUE(host.ok());
    EXPECT_EQ(host->family, ip_family::v4);
    EXPECT_EQ(host->length, 32);
    EXPECT_EQ(host->addr[0], 10);
    EXPECT_EQ(host->addr[3], 1);
    EXPECT_EQ(host->addr[4], 0);
    auto v6 = parse_prefix("ff02::1");
    ASSERT_TRUE(v6.ok());
    EXPECT_EQ(v6->family, ip_family::v6);
    EXPECT_EQ(v6->length, 128);
    EXPECT_EQ(v6->addr[0], 0xff);
    EXPECT_EQ(v6->addr[1], 0x02);
    EXPECT_EQ(v6->addr[15], 0x01);
    EXPECT_EQ(to_string(*v6), "ff02::1/128");
    EXPECT_EQ(parse_prefix("::/0")->length, 0);
    EXPECT_EQ(parse_prefix("::/0")->family, ip_family::v6);
    EXPECT_EQ(to_string(parse_prefix("any").value()), "any");
    EXPECT_EQ(to_string(parse_prefix("239.0.0.0/8").value()), "239.0.0.0/8");
    EXPECT_EQ(parse_prefix("10.0.0.1/8").err().code, errc::config_bad_value); // host bits
    EXPECT_NE(parse_prefix("10.0.0.1/8").err().detail.find("host bits"), std::string::npos);
    EXPECT_FALSE(parse_prefix("ff00::1/8").ok());    // host bits, IPv6
    EXPECT_FALSE(parse_prefix("10.0.0.0/33").ok());
    EXPECT_FALSE(parse_prefix("ff00::/129").ok());
    EXPECT_FALSE(parse_prefix("10.0.0.0/").ok());
    EXPECT_FALSE(parse_prefix("10.0.0/8").ok());
    EXPECT_FALSE(parse_prefix("ff00::/8x").ok());
    EXPECT_FALSE(parse_prefix("fe80::1%eth0").ok());
    EXPECT_FALSE(parse_prefix("").ok());
    EXPECT_FALSE(parse_prefix("ANY").ok());
}

TEST(config, to_string_names)
{
    EXPECT_EQ(to_string(port_side::clear), "clear");
    EXPECT_EQ(to_string(port_side::protected_side), "protected");
    EXPECT_EQ(to_string(direction::out), "out");
    EXPECT_EQ(to_string(direction::in), "in");
    EXPECT_EQ(to_string(aead_alg::aes_128_gcm), "aes-128-gcm");
    EXPECT_EQ(to_string(aead_alg::aes_256_gcm), "aes-256-gcm");
    EXPECT_EQ(to_string(policy_action::protect), "protect");
    EXPECT_EQ(to_string(policy_action::bypass), "bypass");
    EXPECT_EQ(to_string(policy_action::discard), "discard");
}

TEST(config, syntax_and_structure_errors)
{
    expect_error("ports: [", errc::config_syntax, 1, "(yaml)");
    expect_error(base("sas: [ {name: a\n"), errc::config_syntax, 6, "(yaml)"); // yaml-cpp's line: end of input
    expect_error(base("policies:\n  - {dir: out, action: bypass}\n---\nports: []\n"), errc::config_syntax, 8,
                 "(yaml)", "second YAML document");
    expect_error("", errc::config_missing_key, 1, "(top)", "empty");
    expect_error("# only a comment\n", errc::config_missing_key, 1, "(top)", "empty");
    expect_error("- port: 0\n", errc::config_bad_value, 1, "(top)", "mapping");
    expect_error("state_dir: /x\n", errc::config_missing_key, 1, "(top)", "ports");
    expect_error(base("state_dir: /y\n"), errc::config_duplicate, 5, "state_dir", "line 1");
    expect_error("ports: []\n", errc::config_bad_value, 1, "ports", "non-empty");
    expect_error("ports:\n  - {port: 0, side: clear}\n", errc::config_bad_value, 2, "ports", "protected");
    // two protected ports pair as a boundary gateway, which needs them in two regions
    expect_error("ports:\n  - {port: 0, side: protected}\n  - {port: 1, side: protected}\n", errc::config_bad_value,
                 3, "ports[1]", "same region");
    expect_error("ports:\n  - {port: 0, side: clear}\n  - {port: 1, side: clear}\n  - {port: 2, side: protected}\n",
                 errc::config_bad_value, 2, "ports", "2 clear and 1 protected");
    expect_error(base("sas: {name: a}\n"), errc::config_bad_value, 5, "sas", "list");
    expect_error(base("policies:\n  - out\n"), errc::config_bad_value, 6, "policies[0]", "mapping");
}

TEST(config, unknown_keys_are_named)
{
    expect_error(base("colour: blue\n"), errc::config_unknown_key, 5, "colour", "expected one of: state_dir,");
    expect_error(base("policies:\n  - {dir: out, acton: bypass}\n"), errc::config_unknown_key, 6,
                 "policies[0].acton", "expected one of: dir, src, dst");
    expect_error("ports:\n  - {port: 0, side: clear}\n  - port: 1\n    side: protected\n    speed: 10G\n",
                 errc::config_unknown_key, 5, "ports[1].speed", "expected one of: port, side, mtu");
    expect_error(base(std::string("sas:\n  - name: a\n    dir: out\n    spi: 0x1001\n    aead: aes-128-gcm\n"
                                  "    key: \"") + key128 + "\"\n    lifetimes: 3600\n"),
                 errc::config_unknown_key, 11, "sas[0].lifetimes", "replay_window");
    expect_error(base("? [a, b]\n: 1\n"), errc::config_unknown_key, 5, "(top)", "plain names");
}

TEST(config, bad_values_name_their_key)
{
    expect_error("ports:\n  - {port: zero, side: clear}\n  - {port: 1, side: protected}\n", errc::config_bad_value, 2,
                 "ports[0].port", "expected an integer, got 'zero'");
    expect_error("ports:\n  - {port: 1024, side: clear}\n  - {port: 1, side: protected}\n", errc::config_bad_value, 2,
                 "ports[0].port", "0..1023");
    expect_error("ports:\n  - {port: 0, side: clear}\n  - {port: 1, side: dirty}\n", errc::config_bad_value, 3,
                 "ports[1].side", "clear");
    expect_error("ports:\n  - {port: 0, side: clear, mtu: 575}\n  - {port: 1, side: protected}\n",
                 errc::config_bad_value, 2, "ports[0].mtu", "576..9000");
    expect_error("ports:\n  - {port: 0, side: clear, mtu: 9001}\n  - {port: 1, side: protected}\n",
                 errc::config_bad_value, 2, "ports[0].mtu", "576..9000");
    expect_error("ports:\n  - {port: 0, side: clear, mtu: [1500]}\n  - {port: 1, side: protected}\n",
                 errc::config_bad_value, 2, "ports[0].mtu", "scalar");
    // An empty value is reported on its key's line, not on the next token's.
    expect_error("ports:\n  - port: 0\n    side:\n  - {port: 1, side: protected}\n", errc::config_bad_value, 3,
                 "ports[0].side", "empty");
    expect_error("ports:\n  - {port: 0, side: clear}\n  - {port: 1, side: protected}\nstate_dir: ''\n",
                 errc::config_bad_value, 4, "state_dir", "path");
    expect_error(base("policies:\n  - {dir: sideways, action: bypass}\n"), errc::config_bad_value, 6,
                 "policies[0].dir", "out, in");
    expect_error(base("policies:\n  - {dir: out, action: allow}\n"), errc::config_bad_value, 6,
                 "policies[0].action", "protect, bypass, discard");
}

TEST(config, bad_prefixes_and_families)
{
    expect_error(base("policies:\n  - {dir: out, dst: 239.0.0.1/8, action: bypass}\n"), errc::config_bad_value, 6,
                 "policies[0].dst", "host bits");
    expect_error(base("policies:\n  - {dir: out, src: '2001:db8::1/32', action: bypass}\n"), errc::config_bad_value,
                 6, "policies[0].src", "host bits");
    expect_error(base("policies:\n  - {dir: out, dst: 239.0.0.300, action: bypass}\n"), errc::config_bad_value, 6,
                 "policies[0].dst", "not an address");
    expect_error(base("policies:\n  - {dir: out, dst: 239.0.0.0/40, action: bypass}\n"), errc::config_bad_value, 6,
                 "policies[0].dst", "0..32");
    expect_error(base("policies:\n  - {dir: out, src: 10.0.0.0/8, dst: 'ff00::/8', action: bypass}\n"),
                 errc::config_bad_value, 6, "policies[0].dst", "mix");
    expect_error(base(std::string("sas:\n  - name: a\n    dir: in\n    spi: 0x1001\n    aead: aes-128-gcm\n"
                                  "    key: \"") + key128 + "\"\n    dst: 'ff3e::/16'\n    src: 10.1.0.0/16\n"),
                 errc::config_bad_value, 12, "sas[0].src", "mix");
    // `any` mixes with either family.
    const policy_cfg p = one_policy("dir: out, src: any, dst: 'ff3e::/16', action: bypass");
    EXPECT_TRUE(p.applies_to(ip_family::v6));
    EXPECT_FALSE(p.applies_to(ip_family::v4));
}

TEST(config, port_ranges_need_a_port_protocol)
{
    expect_error(base("policies:\n  - {dir: out, sport: 80, action: bypass}\n"), errc::config_bad_value, 6,
                 "policies[0].sport", "proto");
    expect_error(base("policies:\n  - {dir: out, dport: 80, action: bypass}\n"), errc::config_bad_value, 6,
                 "policies[0].dport", "proto");
    expect_error(base("policies:\n  - {dir: out, proto: icmp, sport: 8, action: bypass}\n"), errc::config_bad_value,
                 6, "policies[0].sport", "udp, tcp or sctp");
    expect_error(base("policies:\n  - {dir: out, proto: any, dport: 8, action: bypass}\n"), errc::config_bad_value,
                 6, "policies[0].dport", "proto");
    expect_error(base("policies:\n  - {dir: out, proto: udp, dport: 90-80, action: bypass}\n"),
                 errc::config_bad_value, 6, "policies[0].dport", "ends before it starts");
    expect_error(base("policies:\n  - {dir: out, proto: udp, dport: 65536, action: bypass}\n"),
                 errc::config_bad_value, 6, "policies[0].dport", "65535");
    expect_error(base("policies:\n  - {dir: out, proto: udp, sport: http, action: bypass}\n"),
                 errc::config_bad_value, 6, "policies[0].sport", "got 'http'");
}

TEST(config, sa_values_and_keys)
{
    const std::string sa = "sas:\n  - name: a\n    dir: out\n    spi: 0x1001\n    aead: aes-128-gcm\n";
    // Lines: sas 5, name 6, dir 7, spi 8, aead 9, key 10.
    const std::string short_key = "0xfeffe9928665731c6d6a8f9467308308cafeba"; // 19 bytes
    expect_error(base(sa + "    key: \"" + short_key + "\"\n"), errc::config_bad_value, 10, "sas[0].key",
                 "expected 20 bytes (16-byte key + 4-byte salt) for aes-128-gcm, got 19");
    expect_error(base(sa + "    key: \"" + key128 + "00\"\n"), errc::config_bad_value, 10, "sas[0].key", "got 21");
    expect_error(base("sas:\n  - name: a\n    dir: out\n    spi: 0x1001\n    aead: aes-256-gcm\n    key: \"" +
                      std::string(key128) + "\"\n"),
                 errc::config_bad_value, 10, "sas[0].key", "expected 36 bytes (32-byte key + 4-byte salt)");
    expect_error(base(sa + "    key: \"0xzz\"\n"), errc::config_bad_value, 10, "sas[0].key", "hex");
    expect_error(base(sa + "    key: \"0xfeffe9928665731c6d6a8f94673083zzcafebabe\"\n"), errc::config_bad_value, 10,
                 "sas[0].key", "position 32");
    expect_error(base(sa + "    key: \"0xfeffe9928665731c6d6a8f9467308308cafebab\"\n"), errc::config_bad_value, 10,
                 "sas[0].key", "even number");
    expect_error(base(sa + "    key: \"feffe9928665731c6d6a8f9467308308cafebabe\"\n"), errc::config_bad_value, 10,
                 "sas[0].key", "0x");
    const std::string good = sa + "    key: \"" + key128 + "\"\n";
    expect_error(base(good + "    replay_window: 64\n"), errc::config_bad_value, 11, "sas[0].replay_window",
                 "dir: in");
    const std::string in_sa = std::string("sas:\n  - {name: a, dir: in, spi: 0x1001, aead: aes-128-gcm, key: \"") +
                              key128 + "\", replay_window: 65537}\n";
    expect_error(base(in_sa), errc::config_bad_value, 6, "sas[0].replay_window", "0..65536");
    expect_error(base("sas:\n  - {name: 'a b', dir: out, spi: 0x1001, aead: aes-128-gcm, key: x}\n"),
                 errc::config_bad_value, 6, "sas[0].name", "[A-Za-z0-9_.-]");
    expect_error(base("sas:\n  - {name: " + std::string(33, 'n') +
                      ", dir: out, spi: 0x1001, aead: aes-128-gcm, key: x}\n"),
                 errc::config_bad_value, 6, "sas[0].name", "1..32");
    expect_error(base("sas:\n  - {name: a, dir: out, spi: 0x1001, aead: chacha20-poly1305, key: x}\n"),
                 errc::config_bad_value, 6, "sas[0].aead", "aes-128-gcm, aes-256-gcm");
    expect_error(base("sas:\n  - name: a\n    dir: out\n    aead: aes-128-gcm\n    key: x\n"),
                 errc::config_missing_key, 6, "sas[0]", "missing key 'spi'");
}

TEST(config, spi_range)
{
    const std::string tail = ", aead: aes-128-gcm, key: \"" + std::string(key128) + "\"}\n";
    expect_error(base("sas:\n  - {name: a, dir: out, spi: 255" + tail), errc::config_bad_value, 6, "sas[0].spi",
                 "256..4294967295");
    expect_error(base("sas:\n  - {name: a, dir: out, spi: 0" + tail), errc::config_bad_value, 6, "sas[0].spi", "256");
    expect_error(base("sas:\n  - {name: a, dir: out, spi: 0x100000000" + tail), errc::config_bad_value, 6,
                 "sas[0].spi", "256");
    expect_error(base("sas:\n  - {name: a, dir: out, spi: -1" + tail), errc::config_bad_value, 6, "sas[0].spi",
                 "integer");
    expect_error(base("sas:\n  - {name: a, dir: out, spi: '4097a'" + tail), errc::config_bad_value, 6, "sas[0].spi",
                 "integer");
    EXPECT_EQ(load_ok(base("sas:\n  - {name: a, dir: out, spi: 256" + tail)).sas.at(0).spi, 256u);
    EXPECT_EQ(load_ok(base("sas:\n  - {name: a, dir: out, spi: 0xffffffff" + tail)).sas.at(0).spi, 0xffffffffu);
}

TEST(config, references_and_duplicates)
{
    const std::string sa = one_sa("out");
    expect_error(base(sa + "policies:\n  - {dir: out, action: protect, sa: b}\n"), errc::config_reference, 8,
                 "policies[0].sa", "no SA named 'b'");
    expect_error(base("policies:\n  - {dir: out, action: protect, sa: a}\n"), errc::config_reference, 6,
                 "policies[0].sa", "no SA named 'a'");
    expect_error(base(sa + "policies:\n  - {dir: in, action: protect, sa: a}\n"), errc::config_reference, 8,
                 "policies[0].sa", "dir: out");
    expect_error(base(one_sa("in") + "policies:\n  - {dir: out, action: bypass}\n"
                                     "  - {dir: out, action: protect, sa: a}\n"),
                 errc::config_reference, 9, "policies[1].sa", "dir: in");
    expect_error(base(sa + "policies:\n  - {dir: out, action: protect}\n"), errc::config_missing_key, 8,
                 "policies[0]", "missing key 'sa'");
    expect_error(base(sa + "policies:\n  - {dir: out, action: bypass, sa: a}\n"), errc::config_bad_value, 8,
                 "policies[0].sa", "only protect");
    expect_error(base(sa + "policies:\n  - {dir: out}\n"), errc::config_missing_key, 8, "policies[0]",
                 "missing key 'action'");
    expect_error(base(sa + "  - {name: a, dir: in, spi: 0x1002, aead: aes-128-gcm, key: \"" + key128 + "\"}\n"),
                 errc::config_duplicate, 7, "sas[1].name", "twice");
    expect_error("ports:\n  - {port: 0, side: clear}\n  - {port: 0, side: protected}\n", errc::config_duplicate, 3,
                 "ports[1].port", "twice");
    expect_error(base("policies:\n  - {dir: out, action: bypass, dst: 10.0.0.0/8, dst: 10.1.0.0/16}\n"),
                 errc::config_duplicate, 6, "policies[0].dst", "twice");
    // The policy's SA may be declared after the policies section in the file.
    const gateway_cfg c = load_ok(base("policies:\n  - {dir: out, action: protect, sa: a}\n" + sa));
    ASSERT_EQ(c.policies.size(), 1u);
    EXPECT_EQ(c.policies[0].sa, "a");
}

TEST(config, secret_bytes_assignment_keeps_the_value)
{
    secret_bytes a(std::vector<uint8_t>{1, 2, 3});
    secret_bytes b(std::vector<uint8_t>{9, 9, 9, 9, 9});
    b = a;
    EXPECT_EQ(b.bytes(), (std::vector<uint8_t>{1, 2, 3}));
    EXPECT_EQ(a.bytes(), (std::vector<uint8_t>{1, 2, 3}));
    secret_bytes c(std::vector<uint8_t>{7});
    c = std::move(a);
    EXPECT_EQ(c.bytes(), (std::vector<uint8_t>{1, 2, 3}));
    const secret_bytes& same = c;
    c = same; // self-assignment keeps the value
    EXPECT_EQ(c.size(), 3u);
}

TEST(config, load_file_reads_and_names_the_file)
{
    char path[] = "/tmp/msecgw_config_test_XXXXXX";
    const int fd = mkstemp(path);
    ASSERT_GE(fd, 0);
    close(fd);
    {
        std::ofstream f(path);
        f << base("policies:\n  - {dir: out, action: bypass}\n");
    }
    auto ok = load_file(path);
    ASSERT_TRUE(ok.ok()) << ok.err().detail;
    EXPECT_EQ(ok->file, path);
    EXPECT_EQ(ok->policies.at(0).line, 6);
    {
        std::ofstream f(path, std::ios::trunc);
        f << base("policies:\n  - {dir: out, action: bypass, sa: x}\n");
    }
    auto bad = load_file(path);
    std::remove(path);
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.err().code, errc::config_bad_value);
    EXPECT_EQ(bad.err().detail.rfind(std::string(path) + ":6: policies[0].sa: ", 0), 0u) << bad.err().detail;
}

TEST(config, missing_file_is_an_io_error_naming_it)
{
    auto r = load_file("/nonexistent/msecgw.yaml");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.err().code, errc::io);
    EXPECT_EQ(r.err().detail.rfind("/nonexistent/msecgw.yaml:", 0), 0u) << r.err().detail;
    EXPECT_NE(r.err().detail.find("No such file"), std::string::npos) << r.err().detail;
    auto dir = load_file("/tmp");
    ASSERT_FALSE(dir.ok());
    EXPECT_EQ(dir.err().code, errc::io);
    EXPECT_NE(dir.err().detail.find("directory"), std::string::npos) << dir.err().detail;
}

TEST(config, clear_and_protected_ports_pair_one_to_one)
{
    expect_error("ports:\n  - {port: 0, side: clear}\n  - {port: 1, side: protected}\n  - {port: 2, side: clear}\n",
                 errc::config_bad_value, 2, "ports", "pair");
}

TEST(config, sa_lifetimes)
{
    const std::string sa = block_sa("out");
    auto r = load_string(base(sa + "    lifetime: {soft_packets: 900, hard_packets: 1000, hard_seconds: 3600}\n"),
                         "c.yaml");
    ASSERT_TRUE(r.ok()) << r.err().detail;
    EXPECT_EQ(r->sas[0].soft.packets, 900u);
    EXPECT_EQ(r->sas[0].hard.packets, 1000u);
    EXPECT_EQ(r->sas[0].hard.seconds, 3600u);
    EXPECT_EQ(r->sas[0].soft.bytes, 0u);
    expect_error(base(sa + "    lifetime: {soft_packets: 2000, hard_packets: 1000}\n"), errc::config_bad_value, 11,
                 "sas[0].lifetime", "soft");
    expect_error(base(sa + "    lifetime: {hard_packets: 0}\n"), errc::config_bad_value, 11,
                 "sas[0].lifetime.hard_packets");
    expect_error(base(sa + "    lifetime: {hard_pkts: 5}\n"), errc::config_unknown_key, 11,
                 "sas[0].lifetime.hard_pkts");
}

TEST(config, sender_id)
{
    const std::string sa = block_sa("out");
    const sa_cfg none = load_ok(base(sa)).sas.at(0);
    EXPECT_EQ(none.sender_id, 0u);
    EXPECT_EQ(none.sender_id_bits, 0u);
    const sa_cfg s = load_ok(base(sa + "    sender_id_bits: 12\n    sender_id: 0xabc\n")).sas.at(0);
    EXPECT_EQ(s.sender_id, 0xabcu);
    EXPECT_EQ(s.sender_id_bits, 12u);
    const sa_cfg top = load_ok(base(sa + "    sender_id: 65535\n    sender_id_bits: 16\n")).sas.at(0);
    EXPECT_EQ(top.sender_id, 65535u);
    EXPECT_EQ(top.sender_id_bits, 16u);
    const sa_cfg width_only = load_ok(base(sa + "    sender_id_bits: 8\n")).sas.at(0); // id 0 of 8 bits
    EXPECT_EQ(width_only.sender_id, 0u);
    EXPECT_EQ(width_only.sender_id_bits, 8u);
    const sa_cfg zero = load_ok(base(sa + "    sender_id_bits: 0\n    sender_id: 0\n")).sas.at(0);
    EXPECT_EQ(zero.sender_id_bits, 0u);
    const sa_cfg flow = load_ok(base("sas:\n  - {name: a, dir: out, spi: 0x1001, aead: aes-128-gcm, key: \"" +
                                     std::string(key128) + "\", sender_id: 7, sender_id_bits: 8}\n"))
                            .sas.at(0);
    EXPECT_EQ(flow.sender_id, 7u);
    EXPECT_EQ(flow.sender_id_bits, 8u);
}

TEST(config, sender_id_errors)
{
    struct bad {
        std::string sa_dir, extra; // after the SA's key (line 10): lines 11, 12
        errc code;
        int line;
        std::string key, word;
    };
    const bad cases[] = {
        // The width: 0..16.
        {"out", "sender_id_bits: 17", errc::config_bad_value, 11, "sas[0].sender_id_bits", "0..16"},
        {"out", "sender_id_bits: -1", errc::config_bad_value, 11, "sas[0].sender_id_bits", "integer"},
        {"out", "sender_id_bits: eight", errc::config_bad_value, 11, "sas[0].sender_id_bits", "got 'eight'"},
        {"out", "sender_id_bits:", errc::config_bad_value, 11, "sas[0].sender_id_bits", "empty value"},
        // The id: an integer that fits the width.
        {"out", "sender_id_bits: 8\n    sender_id: 256", errc::config_bad_value, 12, "sas[0].sender_id",
         "expected 0..255 to fit in sender_id_bits 8, got 256"},
        {"out", "sender_id: 0x1000\n    sender_id_bits: 12", errc::config_bad_value, 11, "sas[0].sender_id",
         "got 0x1000"},
        {"out", "sender_id_bits: 0\n    sender_id: 1", errc::config_bad_value, 12, "sas[0].sender_id",
         "0 bits = no Sender-ID"},
        {"out", "sender_id_bits: 16\n    sender_id: 65536", errc::config_bad_value, 12, "sas[0].sender_id", "0..65535"},
        {"out", "sender_id_bits: 8\n    sender_id: -3", errc::config_bad_value, 12, "sas[0].sender_id", "integer"},
        {"out", "sender_id_bits: 8\n    sender_id: [1]", errc::config_bad_value, 12, "sas[0].sender_id", "scalar"},
        // An id needs its width (the SA's mapping starts on line 6); a key given twice is a duplicate.
        {"out", "sender_id: 3", errc::config_missing_key, 6, "sas[0]", "missing key 'sender_id_bits'"},
        {"out", "sender_id_bits: 8\n    sender_id_bits: 12", errc::config_duplicate, 12, "sas[0].sender_id_bits",
         "twice"},
        // Only outbound SAs send, so only they have a Sender-ID.
        {"in", "sender_id_bits: 8", errc::config_bad_value, 11, "sas[0].sender_id_bits",
         "only outbound SAs (dir: out)"},
        {"in", "sender_id: 1", errc::config_bad_value, 11, "sas[0].sender_id", "dir: out"},
        {"in", "sender_id_bits: 0", errc::config_bad_value, 11, "sas[0].sender_id_bits", "Sender-ID"},
        // Both keys are listed among an SA's keys.
        {"out", "sender: 1", errc::config_unknown_key, 11, "sas[0].sender", "sender_id, sender_id_bits"},
    };
    for (const bad& c : cases) {
        SCOPED_TRACE(c.extra);
        expect_error(base(block_sa(c.sa_dir) + "    " + c.extra + "\n"), c.code, c.line, c.key, c.word);
    }
}

TEST(config, reassembly)
{
    auto d = load_string(base(), "c.yaml");
    ASSERT_TRUE(d.ok()) << d.err().detail;
    EXPECT_EQ(d->reassembly.timeout_ms, 2000u);
    EXPECT_EQ(d->reassembly.max_datagrams, 1024u);
    auto r = load_string(base("reassembly: {timeout_ms: 500, max_datagrams: 4096}\n"), "c.yaml");
    ASSERT_TRUE(r.ok()) << r.err().detail;
    EXPECT_EQ(r->reassembly.timeout_ms, 500u);
    EXPECT_EQ(r->reassembly.max_datagrams, 4096u);
    expect_error(base("reassembly: {timeout_ms: 5}\n"), errc::config_bad_value, 5, "reassembly.timeout_ms");
    expect_error(base("reassembly: {max_datagrams: 0}\n"), errc::config_bad_value, 5, "reassembly.max_datagrams");
    expect_error(base("reassembly: {timeout: 5}\n"), errc::config_unknown_key, 5, "reassembly.timeout");
    expect_error(base("reassembly: 5\n"), errc::config_bad_value, 5, "reassembly");
}

TEST(config, group_key_tree_and_multicast_rekeys)
{
    const gateway_cfg c = load_ok(base("groups:\n  - {name: v, id: 7, dst: 239.1.0.0/16, members: [a, b], key_tree: true,\n"
                                       "     lkh_arity: 4, lkh_max_members: 100000, rekey_batch_ms: 500,\n"
                                       "     rekey_address: 239.254.0.1:8848, rekey_ttl: 8, rekey_interface: 10.0.0.1}\n"));
    ASSERT_EQ(c.groups.size(), 1u);
    const group_cfg& g = c.groups[0];
    EXPECT_TRUE(g.key_tree);
    EXPECT_EQ(g.lkh_arity, 4u);
    EXPECT_EQ(g.lkh_max_members, 100000u);
    EXPECT_EQ(g.rekey_batch_ms, 500u);
    ASSERT_TRUE(g.rekey_address.has_value());
    EXPECT_EQ(g.rekey_address->address, "239.254.0.1");
    EXPECT_EQ(g.rekey_address->port, 8848);
    EXPECT_EQ(g.rekey_ttl, 8u);
    EXPECT_EQ(g.rekey_interface, "10.0.0.1");

    const gateway_cfg d = load_ok(base("groups:\n  - {name: v, id: 7, dst: 239.1.0.0/16}\n"));
    EXPECT_FALSE(d.groups[0].key_tree);
    EXPECT_EQ(d.groups[0].lkh_arity, 2u);
    EXPECT_FALSE(d.groups[0].rekey_address.has_value());

    expect_error(base("groups:\n  - {name: v, id: 7, dst: 239.1.0.0/16, rekey_address: 10.0.0.1:848}\n"),
                 errc::config_bad_value, 6, "groups[0].rekey_address", "multicast");
    expect_error(base("groups:\n  - {name: v, id: 7, dst: 239.1.0.0/16, lkh_arity: 17}\n"), errc::config_bad_value, 6,
                 "groups[0].lkh_arity", "2..16");
    expect_error(base("groups:\n  - {name: v, id: 7, dst: 239.1.0.0/16, key_tree: yes}\n"), errc::config_bad_value, 6,
                 "groups[0].key_tree", "true");
}

TEST(config, source_auth_blocks)
{
    const char* pem = "/tmp/msecgw_config_test_key.pem"; // only checked readable by the loader
    std::ofstream(pem) << "x\n";
    const std::string sas = std::string("sas:\n") +
                            "  - {name: o, dir: out, spi: 0x1001, aead: aes-128-gcm, key: \"" + key128 +
                            "\",\n     source_auth: {mode: tesla, signing_key: " + pem + ", interval_ms: 50}}\n" +
                            "  - {name: i, dir: in, spi: 0x1002, aead: aes-128-gcm, key: \"" + key128 +
                            "\",\n     source_auth: {mode: manifest, best_effort: true, trust: [{sender: 10.1.0.0/24, "
                            "public_key: " + pem + "}]}}\n" +
                            "  - {name: plain, dir: in, spi: 0x1003, aead: aes-128-gcm, key: \"" + key128 + "\"}\n";
    const std::string groups = std::string("groups:\n  - {name: g, id: 7, dst: 239.1.0.0/16,\n") +
                               "     source_auth: {mode: sign, signing_key: " + pem + "}}\n";
    auto c = load_string(base(groups + sas), "c.yaml");
    ASSERT_TRUE(c.ok()) << c.err().detail;
    ASSERT_EQ(c->source_auth.size(), 3u); // groups are parsed first
    ASSERT_TRUE(c->groups[0].source_auth);
    EXPECT_EQ(c->groups[0].source_auth->slot, 0u);
    EXPECT_EQ(c->groups[0].source_auth->mode, source_auth_mode::sign);
    const auto& t = *c->find_sa("o")->source_auth;
    EXPECT_EQ(t.slot, 1u);
    EXPECT_EQ(t.mode, source_auth_mode::tesla);
    EXPECT_EQ(t.interval_ms, 50u);
    EXPECT_EQ(t.disclosure_delay, 2u); // defaults
    EXPECT_EQ(t.clock_offset_bound_ms, 20u);
    EXPECT_EQ(t.signing_key, pem);
    EXPECT_EQ(t.where, "sas[0].source_auth");
    const auto& m = *c->find_sa("i")->source_auth;
    EXPECT_EQ(m.slot, 2u);
    EXPECT_TRUE(m.best_effort);
    ASSERT_EQ(m.trust.size(), 1u);
    EXPECT_EQ(to_string(m.trust[0].sender), "10.1.0.0/24");
    EXPECT_EQ(m.hold_packets, 1024u);
    EXPECT_FALSE(c->find_sa("plain")->source_auth);
    EXPECT_EQ(to_string(source_auth_mode::manifest), "manifest");
    EXPECT_FALSE(m.sign_on_worker); // default: the signing thread

    const std::string out = std::string("sas:\n  - {name: o, dir: out, spi: 0x1001, aead: aes-128-gcm, key: \"") +
                            key128 + "\",\n     source_auth: {mode: manifest, signing_key: " + pem;
    auto w = load_string(base(out + ", manifest_signer: worker}}\n"), "c.yaml");
    ASSERT_TRUE(w.ok()) << w.err().detail;
    EXPECT_TRUE(w->find_sa("o")->source_auth->sign_on_worker);
    expect_error(base(out + ", manifest_signer: gpu}}\n"), errc::config_bad_value, 7, "sas[0].source_auth.manifest_signer",
                 "thread");
    std::remove(pem);
}

// Regression (found by fuzz/config_fuzz.cc): yaml-cpp 0.7's YAML::LoadAll never returns on these,
// allocating null documents until memory runs out; the loader must answer with a syntax error or
// load the first document.
TEST(config, yaml_streams_that_hang_load_all_end)
{
    for (const char* text : {", x\n {", ",\n", ", x\n  - {a{b: 1}", ", x\n - [", ","}) {
        auto r = load_string(text, "c.yaml");
        ASSERT_FALSE(r.ok()) << text;
        EXPECT_TRUE(r.err().code == errc::config_syntax || r.err().code == errc::config_missing_key) << r.err().detail;
    }
    // A second document is still refused, and a trailing '---' still harmless.
    EXPECT_FALSE(load_string(base() + "---\nports: []\n", "c.yaml").ok());
    EXPECT_TRUE(load_string(base() + "---\n", "c.yaml").ok());
}
