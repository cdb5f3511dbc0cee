// The key-management sections of the YAML contract: groups, key_server, member, and policies that
// protect with a group's keys. Errors are one line naming file:line: key.path, and never echo a key.
#include <gtest/gtest.h>

#include <string>

#include "config/config.hh"
#include "config_expect.hh"

using namespace msecgw;
using namespace msecgw::config;
using msecgw::config::test::load_ok;

namespace {

const char* const psk_a = "0x000102030405060708090a0b0c0d0e0f";
const char* const psk_b = "0xa0a1a2a3a4a5a6a7a8a9aaabacadaeaf";

/// Lines 1-4: state_dir and ports; `extra` starts on line 5.
std::string base(const std::string& extra)
{
    return "state_dir: /tmp/s\nports:\n  - {port: 0, side: clear}\n  - {port: 1, side: protected}\n" + extra;
}

/// Lines 5-6: one group `video` (line 6).
std::string group(const std::string& more = "")
{
    return "groups:\n  - {name: video, id: 7, dst: 239.1.0.0/16, members: [gw-a, gw-b], senders: [gw-a]" + more + "}\n";
}

/// Lines 7-10 after group(): a key server with both peers.
std::string key_server(const std::string& more = "")
{
    return std::string("key_server:\n  listen: 127.0.0.1:18848\n  peers:\n") + "    - {identity: gw-a, psk: \"" + psk_a +
           "\"}\n    - {identity: gw-b, psk: \"" + psk_b + "\"}\n" + more;
}

std::string member(const std::string& more = "")
{
    return std::string("member:\n  identity: gw-a\n  psk: \"") + psk_a + "\"\n  key_server: 127.0.0.1:18848\n" + more;
}

void expect_error(const std::string& yaml, errc code, int line, const std::string& key, const std::string& word = "")
{
    test::expect_config_error(yaml, code, line, key, word, {"0001020304050607", "a0a1a2a3a4a5"});
}

} // namespace

TEST(config_keys, EveryKeyOfTheThreeSections)
{
    const gateway_cfg c = load_ok(base(
        "groups:\n"
        "  - name: video\n    id: 0x10\n    src: 10.1.0.0/16\n    dst: 239.1.0.0/16\n    aead: aes-256-gcm\n"
        "    tek_lifetime_seconds: 600\n    rekey_period_seconds: 300\n    sender_id_bits: 12\n"
        "    members: [gw-a, gw-b]\n    senders: gw-a\n    replay_window: 4096\n" +
        key_server("  identity: ks1\n  state_path: /var/lib/msecgw/gcks.db\n  storage_key_file: /etc/msecgw/k\n"
                   "  admission: {half_open_timeout_ms: 5000, max_half_open: 100, cookie_threshold: 10,"
                   " max_half_open_per_address: 7,"
                   " cookie_secret_lifetime_ms: 2000, finished_linger_ms: 0}\n") +
        member("  key_server_identity: ks1\n  local_address: 127.0.0.2\n  dh_group: 31\n"
               "  activation_delay_ms: 250\n  deactivation_delay_ms: 2500\n") +
        "policies:\n  - {dir: out, dst: 239.1.0.0/16, action: protect, group: video}\n"
        "  - {dir: in, dst: 239.1.0.0/16, action: protect, group: video}\n"));
    ASSERT_EQ(c.groups.size(), 1u);
    const group_cfg& g = c.groups[0];
    EXPECT_EQ(g.name, "video");
    EXPECT_EQ(g.id, 16u);
    EXPECT_EQ(to_string(g.src), "10.1.0.0/16");
    EXPECT_EQ(to_string(g.dst), "239.1.0.0/16");
    EXPECT_EQ(g.aead, aead_alg::aes_256_gcm);
    EXPECT_EQ(g.tek_lifetime_seconds, 600u);
    EXPECT_EQ(g.rekey_period_seconds, 300u);
    EXPECT_EQ(g.sender_id_bits, 12);
    EXPECT_EQ(g.members, (std::vector<std::string>{"gw-a", "gw-b"}));
    EXPECT_EQ(g.senders, (std::vector<std::string>{"gw-a"}));
    EXPECT_EQ(g.replay_window, 4096u);
    ASSERT_TRUE(c.key_server);
    EXPECT_EQ(c.key_server->listen, (udp_endpoint{"127.0.0.1", 18848}));
    EXPECT_EQ(c.key_server->identity, "ks1");
    ASSERT_EQ(c.key_server->peers.size(), 2u);
    EXPECT_EQ(c.key_server->peers[1].identity, "gw-b");
    EXPECT_EQ(c.key_server->peers[1].psk.size(), 16u);
    EXPECT_EQ(c.key_server->state_path, "/var/lib/msecgw/gcks.db");
    EXPECT_EQ(c.key_server->storage_key_file, "/etc/msecgw/k");
    EXPECT_EQ(c.key_server->admission.half_open_timeout_ms, 5000u);
    EXPECT_EQ(c.key_server->admission.max_half_open, 100u);
    EXPECT_EQ(c.key_server->admission.max_half_open_per_address, 7u);
    EXPECT_EQ(c.key_server->admission.cookie_threshold, 10u);
    EXPECT_EQ(c.key_server->admission.cookie_secret_lifetime_ms, 2000u);
    EXPECT_EQ(c.key_server->admission.finished_linger_ms, 0u);
    ASSERT_EQ(c.members.size(), 1u);
    EXPECT_EQ(c.members.at(0).identity, "gw-a");
    EXPECT_EQ(c.members.at(0).psk.size(), 16u);
    EXPECT_EQ(c.members.at(0).key_server, (udp_endpoint{"127.0.0.1", 18848}));
    EXPECT_EQ(c.members.at(0).key_server_identity, "ks1");
    EXPECT_EQ(c.members.at(0).local_address, "127.0.0.2");
    EXPECT_EQ(c.members.at(0).dh_group, 31);
    EXPECT_EQ(c.members.at(0).activation_delay_ms, 250u);
    EXPECT_EQ(c.members.at(0).deactivation_delay_ms, 2500u);
    ASSERT_EQ(c.policies.size(), 2u);
    EXPECT_EQ(c.policies[0].group, "video");
    EXPECT_TRUE(c.policies[0].sa.empty());
}

TEST(config_keys, Defaults)
{
    const gateway_cfg c = load_ok(base(group() + key_server() + member() +
                                       "policies:\n  - {dir: in, dst: 239.1.0.0/16, action: protect, group: video}\n"));
    const group_cfg& g = c.groups[0];
    EXPECT_TRUE(g.src.is_any());
    EXPECT_EQ(g.aead, aead_alg::aes_128_gcm);
    EXPECT_EQ(g.tek_lifetime_seconds, 3600u);
    EXPECT_EQ(g.rekey_period_seconds, 0u);
    EXPECT_EQ(g.sender_id_bits, 16);
    EXPECT_EQ(g.replay_window, 1024u);
    EXPECT_EQ(c.key_server->identity, "gcks");
    EXPECT_TRUE(c.key_server->state_path.empty());
    EXPECT_EQ(c.members.at(0).key_server_identity, "gcks");
    EXPECT_EQ(c.members.at(0).local_address, "0.0.0.0");
    EXPECT_EQ(c.members.at(0).dh_group, 19);
    EXPECT_EQ(c.members.at(0).activation_delay_ms, 1000u);
    EXPECT_EQ(c.members.at(0).deactivation_delay_ms, 5000u);
}

TEST(config_keys, Certificates)
{
    const gateway_cfg c = load_ok(base(
        group() + "key_server:\n  certificate_file: /etc/msecgw/gcks.crt\n  private_key_file: /etc/msecgw/gcks.key\n"
                  "  ca_file: /etc/msecgw/ca.crt\n" +
        "member:\n  identity: gw-a\n  key_server: 127.0.0.1\n  certificate_file: /etc/msecgw/gw-a.crt\n"
        "  private_key_file: /etc/msecgw/gw-a.key\n  ca_file: /etc/msecgw/ca.crt\n"));
    EXPECT_EQ(c.key_server->certificates.certificate_file, "/etc/msecgw/gcks.crt");
    EXPECT_EQ(c.key_server->certificates.private_key_file, "/etc/msecgw/gcks.key");
    EXPECT_EQ(c.key_server->certificates.ca_file, "/etc/msecgw/ca.crt");
    EXPECT_TRUE(c.key_server->peers.empty()) << "with ca_file, members need no peers entry";
    EXPECT_EQ(c.members.at(0).psk.size(), 0u);
    EXPECT_EQ(c.members.at(0).certificates.certificate_file, "/etc/msecgw/gw-a.crt");
    EXPECT_EQ(c.members.at(0).key_server, (udp_endpoint{"127.0.0.1", 848}));
}

TEST(config_keys, AKeyServerAloneNeedsNoPorts)
{
    const gateway_cfg c = load_ok(group() + key_server());
    EXPECT_TRUE(c.ports.empty());
    expect_error(group(), errc::config_missing_key, 1, "(top)", "ports");
}

TEST(config_keys, GroupErrors)
{
    expect_error(base("groups:\n  - {name: video, id: 7}\n"), errc::config_missing_key, 6, "groups[0]", "'dst'");
    expect_error(base("groups:\n  - {name: video, id: 0, dst: 239.1.0.0/16}\n"), errc::config_bad_value, 6,
                 "groups[0].id", "1..");
    expect_error(base("groups:\n  - {name: 'a b', id: 1, dst: 239.1.0.0/16}\n"), errc::config_bad_value, 6,
                 "groups[0].name", "[A-Za-z0-9_.-]");
    expect_error(base("groups:\n  - {name: g, id: 1, dst: any}\n"), errc::config_bad_value, 6, "groups[0].dst",
                 "destination prefix");
    expect_error(base("groups:\n  - {name: g, id: 1, dst: 239.1.0.0/16, src: '2001:db8::/32'}\n"),
                 errc::config_bad_value, 6, "groups[0].src", "mix");
    expect_error(base("groups:\n  - {name: g, id: 1, dst: 239.1.0.0/16, tek_lifetime_seconds: 60, "
                      "rekey_period_seconds: 60}\n"),
                 errc::config_bad_value, 6, "groups[0].rekey_period_seconds", "below tek_lifetime_seconds");
    expect_error(base("groups:\n  - {name: g, id: 1, dst: 239.1.0.0/16, sender_id_bits: 17}\n"),
                 errc::config_bad_value, 6, "groups[0].sender_id_bits", "1..16");
    expect_error(base("groups:\n  - {name: g, id: 1, dst: 239.1.0.0/16, members: [a], senders: [b]}\n"),
                 errc::config_reference, 6, "groups[0].senders", "not in members");
    expect_error(base("groups:\n  - {name: g, id: 1, dst: 239.1.0.0/16}\n  - {name: g, id: 2, dst: 239.2.0.0/16}\n"),
                 errc::config_duplicate, 7, "groups[1].name", "used twice");
    expect_error(base("groups:\n  - {name: g, id: 1, dst: 239.1.0.0/16}\n  - {name: h, id: 1, dst: 239.2.0.0/16}\n"),
                 errc::config_duplicate, 7, "groups[1].id", "used twice");
    expect_error(base("groups:\n  - {name: g, id: 1, dst: 239.1.0.0/16, color: red}\n"), errc::config_unknown_key, 6,
                 "groups[0].color", "unknown key");
}

TEST(config_keys, KeyServerErrors)
{
    expect_error(base(group() + "key_server:\n  listen: 127.0.0.1:99999\n"), errc::config_bad_value, 8,
                 "key_server.listen", "port");
    expect_error(base(group() + "key_server:\n  listen: 'ff02::1'\n"), errc::config_bad_value, 8, "key_server.listen",
                 "IPv4");
    expect_error(base(group() + key_server("  state_path: /tmp/g.db\n")), errc::config_missing_key, 8, "key_server",
                 "storage_key_file");
    expect_error(base(group() + "key_server:\n  peers:\n    - {identity: gw-a, psk: \"0x0011\"}\n"),
                 errc::config_bad_value, 9, "key_server.peers[0].psk", "at least 16 bytes");
    expect_error(base(group() + std::string("key_server:\n  peers:\n    - {identity: gw-a, psk: \"") + psk_a +
                      "\"}\n    - {identity: gw-a, psk: \"" + psk_b + "\"}\n"),
                 errc::config_duplicate, 10, "key_server.peers[1].identity", "twice");
    expect_error(base(group() + std::string("key_server:\n  peers:\n    - {identity: gw-a, psk: \"") + psk_a + "\"}\n"),
                 errc::config_reference, 6, "groups", "'gw-b' has no entry in key_server.peers");
    expect_error(base("key_server:\n  listen: 127.0.0.1:848\n"), errc::config_missing_key, 6, "key_server", "groups");
    expect_error(base(group() + key_server("  admission: {max_half_open: 0}\n")), errc::config_bad_value, 12,
                 "key_server.admission.max_half_open", "1..");
}

TEST(config_keys, MemberAndGroupPolicyErrors)
{
    expect_error(base(group() + "member:\n  identity: gw-a\n  key_server: 127.0.0.1:848\n"),
                 errc::config_missing_key, 8, "member", "'psk' (or certificate_file");
    expect_error(base(group() + "member:\n  identity: gw-a\n  key_server: 127.0.0.1:848\n  certificate_file: /c\n"),
                 errc::config_missing_key, 8, "member", "go together");
    expect_error(base(group() + member("  dh_group: 14\n")), errc::config_bad_value, 11, "member.dh_group", "19, 31");
    expect_error(base(group() + member("  local_address: 127.0.0.1:500\n")), errc::config_bad_value, 11,
                 "member.local_address", "address only");
    expect_error(base(group() + "policies:\n  - {dir: out, dst: 239.1.0.0/16, action: protect, group: video}\n"),
                 errc::config_missing_key, 8, "policies", "'member'");
    expect_error(base(group() + member() + "policies:\n  - {dir: out, action: protect, group: nosuch}\n"),
                 errc::config_reference, 12, "policies[0].group", "no group named 'nosuch'");
    expect_error(base(group() + member() + "policies:\n  - {dir: out, dst: 'ff3e::/16', action: protect, group: video}\n"),
                 errc::config_bad_value, 12, "policies[0].group", "other IP version");
    expect_error(base(group() + member() + "policies:\n  - {dir: out, action: bypass, group: video}\n"),
                 errc::config_bad_value, 12, "policies[0].group", "only protect policies");
    expect_error(base(group() + member() + std::string("sas:\n  - {name: a, dir: out, spi: 0x1001, aead: aes-128-gcm, key: \"") +
                      "0xfeffe9928665731c6d6a8f9467308308cafebabe\"}\n"
                      "policies:\n  - {dir: out, action: protect, sa: a, group: video}\n"),
                 errc::config_bad_value, 14, "policies[0].group", "not both");
    expect_error(base("policies:\n  - {dir: out, action: protect}\n"), errc::config_missing_key, 6, "policies[0]",
                 "'sa' or 'group'");
}

TEST(config_keys, SeveralKeyServersOnEtcd)
{
    const gateway_cfg c = load_ok(base(
        group() +
        key_server("  storage_key_file: /etc/msecgw/k\n"
                   "  etcd_endpoints: [http://10.0.0.1:2379, http://10.0.0.2:2379]\n"
                   "  etcd_prefix: /msecgw/r1\n  candidate_id: ks-1\n  leader_ttl_seconds: 7\n") +
        std::string("member:\n  identity: gw-a\n  psk: \"") + psk_a +
        "\"\n  key_server: [127.0.0.1:18848, 127.0.0.2]\n"));
    ASSERT_TRUE(c.key_server && c.members.size() == 1);
    EXPECT_EQ(c.key_server->etcd_endpoints, (std::vector<std::string>{"http://10.0.0.1:2379", "http://10.0.0.2:2379"}));
    EXPECT_EQ(c.key_server->etcd_prefix, "/msecgw/r1");
    EXPECT_EQ(c.key_server->candidate_id, "ks-1");
    EXPECT_EQ(c.key_server->leader_ttl_seconds, 7u);
    ASSERT_EQ(c.members.at(0).key_servers.size(), 2u);
    EXPECT_EQ(c.members.at(0).key_servers[1].address, "127.0.0.2");
    EXPECT_EQ(c.members.at(0).key_servers[1].port, 848);
    EXPECT_EQ(c.members.at(0).key_server.port, 18848) << "key_server is the first of the list";

    const gateway_cfg one = load_ok(base(group() + key_server() + member()));
    ASSERT_EQ(one.members.at(0).key_servers.size(), 1u);
    EXPECT_TRUE(one.key_server->etcd_endpoints.empty());
    EXPECT_EQ(one.key_server->leader_ttl_seconds, 5u);

    // The state lives in etcd: keys wrapped under a storage key, and no SQLite file besides.
    expect_error(base(group() + key_server("  etcd_endpoints: [http://10.0.0.1:2379]\n")), errc::config_missing_key, 8,
                 "key_server", "storage_key_file");
    expect_error(base(group() + key_server("  storage_key_file: /k\n  leader_ttl_seconds: 1\n")), errc::config_bad_value,
                 13, "key_server.leader_ttl_seconds", "");
}
