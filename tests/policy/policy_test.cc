// The ACL classifier against a plain first-match reference over random rules and packets.
#include <gtest/gtest.h>

#include <arpa/inet.h>

#include <cstring>
#include <random>

#include "policy/flow_cache.hh"
#include "policy/policy.hh"

using namespace msecgw;
using config::direction;
using config::ip_family;
using config::policy_action;
using config::policy_cfg;

namespace {

struct test_pkt {
    std::array<uint8_t, 128> frame{};
    packet::pkt_meta meta{};
};

test_pkt make_pkt(ip_family fam, const std::array<uint8_t, 16>& src, const std::array<uint8_t, 16>& dst,
                  uint8_t proto, uint16_t sport, uint16_t dport, uint16_t vlan)
{
    test_pkt p;
    p.meta.l3_off = 14;
    p.meta.family = fam == ip_family::v4 ? 4 : 6;
    p.meta.proto = proto;
    p.meta.sport = sport;
    p.meta.dport = dport;
    p.meta.vlan = vlan;
    if (fam == ip_family::v4) {
        std::memcpy(&p.frame[14 + 12], src.data(), 4);
        std::memcpy(&p.frame[14 + 16], dst.data(), 4);
    } else {
        std::memcpy(&p.frame[14 + 8], src.data(), 16);
        std::memcpy(&p.frame[14 + 24], dst.data(), 16);
    }
    return p;
}

/// The parsed metadata and frame pointers of a burst of test packets, as classify takes them.
struct burst_view {
    std::vector<packet::pkt_meta> metas;
    std::vector<const uint8_t*> frames;
};

burst_view view_of(const std::vector<test_pkt>& pkts)
{
    burst_view v;
    for (const auto& p : pkts) {
        v.metas.push_back(p.meta);
        v.frames.push_back(p.frame.data());
    }
    return v;
}

bool prefix_matches(const config::ip_prefix& p, ip_family fam, const std::array<uint8_t, 16>& a)
{
    if (p.is_any()) {
        return true;
    }
    if (p.family != fam) {
        return false;
    }
    for (int bit = 0; bit < p.length; ++bit) {
        const int byte = bit / 8;
        const int mask = 0x80 >> (bit % 8);
        if ((p.addr[byte] & mask) != (a[byte] & mask)) {
            return false;
        }
    }
    return true;
}

/// The specification: first rule of the direction that matches every field.
policy::rule_id reference(const std::vector<policy_cfg>& rules, direction dir, ip_family fam,
                          const std::array<uint8_t, 16>& src, const std::array<uint8_t, 16>& dst,
                          uint8_t proto, uint16_t sport, uint16_t dport, uint16_t vlan)
{
    policy::rule_id id = 0;
    for (const auto& r : rules) {
        if (r.dir != dir) {
            continue;
        }
        ++id;
        if (!r.applies_to(fam) || !prefix_matches(r.src, fam, src) || !prefix_matches(r.dst, fam, dst)) {
            continue;
        }
        if ((r.proto && *r.proto != proto) || sport < r.sport.lo || sport > r.sport.hi ||
            dport < r.dport.lo || dport > r.dport.hi || vlan < r.vlan.lo || vlan > r.vlan.hi) {
            continue;
        }
        return id;
    }
    return policy::no_match;
}

config::ip_prefix prefix(const char* text)
{
    auto r = config::parse_prefix(text);
    EXPECT_TRUE(r.ok()) << text;
    return r.ok() ? r.value() : config::ip_prefix{};
}

std::array<uint8_t, 16> addr(const char* text)
{
    return prefix(text).addr;
}

} // namespace

TEST(policy, first_match_wins_in_file_order)
{
    std::vector<policy_cfg> rules(3);
    rules[0].dst = prefix("239.1.0.0/16");
    rules[0].action = policy_action::discard;
    rules[1].dst = prefix("239.0.0.0/8");
    rules[1].action = policy_action::bypass;
    rules[2].action = policy_action::bypass; // any/any
    auto t = policy::table::build(rules, direction::out, "t_first", 0);
    ASSERT_TRUE(t.ok()) << t.err().detail;
    auto a = make_pkt(ip_family::v4, addr("10.0.0.1"), addr("239.1.2.3"), 17, 1, 2, packet::vlan_none);
    auto b = make_pkt(ip_family::v4, addr("10.0.0.1"), addr("239.2.2.3"), 17, 1, 2, packet::vlan_none);
    auto c = make_pkt(ip_family::v6, addr("2001:db8::1"), addr("ff0e::1"), 17, 1, 2, packet::vlan_none);
    const packet::pkt_meta metas[] = {a.meta, b.meta, c.meta};
    const uint8_t* frames[] = {a.frame.data(), b.frame.data(), c.frame.data()};
    policy::rule_id out[3];
    (*t)->classify(metas, frames, 3, out);
    EXPECT_EQ(out[0], 1u);
    EXPECT_EQ(out[1], 2u);
    EXPECT_EQ(out[2], 3u);
    EXPECT_EQ((*t)->rule(out[1]).action, policy_action::bypass);
}

TEST(policy, other_direction_and_no_rules_give_no_match)
{
    std::vector<policy_cfg> rules(1);
    rules[0].dir = direction::in;
    rules[0].action = policy_action::bypass;
    auto t = policy::table::build(rules, direction::out, "t_empty", 0);
    ASSERT_TRUE(t.ok());
    auto a = make_pkt(ip_family::v4, addr("10.0.0.1"), addr("239.1.2.3"), 17, 1, 2, packet::vlan_none);
    const uint8_t* frames[] = {a.frame.data()};
    policy::rule_id out[1] = {7};
    (*t)->classify(&a.meta, frames, 1, out);
    EXPECT_EQ(out[0], policy::no_match);
}

TEST(policy, vlan_ports_and_protocol_fields)
{
    std::vector<policy_cfg> rules(4);
    rules[0].vlan = {config::vlan_untagged, config::vlan_untagged};
    rules[0].action = policy_action::discard;
    rules[1].proto = 17;
    rules[1].dport = {5000, 5999};
    rules[1].vlan = {100, 100};
    rules[1].action = policy_action::bypass;
    rules[2].proto = 6;
    rules[2].action = policy_action::bypass;
    rules[3].vlan = {200, 300};
    rules[3].action = policy_action::discard;
    auto t = policy::table::build(rules, direction::out, "t_fields", 0);
    ASSERT_TRUE(t.ok()) << t.err().detail;
    struct {
        uint8_t proto;
        uint16_t dport, vlan;
        policy::rule_id want;
    } cases[] = {{17, 5000, packet::vlan_none, 1}, {17, 5000, 100, 2}, {17, 5999, 100, 2},
                 {17, 6000, 100, policy::no_match}, {6, 80, 100, 3}, {17, 6000, 250, 4},
                 {17, 5500, 99, policy::no_match}};
    for (const auto& c : cases) {
        auto p = make_pkt(ip_family::v6, addr("2001:db8::1"), addr("ff0e::1"), c.proto, 1, c.dport, c.vlan);
        const uint8_t* frames[] = {p.frame.data()};
        policy::rule_id out[1];
        (*t)->classify(&p.meta, frames, 1, out);
        EXPECT_EQ(out[0], c.want) << "proto " << int(c.proto) << " dport " << c.dport << " vlan " << c.vlan;
    }
}

TEST(policy, matches_reference_on_random_rules_and_packets)
{
    std::mt19937 rng(1234);
    auto pick = [&](uint32_t n) { return static_cast<uint32_t>(rng() % n); };
    auto rand_addr = [&](ip_family fam) {
        std::array<uint8_t, 16> a{};
        a[0] = fam == ip_family::v4 ? static_cast<uint8_t>(224 + pick(16)) : 0xff;
        for (int i = 1; i < (fam == ip_family::v4 ? 4 : 16); ++i) {
            a[i] = static_cast<uint8_t>(pick(4)); // small alphabet so prefixes collide
        }
        return a;
    };
    auto rand_prefix = [&](ip_family fam) {
        config::ip_prefix p;
        if (pick(4) == 0) {
            return p; // any
        }
        p.family = fam;
        p.length = static_cast<uint8_t>(pick(fam == ip_family::v4 ? 33 : 129));
        p.addr = rand_addr(fam);
        for (int bit = p.length; bit < 128; ++bit) {
            p.addr[bit / 8] &= static_cast<uint8_t>(~(0x80 >> (bit % 8)));
        }
        return p;
    };
    std::vector<policy_cfg> rules(1000);
    for (auto& r : rules) {
        const ip_family fam = pick(2) ? ip_family::v4 : ip_family::v6;
        r.dir = pick(5) ? direction::out : direction::in;
        r.src = rand_prefix(fam);
        r.dst = rand_prefix(fam);
        if (pick(2)) {
            r.proto = pick(2) ? 17 : 6;
            if (pick(2)) {
                uint16_t lo = static_cast<uint16_t>(pick(8)), hi = static_cast<uint16_t>(lo + pick(4));
                r.dport = {lo, hi};
            }
        }
        if (pick(3) == 0) {
            uint16_t lo = static_cast<uint16_t>(pick(6));
            r.vlan = {lo, static_cast<uint16_t>(lo + pick(3))};
        }
        r.action = pick(2) ? policy_action::bypass : policy_action::discard;
    }
    auto t = policy::table::build(rules, direction::out, "t_random", 0);
    ASSERT_TRUE(t.ok()) << t.err().detail;
    int matched = 0;
    for (int round = 0; round < 400; ++round) {
        std::vector<test_pkt> pkts;
        std::vector<policy::rule_id> want;
        for (int i = 0; i < max_burst; ++i) {
            const ip_family fam = pick(2) ? ip_family::v4 : ip_family::v6;
            auto s = rand_addr(fam), d = rand_addr(fam);
            uint8_t proto = pick(2) ? 17 : 6;
            uint16_t sp = static_cast<uint16_t>(pick(10)), dp = static_cast<uint16_t>(pick(12));
            uint16_t vl = pick(3) ? static_cast<uint16_t>(pick(8)) : packet::vlan_none;
            pkts.push_back(make_pkt(fam, s, d, proto, sp, dp, vl));
            want.push_back(reference(rules, direction::out, fam, s, d, proto, sp, dp, vl));
        }
        const burst_view b = view_of(pkts);
        std::vector<policy::rule_id> got(max_burst);
        (*t)->classify(b.metas.data(), b.frames.data(), max_burst, got.data());
        for (int i = 0; i < max_burst; ++i) {
            ASSERT_EQ(got[i], want[i]) << "round " << round << " packet " << i;
            matched += got[i] != policy::no_match;
        }
    }
    EXPECT_GT(matched, 1000); // the random space really exercises matches, not only misses
}

TEST(policy, flow_cache_answers_like_the_table_and_never_across_tables)
{
    std::vector<policy_cfg> rules(3);
    rules[0].dst = prefix("239.1.0.0/16");
    rules[0].proto = 17;
    rules[0].dport = {5000, 5000};
    rules[0].action = policy_action::discard;
    rules[1].dst = prefix("239.0.0.0/8");
    rules[1].action = policy_action::bypass;
    rules[2].vlan = {7, 7};
    rules[2].action = policy_action::bypass;
    auto t1 = policy::table::build(rules, direction::out, "t_cache1", 0);
    rules.erase(rules.begin()); // same shape, different first rule: ids shift
    auto t2 = policy::table::build(rules, direction::out, "t_cache2", 0);
    ASSERT_TRUE(t1.ok() && t2.ok());
    EXPECT_NE((*t1)->id(), (*t2)->id());
    auto cache = std::make_unique<policy::flow_cache>();
    std::mt19937 rng(7);
    for (int round = 0; round < 200; ++round) {
        std::vector<test_pkt> pkts;
        for (int i = 0; i < max_burst; ++i) {
            std::array<uint8_t, 16> d = addr("239.1.0.1");
            d[1] = static_cast<uint8_t>(rng() % 3);
            pkts.push_back(make_pkt(ip_family::v4, addr("10.0.0.1"), d, 17, 1,
                                    static_cast<uint16_t>(4999 + rng() % 3), rng() % 2 ? 7 : packet::vlan_none));
        }
        const burst_view b = view_of(pkts);
        const policy::table& t = round < 100 ? **t1 : **t2; // a new snapshot half way
        std::vector<policy::rule_id> want(max_burst), got(max_burst);
        t.classify(b.metas.data(), b.frames.data(), max_burst, want.data());
        cache->classify(t, b.metas.data(), b.frames.data(), max_burst, got.data());
        ASSERT_EQ(got, want) << "round " << round;
    }
    EXPECT_GT(cache->hits(), cache->misses()); // few flows: the cache answers most packets
}

// A boundary lcore classifies every packet in two tables (the rx region's inbound policies, the
// tx region's outbound ones): their entries for the same flow must both stay cached.
TEST(policy, flow_cache_keeps_one_flow_of_two_tables_at_once)
{
    std::vector<policy_cfg> rules(1);
    rules[0].dst = prefix("239.0.0.0/8");
    rules[0].action = policy_action::bypass;
    auto t1 = policy::table::build(rules, direction::out, "t_bnd_in", 0);
    auto t2 = policy::table::build(rules, direction::out, "t_bnd_out", 0);
    ASSERT_TRUE(t1.ok() && t2.ok());
    auto cache = std::make_unique<policy::flow_cache>();
    std::vector<test_pkt> pkts;
    for (int i = 0; i < max_burst; ++i) { // 32 flows: one sender, 32 groups
        std::array<uint8_t, 16> d = addr("239.1.0.0");
        d[3] = static_cast<uint8_t>(i);
        pkts.push_back(make_pkt(ip_family::v4, addr("10.0.0.1"), d, 17, 1000, 5000, packet::vlan_none));
    }
    const burst_view b = view_of(pkts);
    std::vector<policy::rule_id> got(max_burst);
    for (int round = 0; round < 10; ++round) {
        cache->classify(**t1, b.metas.data(), b.frames.data(), max_burst, got.data());
        cache->classify(**t2, b.metas.data(), b.frames.data(), max_burst, got.data());
    }
    EXPECT_EQ(cache->misses(), 2u * max_burst) << "only the first round of each table misses";
    EXPECT_EQ(got, std::vector<policy::rule_id>(max_burst, 1));
}
