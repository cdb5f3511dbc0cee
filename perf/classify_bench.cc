// classify_bench: cycles per packet of policy::table::classify (DPDK ACL) with 10, 1,000 and
// 10,000 rules, IPv4 and IPv6, bursts of 32 parsed packets. A CPU-bound micro-benchmark: the
// figure is cycles/packet (rte_rdtsc), median of repeats. See perf/README.md.
//
//   classify_bench [--rules 10,1000,10000] [--repeats 21] [--packets 262144] [--lcore 0]
//                  [--algs] [--json FILE]
//
// Rules are random but realistic: IPv4 and IPv6 group/source prefixes of many lengths, some
// protocol + port ranges, some VLAN ranges, a few family-agnostic ones. They are "decoys": they
// share address space with the traffic but miss it in at least one field, so most packets match
// one of the few real rules at the very end of the list; 1 packet in 8 is made to hit a decoy.
// Every result is checked against a plain first-match reference before anything is timed.
#include <rte_acl.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_vect.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

#include "common/burst.hh"
#include "config/config.hh"
#include "packet/packet.hh"
#include "policy/acl_keys.hh"
#include "policy/policy.hh"

using namespace msecgw;
using config::ip_family;
using config::ip_prefix;
using config::policy_cfg;
using config::u16_range;

namespace {

using acl_alg = enum rte_acl_classify_alg; // the enum, not the function of the same name

constexpr uint16_t burst = 32;
constexpr std::size_t frame_cap = 128;
constexpr uint8_t proto_udp = packet::proto_udp;
constexpr uint8_t proto_tcp = packet::proto_tcp;
constexpr uint8_t proto_sctp = packet::proto_sctp;

struct options {
    std::vector<unsigned> rules = {10, 1000, 10000};
    unsigned repeats = 21;
    unsigned packets = 262144; ///< classified packets per repeat
    unsigned lcore = 0;
    bool algs = false;         ///< also time every ACL algorithm the CPU offers
    std::string json;
};

// ---------------------------------------------------------------- addresses and prefixes

using addr16 = std::array<uint8_t, 16>;

ip_prefix make_prefix(ip_family fam, const addr16& a, uint8_t len)
{
    ip_prefix p;
    p.family = fam;
    p.length = len;
    const int bytes = fam == ip_family::v4 ? 4 : 16;
    for (int i = 0; i < bytes; ++i) {
        const int bits = std::clamp(static_cast<int>(len) - 8 * i, 0, 8);
        p.addr[i] = static_cast<uint8_t>(a[i] & (bits == 0 ? 0 : 0xff << (8 - bits)));
    }
    return p;
}

addr16 v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
    return addr16{a, b, c, d};
}

addr16 v6(std::initializer_list<uint16_t> words)
{
    addr16 a{};
    int i = 0;
    for (uint16_t w : words) {
        a[2 * i] = static_cast<uint8_t>(w >> 8);
        a[2 * i + 1] = static_cast<uint8_t>(w);
        ++i;
    }
    return a;
}

bool prefix_matches(const ip_prefix& p, ip_family fam, const addr16& a)
{
    if (p.is_any()) {
        return true;
    }
    if (p.family != fam) {
        return false;
    }
    for (int bit = 0; bit < p.length; ++bit) {
        const int mask = 0x80 >> (bit % 8);
        if ((p.addr[bit / 8] & mask) != (a[bit / 8] & mask)) {
            return false;
        }
    }
    return true;
}

/// A random address inside prefix p (p not any).
addr16 inside(const ip_prefix& p, std::mt19937& rng)
{
    addr16 a{};
    const int bytes = p.family == ip_family::v4 ? 4 : 16;
    for (int i = 0; i < bytes; ++i) {
        a[i] = static_cast<uint8_t>(rng());
    }
    for (int bit = 0; bit < p.length; ++bit) {
        const int mask = 0x80 >> (bit % 8);
        a[bit / 8] = static_cast<uint8_t>((a[bit / 8] & ~mask) | (p.addr[bit / 8] & mask));
    }
    return a;
}

// ---------------------------------------------------------------- rules

/// The traffic: IPv4 senders 10.1.0.0/24 to groups 239.1.0.0/16, IPv6 senders 2001:db8:1::/64
/// to groups ff3e::8000:0/112, UDP, sport 5000..5063, dport 5004, 1 in 8 tagged with VLAN 100.
std::vector<policy_cfg> final_rules()
{
    std::vector<policy_cfg> r(6);
    r[0].src = make_prefix(ip_family::v4, v4(10, 1, 0, 0), 16);
    r[0].dst = make_prefix(ip_family::v4, v4(239, 1, 0, 0), 16);
    r[0].proto = proto_udp;
    r[0].vlan = {100, 100};
    r[0].action = config::policy_action::protect;
    r[0].sa = "g1-out";
    r[1].dst = make_prefix(ip_family::v4, v4(239, 1, 0, 0), 16);
    r[1].proto = proto_udp;
    r[1].dport = {5004, 5004};
    r[1].action = config::policy_action::bypass;
    r[2].src = make_prefix(ip_family::v6, v6({0x2001, 0xdb8, 1}), 48);
    r[2].dst = make_prefix(ip_family::v6, v6({0xff3e}), 16);
    r[2].proto = proto_udp;
    r[2].action = config::policy_action::bypass;
    r[3].dst = make_prefix(ip_family::v4, v4(224, 0, 0, 0), 4);
    r[3].action = config::policy_action::bypass;
    r[4].dst = make_prefix(ip_family::v6, v6({0xff00}), 8);
    r[4].action = config::policy_action::bypass;
    r[5].proto = proto_tcp; // family-agnostic tail rule
    r[5].dport = {22, 22};
    r[5].action = config::policy_action::discard;
    return r;
}

u16_range random_range(std::mt19937& rng)
{
    switch (rng() % 4) {
    case 0: { // single port
        const auto p = static_cast<uint16_t>(1 + rng() % 65535);
        return {p, p};
    }
    case 1: { // small range
        const auto lo = static_cast<uint16_t>(1024 + rng() % 60000);
        return {lo, static_cast<uint16_t>(lo + rng() % 256)};
    }
    case 2:
        return {1024, 65535};
    default:
        return {0, 65535};
    }
}

uint8_t pick_len(std::mt19937& rng, std::initializer_list<uint8_t> lens)
{
    return *(lens.begin() + rng() % lens.size());
}

/// One random rule that shares address space with the traffic but cannot match it.
policy_cfg decoy(std::mt19937& rng)
{
    policy_cfg r;
    r.action = static_cast<config::policy_action>(rng() % 3);
    if (r.action == config::policy_action::protect) {
        r.sa = "sa" + std::to_string(rng() % 64);
    }
    const unsigned kind = rng() % 100;
    const auto proto_any_udp_tcp = [&] {
        const unsigned p = rng() % 10;
        if (p < 4) {
            return;
        }
        r.proto = p < 8 ? proto_udp : proto_tcp;
        if (rng() % 2) {
            r.dport = random_range(rng);
        }
        if (rng() % 4 == 0) {
            r.sport = random_range(rng);
        }
    };
    const auto maybe_vlan = [&] {
        if (rng() % 10 < 3) {
            const auto lo = static_cast<uint16_t>(1 + rng() % 4000);
            r.vlan = {lo, static_cast<uint16_t>(lo + rng() % 64)};
        }
    };
    if (kind < 40) { // IPv4 groups other than 239.1/16 (or 232/8 SSM), any protocol
        const auto second = static_cast<uint8_t>(2 + rng() % 253);
        r.dst = rng() % 5 == 0
                    ? make_prefix(ip_family::v4, v4(232, static_cast<uint8_t>(rng()), static_cast<uint8_t>(rng()), static_cast<uint8_t>(rng())), pick_len(rng, {8, 16, 24, 32}))
                    : make_prefix(ip_family::v4, v4(239, second, static_cast<uint8_t>(rng()), static_cast<uint8_t>(rng())), pick_len(rng, {16, 24, 28, 32}));
        if (rng() % 2) {
            r.src = make_prefix(ip_family::v4, v4(10, static_cast<uint8_t>(rng()), static_cast<uint8_t>(rng()), static_cast<uint8_t>(rng())), pick_len(rng, {8, 16, 24, 32}));
        }
        proto_any_udp_tcp();
        maybe_vlan();
    } else if (kind < 55) { // the traffic's own groups, but missing it on another field
        r.dst = make_prefix(ip_family::v4, v4(239, 1, static_cast<uint8_t>(rng()), static_cast<uint8_t>(rng())), pick_len(rng, {16, 20, 24, 32}));
        switch (rng() % 4) {
        case 0: // other senders
            r.src = make_prefix(ip_family::v4, v4(10, static_cast<uint8_t>(2 + rng() % 250), static_cast<uint8_t>(rng()), 0), pick_len(rng, {16, 24}));
            break;
        case 1: // TCP
            r.proto = proto_tcp;
            r.dport = random_range(rng);
            break;
        case 2: // UDP, other destination ports
            r.proto = proto_udp;
            r.dport = {static_cast<uint16_t>(6000 + rng() % 1000), static_cast<uint16_t>(7000 + rng() % 1000)};
            break;
        default: // VLANs the traffic does not use
            r.vlan = {static_cast<uint16_t>(200 + rng() % 1000), static_cast<uint16_t>(1200 + rng() % 2000)};
            break;
        }
    } else if (kind < 85) { // IPv6 groups other than ff3e::8000:0/112
        const auto scope = static_cast<uint16_t>(pick_len(rng, {0x05, 0x08, 0x0e}));
        r.dst = make_prefix(ip_family::v6,
                            v6({static_cast<uint16_t>(0xff30 | scope), 0, 0, static_cast<uint16_t>(1 + rng() % 0xfffe), 0,
                                0, static_cast<uint16_t>(rng() % 0x7fff), static_cast<uint16_t>(rng())}),
                            pick_len(rng, {16, 64, 96, 112, 128}));
        if (r.dst.length == 16) { // ff35::/16 or ff38::/16: other scopes than the traffic's
            r.dst.addr[1] = static_cast<uint8_t>(scope == 0x0e ? 0x35 : 0x30 | scope);
        }
        if (rng() % 2) {
            r.src = make_prefix(ip_family::v6, v6({0x2001, 0xdb8, static_cast<uint16_t>(rng()), static_cast<uint16_t>(rng())}),
                                pick_len(rng, {32, 48, 64, 128}));
        }
        proto_any_udp_tcp();
        maybe_vlan();
    } else if (kind < 95) { // the traffic's IPv6 groups, missing on another field
        r.dst = make_prefix(ip_family::v6, v6({0xff3e, 0, 0, 0, 0, 0, 0x8000, static_cast<uint16_t>(rng())}),
                            pick_len(rng, {96, 112, 128}));
        if (rng() % 2) {
            r.src = make_prefix(ip_family::v6, v6({0x2001, 0xdb8, static_cast<uint16_t>(2 + rng() % 0xfff0)}), 48);
        } else {
            r.proto = proto_tcp;
            r.dport = random_range(rng);
        }
    } else { // family-agnostic: SCTP or TCP services
        r.proto = rng() % 2 ? proto_sctp : proto_tcp;
        r.dport = random_range(rng);
        r.sport = rng() % 2 ? u16_range{} : random_range(rng);
    }
    return r;
}

/// n rules: n - 6 decoys then the 6 real rules (so the traffic's match sits at the end).
std::vector<policy_cfg> make_rules(unsigned n, std::mt19937& rng)
{
    std::vector<policy_cfg> rules;
    auto tail = final_rules();
    const unsigned decoys = n > tail.size() ? n - static_cast<unsigned>(tail.size()) : 0;
    for (unsigned i = 0; i < decoys; ++i) {
        rules.push_back(decoy(rng));
    }
    for (unsigned i = 0; rules.size() < n && i < tail.size(); ++i) {
        rules.push_back(tail[i]);
    }
    for (std::size_t i = 0; i < rules.size(); ++i) {
        rules[i].dir = config::direction::out;
        rules[i].line = static_cast<int>(i + 1);
    }
    return rules;
}

// ---------------------------------------------------------------- packets

struct flow {
    ip_family fam;
    addr16 src, dst;
    uint8_t proto;
    uint16_t sport, dport, vlan;
};

uint16_t csum16(const uint8_t* p, std::size_t len)
{
    uint32_t s = 0;
    for (std::size_t i = 0; i + 1 < len; i += 2) {
        s += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
    }
    while (s >> 16) {
        s = (s & 0xffff) + (s >> 16);
    }
    return static_cast<uint16_t>(~s);
}

/// A real frame for `f` (Ethernet [+802.1Q] + IP + L4 + payload); returns its length.
uint32_t build_frame(const flow& f, uint8_t* b)
{
    std::memset(b, 0, frame_cap);
    uint32_t o = 0;
    if (f.fam == ip_family::v4) {
        const uint8_t mac[6] = {0x01, 0x00, 0x5e, static_cast<uint8_t>(f.dst[1] & 0x7f), f.dst[2], f.dst[3]};
        std::memcpy(b, mac, 6);
    } else {
        const uint8_t mac[6] = {0x33, 0x33, f.dst[12], f.dst[13], f.dst[14], f.dst[15]};
        std::memcpy(b, mac, 6);
    }
    b[6] = 0x02;
    b[11] = 0x01;
    o = 12;
    if (f.vlan != packet::vlan_none) {
        b[o] = 0x81;
        b[o + 1] = 0x00;
        b[o + 2] = static_cast<uint8_t>(f.vlan >> 8);
        b[o + 3] = static_cast<uint8_t>(f.vlan);
        o += 4;
    }
    const uint16_t et = f.fam == ip_family::v4 ? packet::ethertype_ipv4 : packet::ethertype_ipv6;
    b[o] = static_cast<uint8_t>(et >> 8);
    b[o + 1] = static_cast<uint8_t>(et);
    o += 2;
    const uint32_t l4_len = f.proto == proto_tcp ? 20 : f.proto == proto_sctp ? 12 : 8;
    const uint32_t payload = 22;
    const uint32_t l3 = o;
    if (f.fam == ip_family::v4) {
        const uint32_t tot = 20 + l4_len + payload;
        b[l3] = 0x45;
        b[l3 + 2] = static_cast<uint8_t>(tot >> 8);
        b[l3 + 3] = static_cast<uint8_t>(tot);
        b[l3 + 8] = 16; // TTL
        b[l3 + 9] = f.proto;
        std::memcpy(b + l3 + 12, f.src.data(), 4);
        std::memcpy(b + l3 + 16, f.dst.data(), 4);
        const uint16_t c = csum16(b + l3, 20);
        b[l3 + 10] = static_cast<uint8_t>(c >> 8);
        b[l3 + 11] = static_cast<uint8_t>(c);
        o = l3 + 20;
    } else {
        const uint32_t plen = l4_len + payload;
        b[l3] = 0x60;
        b[l3 + 4] = static_cast<uint8_t>(plen >> 8);
        b[l3 + 5] = static_cast<uint8_t>(plen);
        b[l3 + 6] = f.proto;
        b[l3 + 7] = 16; // hop limit
        std::memcpy(b + l3 + 8, f.src.data(), 16);
        std::memcpy(b + l3 + 24, f.dst.data(), 16);
        o = l3 + 40;
    }
    b[o] = static_cast<uint8_t>(f.sport >> 8);
    b[o + 1] = static_cast<uint8_t>(f.sport);
    b[o + 2] = static_cast<uint8_t>(f.dport >> 8);
    b[o + 3] = static_cast<uint8_t>(f.dport);
    if (f.proto == proto_udp) {
        b[o + 4] = static_cast<uint8_t>((l4_len + payload) >> 8);
        b[o + 5] = static_cast<uint8_t>(l4_len + payload);
    } else if (f.proto == proto_tcp) {
        b[o + 12] = 0x50;
    }
    return o + l4_len + payload;
}

uint16_t in_range(const u16_range& r, std::mt19937& rng)
{
    return static_cast<uint16_t>(r.lo + rng() % (static_cast<uint32_t>(r.hi - r.lo) + 1));
}

/// A flow of the traffic (matches one of the final rules).
flow traffic_flow(ip_family fam, std::mt19937& rng)
{
    flow f;
    f.fam = fam;
    f.proto = proto_udp;
    f.sport = static_cast<uint16_t>(5000 + rng() % 64);
    f.dport = 5004;
    f.vlan = rng() % 8 == 0 ? 100 : packet::vlan_none;
    if (fam == ip_family::v4) {
        f.src = v4(10, 1, 0, static_cast<uint8_t>(1 + rng() % 254));
        f.dst = v4(239, 1, static_cast<uint8_t>(rng()), static_cast<uint8_t>(rng()));
    } else {
        f.src = v6({0x2001, 0xdb8, 1, 0, 0, 0, 0, static_cast<uint16_t>(1 + rng() % 0xfffe)});
        f.dst = v6({0xff3e, 0, 0, 0, 0, 0, 0x8000, static_cast<uint16_t>(rng())});
    }
    return f;
}

/// A flow inside decoy rule `r` for family `fam` (some other rule may still match first).
flow decoy_flow(const policy_cfg& r, ip_family fam, std::mt19937& rng)
{
    flow f = traffic_flow(fam, rng);
    if (!r.src.is_any()) {
        f.src = inside(r.src, rng);
    }
    if (!r.dst.is_any()) {
        f.dst = inside(r.dst, rng);
    }
    f.proto = r.proto.value_or(proto_udp);
    if (f.proto != proto_udp && f.proto != proto_tcp && f.proto != proto_sctp) {
        f.proto = proto_udp;
    }
    f.sport = in_range(r.sport, rng);
    f.dport = in_range(r.dport, rng);
    f.vlan = in_range(r.vlan, rng);
    if (f.vlan > packet::vlan_none || f.vlan == 0) {
        f.vlan = packet::vlan_none;
    }
    return f;
}

/// First-match reference (the specification the ACL must agree with).
policy::rule_id reference(const std::vector<policy_cfg>& rules, const flow& f)
{
    for (std::size_t i = 0; i < rules.size(); ++i) {
        const auto& r = rules[i];
        if (!r.applies_to(f.fam) || !prefix_matches(r.src, f.fam, f.src) || !prefix_matches(r.dst, f.fam, f.dst)) {
            continue;
        }
        if ((r.proto && *r.proto != f.proto) || f.sport < r.sport.lo || f.sport > r.sport.hi ||
            f.dport < r.dport.lo || f.dport > r.dport.hi || f.vlan < r.vlan.lo || f.vlan > r.vlan.hi) {
            continue;
        }
        return static_cast<policy::rule_id>(i + 1);
    }
    return policy::no_match;
}

/// A pool of parsed packets cut into bursts of 32.
struct packet_set {
    std::string family;
    std::vector<std::array<uint8_t, frame_cap>> frames;
    std::vector<uint32_t> lens;
    std::vector<packet::pkt_meta> metas;
    std::vector<const uint8_t*> ptrs;
    std::vector<policy::rule_id> expect;
    unsigned deep = 0; ///< packets whose match is one of the final rules

    std::size_t bursts() const { return metas.size() / burst; }
};

/// `count` packets of family v4, v6, or both alternating (fam == any).
packet_set make_packets(const std::vector<policy_cfg>& rules, ip_family fam, unsigned count, std::mt19937& rng)
{
    packet_set s;
    s.family = fam == ip_family::v4 ? "IPv4" : fam == ip_family::v6 ? "IPv6" : "mixed";
    s.frames.resize(count);
    s.lens.resize(count);
    s.metas.resize(count);
    s.ptrs.resize(count);
    s.expect.resize(count);
    const std::size_t n_final = std::min(rules.size(), final_rules().size());
    const std::size_t n_decoys = rules.size() - n_final;
    for (unsigned i = 0; i < count; ++i) {
        const ip_family f_fam = fam != ip_family::any ? fam : (i % 2 ? ip_family::v6 : ip_family::v4);
        flow f = traffic_flow(f_fam, rng);
        if (n_decoys != 0 && rng() % 8 == 0) {
            for (int tries = 0; tries < 64; ++tries) { // a decoy of this family
                const auto& r = rules[rng() % n_decoys];
                if (r.applies_to(f_fam)) {
                    f = decoy_flow(r, f_fam, rng);
                    break;
                }
            }
        }
        s.lens[i] = build_frame(f, s.frames[i].data());
        drop_reason why{};
        if (!packet::parse_frame(s.frames[i].data(), s.lens[i], packet::ipv4_csum::verify, s.metas[i], why)) {
            std::fprintf(stderr, "classify_bench: built an unparsable frame (%s, reason %u)\n", s.family.c_str(),
                         static_cast<unsigned>(why));
            std::exit(1);
        }
        s.ptrs[i] = s.frames[i].data();
        s.expect[i] = reference(rules, f);
        s.deep += s.expect[i] > n_decoys ? 1 : 0;
    }
    return s;
}

// ---------------------------------------------------------------- timing

uint64_t g_sink = 0; ///< keeps results alive

double median(std::vector<double> v)
{
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/// How many passes over a set of `n` packets make about `o.packets` packets.
unsigned passes_for(std::size_t n, const options& o)
{
    return std::max<unsigned>(1, o.packets / static_cast<unsigned>(n));
}

/// One timed repeat: cycles per packet of table::classify over the set, burst by burst.
double time_classify(const policy::table& t, const packet_set& s, const options& o)
{
    const std::size_t nb = s.bursts();
    const unsigned passes = passes_for(nb * burst, o);
    std::array<policy::rule_id, max_burst> out{};
    const uint64_t t0 = rte_rdtsc_precise();
    for (unsigned p = 0; p < passes; ++p) {
        for (std::size_t b = 0; b < nb; ++b) {
            t.classify(&s.metas[b * burst], &s.ptrs[b * burst], burst, out.data());
            g_sink += out[b % burst];
        }
    }
    const uint64_t t1 = rte_rdtsc_precise();
    return static_cast<double>(t1 - t0) / static_cast<double>(passes * nb * burst);
}

/// One timed repeat: cycles per packet of packet::parse_frame (IPv4 checksum verified) on the set.
double time_parse(const packet_set& s, const options& o)
{
    const std::size_t n = s.metas.size();
    const unsigned passes = passes_for(n, o);
    std::array<packet::pkt_meta, burst> m{};
    const uint64_t t0 = rte_rdtsc_precise();
    for (unsigned p = 0; p < passes; ++p) {
        for (std::size_t i = 0; i < n; ++i) {
            drop_reason why{};
            g_sink += packet::parse_frame(s.ptrs[i], s.lens[i], packet::ipv4_csum::verify, m[i % burst], why);
        }
    }
    const uint64_t t1 = rte_rdtsc_precise();
    g_sink += m[0].l4_off;
    return static_cast<double>(t1 - t0) / static_cast<double>(passes * n);
}

/// ACL keys built beforehand in the layout table::classify builds (policy/acl_keys.hh), to time
/// rte_acl_classify alone: the ACL walk without key building and scatter.
struct prebuilt_keys {
    rte_acl_ctx* ctx = nullptr; ///< nullptr: mixed set, or no context for the family
    std::vector<policy::detail::acl_key_v4> k4;
    std::vector<policy::detail::acl_key_v6> k6;
    std::vector<const uint8_t*> keys;
};

prebuilt_keys prebuild_keys(const std::string& tag, const packet_set& s)
{
    prebuilt_keys pk;
    if (s.family == "mixed") {
        return pk;
    }
    const bool is_v4 = s.family == "IPv4";
    pk.ctx = rte_acl_find_existing(("pol_" + tag + (is_v4 ? "_v4" : "_v6")).c_str());
    const std::size_t n = s.metas.size();
    pk.k4.resize(is_v4 ? n : 0);
    pk.k6.resize(is_v4 ? 0 : n);
    pk.keys.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
        const auto& m = s.metas[i];
        const uint8_t* f = s.ptrs[i];
        const auto put_ports = [&](auto& k) {
            k.proto = m.proto;
            k.sport = rte_cpu_to_be_16(m.sport);
            k.dport = rte_cpu_to_be_16(m.dport);
            k.vlan = rte_cpu_to_be_16(m.vlan);
        };
        if (is_v4) {
            std::memset(&pk.k4[i], 0, sizeof(pk.k4[i]));
            put_ports(pk.k4[i]);
            std::memcpy(&pk.k4[i].src, f + m.l3_off + 12, 4);
            std::memcpy(&pk.k4[i].dst, f + m.l3_off + 16, 4);
            pk.keys[i] = reinterpret_cast<const uint8_t*>(&pk.k4[i]);
        } else {
            std::memset(&pk.k6[i], 0, sizeof(pk.k6[i]));
            put_ports(pk.k6[i]);
            std::memcpy(pk.k6[i].src, f + m.l3_off + 8, 16);
            std::memcpy(pk.k6[i].dst, f + m.l3_off + 24, 16);
            pk.keys[i] = reinterpret_cast<const uint8_t*>(&pk.k6[i]);
        }
    }
    if (pk.ctx != nullptr) { // the same answers as table::classify, or the figure means nothing
        std::array<uint32_t, 1> res{};
        for (std::size_t i = 0; i < n; ++i) {
            rte_acl_classify(pk.ctx, &pk.keys[i], res.data(), 1, 1);
            if (res[0] != s.expect[i]) {
                std::fprintf(stderr, "classify_bench: %s %s: prebuilt keys give other results (packet %zu)\n",
                             tag.c_str(), s.family.c_str(), i);
                pk.ctx = nullptr;
                break;
            }
        }
    }
    return pk;
}

/// One timed repeat of rte_acl_classify alone; 0 when there is nothing to time.
double time_acl_only(const prebuilt_keys& pk, const options& o)
{
    if (pk.ctx == nullptr) {
        return 0;
    }
    const std::size_t nb = pk.keys.size() / burst;
    const unsigned passes = passes_for(nb * burst, o);
    std::array<uint32_t, burst> res{};
    const uint64_t t0 = rte_rdtsc_precise();
    for (unsigned p = 0; p < passes; ++p) {
        for (std::size_t b = 0; b < nb; ++b) {
            rte_acl_classify(pk.ctx, const_cast<const uint8_t**>(&pk.keys[b * burst]), res.data(), burst, 1);
            g_sink += res[b % burst];
        }
    }
    const uint64_t t1 = rte_rdtsc_precise();
    return static_cast<double>(t1 - t0) / static_cast<double>(passes * nb * burst);
}

/// Checks every packet of the set against the reference; returns the number of mismatches.
unsigned verify(const policy::table& t, const packet_set& s)
{
    unsigned bad = 0;
    std::array<policy::rule_id, max_burst> out{};
    for (std::size_t b = 0; b < s.bursts(); ++b) {
        t.classify(&s.metas[b * burst], &s.ptrs[b * burst], burst, out.data());
        for (unsigned i = 0; i < burst; ++i) {
            bad += out[i] != s.expect[b * burst + i] ? 1 : 0;
        }
    }
    return bad;
}

const char* alg_name(acl_alg a)
{
    switch (a) {
    case RTE_ACL_CLASSIFY_SCALAR: return "scalar";
    case RTE_ACL_CLASSIFY_SSE: return "sse";
    case RTE_ACL_CLASSIFY_AVX2: return "avx2";
    case RTE_ACL_CLASSIFY_NEON: return "neon";
    case RTE_ACL_CLASSIFY_ALTIVEC: return "altivec";
    case RTE_ACL_CLASSIFY_AVX512X16: return "avx512x16";
    case RTE_ACL_CLASSIFY_AVX512X32: return "avx512x32";
    default: return "default";
    }
}

/// Sets `alg` on both ACL contexts of table `tag`; false when this CPU/EAL cannot run it.
bool set_alg(const std::string& tag, acl_alg alg)
{
    bool ok = true;
    for (const char* fam : {"_v4", "_v6"}) {
        const std::string name = "pol_" + tag + fam;
        if (rte_acl_ctx* ctx = rte_acl_find_existing(name.c_str()); ctx != nullptr) {
            ok = ok && rte_acl_set_ctx_classify(ctx, alg) == 0;
        }
    }
    return ok;
}

/// What rte_acl_create picks: the first supported of this list (rte_acl.c, x86 order).
acl_alg default_alg(const std::string& tag)
{
    for (auto a : {RTE_ACL_CLASSIFY_AVX512X32, RTE_ACL_CLASSIFY_AVX512X16, RTE_ACL_CLASSIFY_AVX2,
                   RTE_ACL_CLASSIFY_SSE, RTE_ACL_CLASSIFY_SCALAR}) {
        if (set_alg(tag, a)) {
            return a;
        }
    }
    return RTE_ACL_CLASSIFY_DEFAULT;
}

/// One line of the result table: a rule count, a packet set and an ACL algorithm.
struct cell {
    unsigned rules;
    std::string tag;
    const policy::table* table;
    const packet_set* set;
    const prebuilt_keys* keys;
    acl_alg alg;
    bool is_default;
    double build_ms;
    std::vector<double> cpp, acl, parse;
};

std::optional<options> parse_args(int argc, char** argv)
{
    options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        const auto next = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "classify_bench: %s needs a value\n", a.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--rules") {
            o.rules.clear();
            std::stringstream ss(next());
            for (std::string item; std::getline(ss, item, ',');) {
                o.rules.push_back(static_cast<unsigned>(std::stoul(item)));
            }
        } else if (a == "--repeats") {
            o.repeats = static_cast<unsigned>(std::stoul(next()));
        } else if (a == "--packets") {
            o.packets = static_cast<unsigned>(std::stoul(next()));
        } else if (a == "--lcore") {
            o.lcore = static_cast<unsigned>(std::stoul(next()));
        } else if (a == "--algs") {
            o.algs = true;
        } else if (a == "--json") {
            o.json = next();
        } else {
            std::fputs("usage: classify_bench [--rules 10,1000,10000] [--repeats 21] [--packets 262144]\n"
                       "                      [--lcore N] [--algs] [--json FILE]\n",
                       a == "--help" || a == "-h" ? stdout : stderr);
            return std::nullopt;
        }
    }
    if (o.rules.empty() || o.repeats == 0) {
        std::fputs("classify_bench: --rules and --repeats must not be empty/zero\n", stderr);
        return std::nullopt;
    }
    return o;
}

} // namespace

int main(int argc, char** argv)
{
    auto opts = parse_args(argc, argv);
    if (!opts) {
        return 2;
    }
    const options& o = *opts;
    const std::string prefix = "--file-prefix=msecgw_cb_" + std::to_string(getpid());
    const std::string lcores = std::to_string(o.lcore);
    const char* eal_argv[] = {"classify_bench", "--no-huge", "--no-pci", "-m", "512", "--no-shconf", "--no-telemetry",
                              "-l", lcores.c_str(), "--log-level", "lib.eal:error", prefix.c_str()};
    if (rte_eal_init(static_cast<int>(sizeof(eal_argv) / sizeof(eal_argv[0])), const_cast<char**>(eal_argv)) < 0) {
        std::fprintf(stderr, "classify_bench: EAL init failed: %s\n", rte_strerror(rte_errno));
        return 1;
    }
    const double tsc_ghz = static_cast<double>(rte_get_tsc_hz()) / 1e9;
    std::printf("classify_bench: TSC %.3f GHz, lcore %u, burst %u, %u repeats of ~%u packets, max SIMD %u bits\n",
                tsc_ghz, o.lcore, burst, o.repeats, o.packets, static_cast<unsigned>(rte_vect_get_max_simd_bitwidth()));
    int rc = 0;
    const uint16_t eal_simd = rte_vect_get_max_simd_bitwidth();
    // Build every table and packet set first, then time all of them round-robin, one repeat at a
    // time: a noisy neighbour slows every line alike instead of whichever ran at the wrong moment.
    std::vector<std::unique_ptr<policy::table>> tables;
    std::vector<std::unique_ptr<packet_set>> sets;
    std::vector<std::unique_ptr<prebuilt_keys>> keys;
    std::vector<cell> cells;
    const std::vector<acl_alg> all_algs = {RTE_ACL_CLASSIFY_SCALAR, RTE_ACL_CLASSIFY_SSE, RTE_ACL_CLASSIFY_AVX2,
                                           RTE_ACL_CLASSIFY_AVX512X16, RTE_ACL_CLASSIFY_AVX512X32};
    for (unsigned n : o.rules) {
        std::mt19937 rng(12345 + n);
        const auto rules = make_rules(n, rng);
        const std::string tag = "bench" + std::to_string(n);
        const auto b0 = std::chrono::steady_clock::now();
        auto t = policy::table::build(rules, config::direction::out, tag, static_cast<int>(rte_socket_id()));
        const double build_ms =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - b0).count();
        if (!t) {
            std::fprintf(stderr, "classify_bench: %u rules: %s\n", n, t.err().detail.c_str());
            rc = 1;
            continue;
        }
        tables.push_back(std::move(t.value()));
        const policy::table& table = *tables.back();
        rte_vect_set_max_simd_bitwidth(eal_simd); // the default is what plain EAL settings give
        const acl_alg def = default_alg(tag);
        if (o.algs) {
            rte_vect_set_max_simd_bitwidth(RTE_VECT_SIMD_512);
        }
        for (ip_family fam : {ip_family::v4, ip_family::v6, ip_family::any}) {
            sets.push_back(std::make_unique<packet_set>(make_packets(rules, fam, 4096, rng)));
            const packet_set& set = *sets.back();
            if (unsigned bad = verify(table, set); bad != 0) {
                std::fprintf(stderr, "classify_bench: %u rules %s: %u of %zu results differ from the reference\n", n,
                             set.family.c_str(), bad, set.metas.size());
                rc = 1;
            }
            keys.push_back(std::make_unique<prebuilt_keys>(prebuild_keys(tag, set)));
            for (acl_alg a : o.algs ? all_algs : std::vector<acl_alg>{def}) {
                if (set_alg(tag, a)) {
                    cells.push_back({n, tag, &table, &set, keys.back().get(), a, a == def, build_ms, {}, {}, {}});
                }
            }
        }
        set_alg(tag, def);
    }
    if (o.algs) {
        rte_vect_set_max_simd_bitwidth(RTE_VECT_SIMD_512);
    }
    for (unsigned rep = 0; rep <= o.repeats; ++rep) { // repeat 0 warms caches and is not counted
        for (auto& c : cells) {
            set_alg(c.tag, c.alg);
            const double cpp = time_classify(*c.table, *c.set, o);
            const double acl = time_acl_only(*c.keys, o);
            const double parse = c.is_default ? time_parse(*c.set, o) : 0;
            if (rep != 0) {
                c.cpp.push_back(cpp);
                c.acl.push_back(acl);
                c.parse.push_back(parse);
            }
        }
    }
    rte_vect_set_max_simd_bitwidth(eal_simd);
    std::printf("\n%7s  %-6s %-11s %10s %9s %9s %10s %10s %9s %6s\n", "rules", "family", "acl alg", "cycles/pkt",
                "(min)", "ns/pkt", "acl c/p", "parse c/p", "build ms", "deep%");
    for (const auto& c : cells) {
        const double acl = median(c.acl), parse = median(c.parse);
        char acl_s[16] = "-", parse_s[16] = "-";
        if (acl > 0) {
            std::snprintf(acl_s, sizeof acl_s, "%.1f", acl);
        }
        if (parse > 0) {
            std::snprintf(parse_s, sizeof parse_s, "%.1f", parse);
        }
        std::printf("%7u  %-6s %-11s %10.1f %9.1f %9.1f %10s %10s %9.1f %5u%%\n", c.rules, c.set->family.c_str(),
                    (std::string(alg_name(c.alg)) + (c.is_default ? "*" : "")).c_str(), median(c.cpp),
                    *std::min_element(c.cpp.begin(), c.cpp.end()), median(c.cpp) / tsc_ghz, acl_s, parse_s,
                    c.build_ms, static_cast<unsigned>(100.0 * c.set->deep / c.set->metas.size() + 0.5));
    }
    std::printf("(* = the algorithm rte_acl_create picks under default EAL settings, what msecgw uses;\n"
                " cycles/pkt = median over %u interleaved repeats of table::classify on bursts of %u, key building\n"
                " included; acl c/p = rte_acl_classify alone on keys built beforehand (the rest is key building);\n"
                " parse c/p = packet::parse_frame with IPv4 checksum verification, for scale;\n"
                " deep%% = packets whose first match is one of the real rules at the end of the list)\n",
                o.repeats, burst);
    if (!o.json.empty()) {
        std::ofstream f(o.json, std::ios::trunc);
        f << "{\n  \"tsc_hz\": " << rte_get_tsc_hz() << ",\n  \"burst\": " << burst << ",\n  \"repeats\": " << o.repeats
          << ",\n  \"packets_per_repeat\": " << o.packets << ",\n  \"rows\": [";
        for (std::size_t i = 0; i < cells.size(); ++i) {
            const auto& c = cells[i];
            f << (i ? ",\n    " : "\n    ") << "{\"rules\": " << c.rules << ", \"family\": \"" << c.set->family
              << "\", \"alg\": \"" << alg_name(c.alg) << "\", \"default_alg\": " << (c.is_default ? "true" : "false")
              << ", \"cycles_per_pkt\": " << median(c.cpp)
              << ", \"cycles_per_pkt_min\": " << *std::min_element(c.cpp.begin(), c.cpp.end())
              << ", \"ns_per_pkt\": " << median(c.cpp) / tsc_ghz << ", \"acl_only_cycles_per_pkt\": " << median(c.acl)
              << ", \"parse_cycles_per_pkt\": " << median(c.parse) << ", \"build_ms\": " << c.build_ms
              << ", \"deep_match_pct\": " << 100.0 * c.set->deep / c.set->metas.size() << "}";
        }
        f << "\n  ]\n}\n";
        if (!f.flush()) {
            std::fprintf(stderr, "classify_bench: cannot write %s\n", o.json.c_str());
            rc = 1;
        }
    }
    std::fprintf(stderr, "%s", g_sink == 42 ? " " : "");
    cells.clear();
    tables.clear(); // ACL contexts go back to the EAL before it is torn down
    const std::string runtime_dir = rte_eal_get_runtime_dir(); // EAL leaves it behind even with --no-shconf
    rte_eal_cleanup();
    std::error_code ec;
    std::filesystem::remove_all(runtime_dir, ec);
    return rc;
}
