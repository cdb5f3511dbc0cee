// A boundary gateway keyed by two regions' key servers (key_manager over two real GCKS on
// 127.0.0.1): each group registers with the key server of its region under that region's member
// entry (each key server knows only its own identity for the boundary), the group's SAs land in
// its region, and a rekey in one region leaves the other region's keys untouched.

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <functional>
#include <string>

#include <gtest/gtest.h>

#include "config/config.hh"
#include "control/key_manager.hh"
#include "../common/free_port.hh"

using namespace msecgw;
using clock_type = control::key_manager::clock;

namespace {

const char* const psk_leaf = "0x6c6561662d726567696f6e2d70736b21"; // test only
const char* const psk_trunk = "0x7472756e6b2d726567696f6e2d70736b";

/// A key server alone (as `msecgw --gcks-only`) for one group, knowing one member identity.
std::string key_server_text(const std::string& group, uint32_t id, uint16_t port, const std::string& identity,
                            const char* psk)
{
    return "groups:\n  - {name: " + group + ", id: " + std::to_string(id) + ", dst: 239.0.0.0/8, members: [" + identity +
           "], senders: [" + identity + "]}\n" + "key_server:\n  listen: 127.0.0.1:" + std::to_string(port) +
           "\n  peers:\n    - {identity: " + identity + ", psk: \"" + psk + "\"}\n";
}

/// The boundary: opens group leaf (leaf-a's key server) and seals group trunk (the trunk's).
std::string boundary_text(uint16_t leaf_port, uint16_t trunk_port)
{
    return "regions: [leaf-a, trunk]\n"
           "ports:\n  - {port: 0, side: protected, region: leaf-a}\n  - {port: 1, side: protected, region: trunk}\n"
           "groups:\n  - {name: leaf, id: 1, dst: 239.0.0.0/8, region: leaf-a}\n"
           "  - {name: trunk, id: 2, dst: 239.0.0.0/8, region: trunk}\n"
           "member:\n"
           "  - {region: leaf-a, identity: bnd-leaf, psk: \"" + std::string(psk_leaf) + "\", key_server: 127.0.0.1:" +
           std::to_string(leaf_port) + ", activation_delay_ms: 0}\n"
           "  - {region: trunk, identity: bnd-trunk, psk: \"" + psk_trunk + "\", key_server: 127.0.0.1:" +
           std::to_string(trunk_port) + ", activation_delay_ms: 0}\n"
           "policies:\n"
           "  - {dir: in, region: leaf-a, dst: 239.0.0.0/8, action: protect, group: leaf}\n"
           "  - {dir: out, region: trunk, dst: 239.0.0.0/8, action: protect, group: trunk}\n";
}

struct gateway {
    config::gateway_cfg cfg;
    std::unique_ptr<control::key_manager> km;
};

gateway make(const std::string& text, bool member_role)
{
    auto cfg = config::load_string(text, "region_members_test");
    EXPECT_TRUE(cfg.ok()) << (cfg ? "" : cfg.err().detail);
    if (!cfg) {
        return {};
    }
    auto km = control::key_manager::create(*cfg, member_role, clock_type::now());
    EXPECT_TRUE(km.ok()) << (km ? "" : km.err().detail);
    return {std::move(*cfg), km ? std::move(*km) : nullptr};
}

/// Ticks the gateways at the real time until pred holds (bounded rounds, no timing in the check).
bool tick_until(std::vector<control::key_manager*> gws, const std::function<bool()>& pred)
{
    for (int round = 0; round < 2000 && !pred(); ++round) {
        ::poll(nullptr, 0, 2);
        for (auto* g : gws) {
            g->tick(clock_type::now());
        }
    }
    return pred();
}

control::member_status status(const control::key_manager& km, const std::string& group)
{
    const auto all = km.members();
    auto it = std::find_if(all.begin(), all.end(), [&](const auto& m) { return m.group == group; });
    EXPECT_NE(it, all.end()) << group;
    return it == all.end() ? control::member_status{} : *it;
}

const config::sa_cfg* sa_with_spi(const config::gateway_cfg& cfg, uint32_t spi, config::direction dir)
{
    for (const auto& s : cfg.sas) {
        if (s.spi == spi && s.dir == dir) {
            return &s;
        }
    }
    return nullptr;
}

} // namespace

TEST(gkm_region_members, each_group_registers_with_its_regions_key_server_and_rekeys_stay_in_their_region)
{
    const uint16_t leaf_port = test::free_loopback_port(SOCK_DGRAM);
    const uint16_t trunk_port = test::free_loopback_port(SOCK_DGRAM);
    ASSERT_NE(leaf_port, trunk_port);
    gateway leaf_ks = make(key_server_text("leaf", 1, leaf_port, "bnd-leaf", psk_leaf), false);
    gateway trunk_ks = make(key_server_text("trunk", 2, trunk_port, "bnd-trunk", psk_trunk), false);
    gateway bnd = make(boundary_text(leaf_port, trunk_port), true);
    ASSERT_TRUE(leaf_ks.km && trunk_ks.km && bnd.km);
    const std::vector<control::key_manager*> all{leaf_ks.km.get(), trunk_ks.km.get(), bnd.km.get()};
    ASSERT_TRUE(tick_until(all, [&] {
        return !status(*bnd.km, "leaf").in_spis.empty() && status(*bnd.km, "trunk").out_spi.has_value();
    })) << status(*bnd.km, "leaf").last_error << " / " << status(*bnd.km, "trunk").last_error;

    // Each group went to its own region's key server (each knows only that region's identity).
    EXPECT_EQ(status(*bnd.km, "leaf").key_server, "127.0.0.1:" + std::to_string(leaf_port));
    EXPECT_EQ(status(*bnd.km, "trunk").key_server, "127.0.0.1:" + std::to_string(trunk_port));
    EXPECT_EQ(leaf_ks.km->key_server()->counters().registrations, 1u);
    EXPECT_EQ(trunk_ks.km->key_server()->counters().registrations, 1u);
    EXPECT_EQ(leaf_ks.km->key_server()->counters().authentication_failed, 0u);
    EXPECT_EQ(trunk_ks.km->key_server()->counters().authentication_failed, 0u);
    EXPECT_FALSE(status(*bnd.km, "leaf").sender) << "the boundary only opens leaf-a's group";
    EXPECT_TRUE(status(*bnd.km, "trunk").sender_id.has_value()) << "and seals the trunk's";

    // The SAs: leaf-a's TEK opens in leaf-a, the trunk's TEK seals in the trunk.
    const uint32_t leaf_spi = leaf_ks.km->key_server_group("leaf")->tek_spi;
    const uint32_t trunk_spi = trunk_ks.km->key_server_group("trunk")->tek_spi;
    config::gateway_cfg run = bnd.km->expand(bnd.cfg);
    const config::sa_cfg* in = sa_with_spi(run, leaf_spi, config::direction::in);
    const config::sa_cfg* out = sa_with_spi(run, trunk_spi, config::direction::out);
    ASSERT_NE(in, nullptr);
    ASSERT_NE(out, nullptr);
    EXPECT_EQ(in->region, 0) << "leaf-a";
    EXPECT_EQ(out->region, 1) << "trunk";
    for (const auto& s : run.sas) {
        EXPECT_EQ(s.region, s.group == "leaf" ? 0 : 1) << s.name;
    }
    for (const auto& p : run.policies) {
        const config::sa_cfg* sa = run.find_sa(p.sa);
        ASSERT_NE(sa, nullptr) << p.group;
        EXPECT_EQ(sa->region, p.region) << "policy of group " << p.group << " names an SA of its own region";
    }
    const std::vector<uint8_t> trunk_key = out->key.bytes();

    // A rekey of leaf-a's group changes the leaf keys only.
    const uint64_t trunk_changes = status(*bnd.km, "trunk").key_changes;
    ASSERT_TRUE(leaf_ks.km->rekey("leaf").ok());
    const uint32_t leaf_spi2 = leaf_ks.km->key_server_group("leaf")->tek_spi;
    ASSERT_NE(leaf_spi2, leaf_spi);
    ASSERT_TRUE(tick_until(all, [&] { return status(*bnd.km, "leaf").in_spis.front() == leaf_spi2; }));
    EXPECT_EQ(status(*bnd.km, "trunk").key_changes, trunk_changes);
    run = bnd.km->expand(bnd.cfg);
    ASSERT_NE(sa_with_spi(run, leaf_spi2, config::direction::in), nullptr);
    EXPECT_EQ(sa_with_spi(run, leaf_spi2, config::direction::in)->region, 0);
    ASSERT_NE(sa_with_spi(run, trunk_spi, config::direction::out), nullptr);
    EXPECT_EQ(sa_with_spi(run, trunk_spi, config::direction::out)->key.bytes(), trunk_key)
        << "the trunk's SA is untouched by leaf-a's rekey";
    EXPECT_EQ(trunk_ks.km->key_server_group("trunk")->tek_spi, trunk_spi);
}
