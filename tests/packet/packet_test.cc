#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "packet/packet.hh"

using namespace msecgw;
using namespace msecgw::packet;

namespace {

using bytes = std::vector<uint8_t>;

constexpr uint16_t sport_v = 0x1388; // 5000: asymmetric bytes catch byte-order mistakes
constexpr uint16_t dport_v = 0xabcd;

void put16(bytes& b, size_t at, uint16_t v)
{
    b[at] = static_cast<uint8_t>(v >> 8);
    b[at + 1] = static_cast<uint8_t>(v & 0xff);
}

void push16(bytes& b, uint16_t v)
{
    b.push_back(static_cast<uint8_t>(v >> 8));
    b.push_back(static_cast<uint8_t>(v & 0xff));
}

/// Reference RFC 1071 sum, independent of the code under test.
uint16_t ref_csum(const uint8_t* p, size_t n)
{
    uint32_t s = 0;
    for (size_t i = 0; i < n; i += 2) {
        s += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
    }
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    return static_cast<uint16_t>(~s);
}

/// Destination 01:00:5e:01:02:03 (multicast); tci < 0 means untagged.
bytes eth(uint16_t type, int tci)
{
    bytes f{0x01, 0x00, 0x5e, 0x01, 0x02, 0x03, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
    if (tci >= 0) {
        push16(f, ethertype_vlan);
        push16(f, static_cast<uint16_t>(tci));
    }
    push16(f, type);
    return f;
}

/// An L4 header plus payload of `total` bytes whose first four bytes are the ports.
bytes l4(size_t total, uint16_t sport = sport_v, uint16_t dport = dport_v)
{
    bytes b(total, 0x5a);
    if (total >= 2) {
        put16(b, 0, sport);
    }
    if (total >= 4) {
        put16(b, 2, dport);
    }
    if (total >= 6) {
        put16(b, 4, static_cast<uint16_t>(total)); // UDP length
    }
    return b;
}

struct v4 {
    int tci = -1;
    uint8_t ihl = 5;
    uint8_t proto = proto_udp;
    uint16_t frag = 0;
    bytes payload = l4(12);
    size_t pad = 0;
};

void fix_v4_csum(bytes& f, size_t l3)
{
    const size_t ihl = static_cast<size_t>(f[l3] & 0x0f) * 4;
    put16(f, l3 + 10, 0);
    put16(f, l3 + 10, ref_csum(&f[l3], ihl));
}

/// IPv4 10.0.0.1 -> 239.1.2.3 with a correct checksum; options are NOPs.
bytes ipv4_frame(const v4& o)
{
    bytes f = eth(ethertype_ipv4, o.tci);
    const size_t l3 = f.size();
    const size_t hl = static_cast<size_t>(o.ihl) * 4;
    f.resize(l3 + hl, 0x01);
    f[l3] = static_cast<uint8_t>(0x40 | o.ihl);
    f[l3 + 1] = 0;
    put16(f, l3 + 2, static_cast<uint16_t>(hl + o.payload.size()));
    put16(f, l3 + 4, 0x1234);
    put16(f, l3 + 6, o.frag);
    f[l3 + 8] = 64;
    f[l3 + 9] = o.proto;
    const uint8_t addrs[8] = {10, 0, 0, 1, 239, 1, 2, 3};
    std::copy(addrs, addrs + 8, f.begin() + static_cast<long>(l3 + 12));
    fix_v4_csum(f, l3);
    f.insert(f.end(), o.payload.begin(), o.payload.end());
    f.resize(f.size() + o.pad, 0);
    return f;
}

struct ext_hdr {
    uint8_t type;
    uint32_t size = 8;  ///< bytes; a multiple of 8 (4 for AH)
    uint16_t frag = 0;  ///< fragment header offset/flags word
};

struct v6 {
    int tci = -1;
    std::vector<ext_hdr> ext = {};
    uint8_t proto = proto_udp;
    bytes payload = l4(12);
    size_t pad = 0;
};

uint8_t ext_len_code(const ext_hdr& e)
{
    if (e.type == 44) {
        return 0;
    }
    return static_cast<uint8_t>(e.type == 51 ? e.size / 4 - 2 : e.size / 8 - 1);
}

/// IPv6 2001:db8::1 -> ff3e::1234 with the given extension header chain.
bytes ipv6_frame(const v6& o)
{
    bytes f = eth(ethertype_ipv6, o.tci);
    const size_t l3 = f.size();
    bytes body;
    for (size_t i = 0; i < o.ext.size(); ++i) {
        const ext_hdr& e = o.ext[i];
        bytes h(e.size, 0);
        h[0] = i + 1 < o.ext.size() ? o.ext[i + 1].type : o.proto;
        h[1] = ext_len_code(e);
        if (e.type == 44) {
            put16(h, 2, e.frag);
        }
        body.insert(body.end(), h.begin(), h.end());
    }
    body.insert(body.end(), o.payload.begin(), o.payload.end());
    f.resize(l3 + 40, 0);
    f[l3] = 0x60;
    put16(f, l3 + 4, static_cast<uint16_t>(body.size()));
    f[l3 + 6] = o.ext.empty() ? o.proto : o.ext[0].type;
    f[l3 + 7] = 64;
    const uint8_t addrs[32] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,    1,
                               0xff, 0x3e, 0,    0,    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34};
    std::copy(addrs, addrs + 32, f.begin() + static_cast<long>(l3 + 8));
    f.insert(f.end(), body.begin(), body.end());
    f.resize(f.size() + o.pad, 0);
    return f;
}

struct outcome {
    bool ok;
    drop_reason why;
    pkt_meta m;
};

/// Parses from an exactly-sized heap copy so ASan reports any read past the frame. `fill`
/// pre-sets the meta to detect fields the parser forgets to write.
outcome run(const bytes& f, ipv4_csum c = ipv4_csum::verify, uint8_t fill = 0xa5)
{
    std::unique_ptr<uint8_t[]> buf(new uint8_t[f.size()]);
    std::copy(f.begin(), f.end(), buf.get());
    outcome r{};
    std::memset(&r.m, fill, sizeof(r.m));
    r.why = drop_reason::count_;
    r.ok = parse_frame(buf.get(), static_cast<uint32_t>(f.size()), c, r.m, r.why);
    return r;
}

std::string verdict(const outcome& r)
{
    return r.ok ? std::string("ok") : std::string(to_label(r.why));
}

testing::AssertionResult drops_with(const bytes& f, drop_reason want, ipv4_csum c = ipv4_csum::verify)
{
    const outcome r = run(f, c);
    if (r.ok || r.why != want) {
        return testing::AssertionFailure() << "got " << verdict(r) << ", want " << to_label(want);
    }
    return testing::AssertionSuccess();
}

bytes cut(const bytes& f, size_t n) { return bytes(f.begin(), f.begin() + static_cast<long>(n)); }

} // namespace

TEST(packet_parse, ipv4_udp_multicast_untagged)
{
    const bytes f = ipv4_frame({});
    const outcome r = run(f);
    ASSERT_TRUE(r.ok) << verdict(r);
    EXPECT_EQ(r.m.l3_off, 14);
    EXPECT_EQ(r.m.l4_off, 34);
    EXPECT_EQ(r.m.ip_len, 32);
    EXPECT_EQ(r.m.vlan, vlan_none);
    EXPECT_EQ(r.m.sport, sport_v);
    EXPECT_EQ(r.m.dport, dport_v);
    EXPECT_EQ(r.m.family, 4);
    EXPECT_EQ(r.m.proto, proto_udp);
    EXPECT_EQ(r.m.fragment, 0);
    EXPECT_EQ(r.m.l3_hdr_len, 20);
}

TEST(packet_parse, ipv4_udp_vlan_tagged)
{
    const bytes f = ipv4_frame({.tci = 0xe123}); // PCP 7, VID 0x123
    const outcome r = run(f);
    ASSERT_TRUE(r.ok) << verdict(r);
    EXPECT_EQ(r.m.vlan, 0x123);
    EXPECT_EQ(r.m.l3_off, 18);
    EXPECT_EQ(r.m.l4_off, 38);
    EXPECT_EQ(r.m.ip_len, 32);
    EXPECT_EQ(r.m.sport, sport_v);
    EXPECT_EQ(r.m.dport, dport_v);
    EXPECT_EQ(run(ipv4_frame({.tci = 0x1fff})).m.vlan, 4095); // DEI set, VID 4095
    EXPECT_EQ(run(ipv4_frame({.tci = 0xa000})).m.vlan, 0);    // priority tag
}

TEST(packet_parse, ipv4_options_every_ihl)
{
    for (int tci : {-1, 7}) {
        for (uint8_t ihl = 6; ihl <= 15; ++ihl) {
            const outcome r = run(ipv4_frame({.tci = tci, .ihl = ihl}));
            const int l3 = tci < 0 ? 14 : 18;
            ASSERT_TRUE(r.ok) << "ihl " << int(ihl) << ": " << verdict(r);
            EXPECT_EQ(r.m.l3_hdr_len, ihl * 4);
            EXPECT_EQ(r.m.l4_off, l3 + ihl * 4);
            EXPECT_EQ(r.m.ip_len, ihl * 4 + 12);
            EXPECT_EQ(r.m.sport, sport_v);
            EXPECT_EQ(r.m.dport, dport_v);
        }
    }
}

TEST(packet_parse, ipv4_ports_per_protocol)
{
    for (uint8_t p : {proto_tcp, proto_sctp}) {
        const outcome r = run(ipv4_frame({.proto = p, .payload = l4(4)}));
        ASSERT_TRUE(r.ok) << int(p) << ": " << verdict(r);
        EXPECT_EQ(r.m.proto, p);
        EXPECT_EQ(r.m.sport, sport_v);
        EXPECT_EQ(r.m.dport, dport_v);
        EXPECT_TRUE(drops_with(ipv4_frame({.proto = p, .payload = l4(3)}), drop_reason::l4_truncated));
    }
    EXPECT_TRUE(drops_with(ipv4_frame({.payload = l4(7)}), drop_reason::l4_truncated));
    EXPECT_TRUE(run(ipv4_frame({.payload = l4(8)})).ok);
    for (uint8_t p : {proto_esp, uint8_t{1}, uint8_t{51}}) {
        for (size_t n : {0, 2, 30}) {
            const outcome r = run(ipv4_frame({.proto = p, .payload = l4(n)}));
            ASSERT_TRUE(r.ok) << int(p) << "/" << n << ": " << verdict(r);
            EXPECT_EQ(r.m.proto, p);
            EXPECT_EQ(r.m.l4_off, 34);
            EXPECT_EQ(r.m.sport, 0);
            EXPECT_EQ(r.m.dport, 0);
        }
    }
}

TEST(packet_parse, ipv4_fragments)
{
    const outcome first = run(ipv4_frame({.frag = 0x2000})); // MF, offset 0
    ASSERT_TRUE(first.ok);
    EXPECT_EQ(first.m.fragment, 1);
    EXPECT_EQ(first.m.l4_off, 34);
    EXPECT_EQ(first.m.sport, sport_v);
    EXPECT_EQ(first.m.dport, dport_v);
    for (uint16_t frag : {0x2001, 0x0001, 0x1fff, 0x3000}) { // later fragments, MF or last
        const outcome r = run(ipv4_frame({.frag = frag, .payload = l4(2)}));
        ASSERT_TRUE(r.ok) << std::hex << frag << ": " << verdict(r);
        EXPECT_EQ(r.m.fragment, 1);
        EXPECT_EQ(r.m.l4_off, 0);
        EXPECT_EQ(r.m.sport, 0);
        EXPECT_EQ(r.m.dport, 0);
        EXPECT_EQ(r.m.proto, proto_udp);
    }
    const outcome df = run(ipv4_frame({.frag = 0x4000}));
    ASSERT_TRUE(df.ok);
    EXPECT_EQ(df.m.fragment, 0);
    EXPECT_TRUE(drops_with(ipv4_frame({.frag = 0x2000, .payload = l4(4)}), drop_reason::l4_truncated));
}

TEST(packet_parse, ethernet_padding_is_accepted)
{
    const outcome r4 = run(ipv4_frame({.payload = l4(8), .pad = 18})); // 42 -> 60 bytes
    ASSERT_TRUE(r4.ok) << verdict(r4);
    EXPECT_EQ(r4.m.ip_len, 28);
    const outcome r6 = run(ipv6_frame({.payload = l4(8), .pad = 100}));
    ASSERT_TRUE(r6.ok) << verdict(r6);
    EXPECT_EQ(r6.m.ip_len, 48);
    // A header whose L4 part sits in the padding only is still cut.
    bytes f = ipv4_frame({.payload = l4(8), .pad = 18});
    put16(f, 16, 24);
    fix_v4_csum(f, 14);
    EXPECT_TRUE(drops_with(f, drop_reason::l4_truncated));
}

TEST(packet_parse, ipv6_udp_plain_and_tagged)
{
    for (int tci : {-1, 0x0064}) {
        const int l3 = tci < 0 ? 14 : 18;
        const outcome r = run(ipv6_frame({.tci = tci}));
        ASSERT_TRUE(r.ok) << verdict(r);
        EXPECT_EQ(r.m.family, 6);
        EXPECT_EQ(r.m.vlan, tci < 0 ? vlan_none : 100);
        EXPECT_EQ(r.m.l3_off, l3);
        EXPECT_EQ(r.m.l4_off, l3 + 40);
        EXPECT_EQ(r.m.l3_hdr_len, 40);
        EXPECT_EQ(r.m.ip_len, 52);
        EXPECT_EQ(r.m.proto, proto_udp);
        EXPECT_EQ(r.m.fragment, 0);
        EXPECT_EQ(r.m.sport, sport_v);
        EXPECT_EQ(r.m.dport, dport_v);
    }
}

TEST(packet_parse, ipv6_extension_headers_first_and_later_fragment)
{
    const std::vector<ext_hdr> first{{0, 16}, {60, 8}, {44, 8, 0x0001}}; // M=1, offset 0
    const outcome r = run(ipv6_frame({.ext = first}));
    ASSERT_TRUE(r.ok) << verdict(r);
    EXPECT_EQ(r.m.l3_hdr_len, 72);
    EXPECT_EQ(r.m.l4_off, 14 + 72);
    EXPECT_EQ(r.m.ip_len, 84);
    EXPECT_EQ(r.m.proto, proto_udp);
    EXPECT_EQ(r.m.fragment, 1);
    EXPECT_EQ(r.m.sport, sport_v);
    EXPECT_EQ(r.m.dport, dport_v);

    const std::vector<ext_hdr> later{{0, 8}, {60, 24}, {44, 8, 0x00b9}}; // offset 23, M=1
    const outcome l = run(ipv6_frame({.tci = 5, .ext = later, .payload = l4(3)}));
    ASSERT_TRUE(l.ok) << verdict(l);
    EXPECT_EQ(l.m.l3_hdr_len, 80);
    EXPECT_EQ(l.m.l4_off, 0);
    EXPECT_EQ(l.m.proto, proto_udp);
    EXPECT_EQ(l.m.fragment, 1);
    EXPECT_EQ(l.m.sport, 0);
    EXPECT_EQ(l.m.dport, 0);

    const outcome atomic = run(ipv6_frame({.ext = {{44, 8, 0}}})); // offset 0, M=0
    ASSERT_TRUE(atomic.ok);
    EXPECT_EQ(atomic.m.fragment, 1);
    EXPECT_EQ(atomic.m.sport, sport_v);
}

TEST(packet_parse, ipv6_later_fragment_data_is_not_parsed_as_headers)
{
    // The fragment says its data starts with a hop-by-hop header; in a later fragment that data
    // is the middle of the packet and must not be walked (here it would overrun the payload).
    v6 o{.ext = {{44, 8, 0x0010}}, .proto = 0, .payload = bytes{17, 0xff, 0, 0}};
    const outcome r = run(ipv6_frame(o));
    ASSERT_TRUE(r.ok) << verdict(r);
    EXPECT_EQ(r.m.proto, 0);
    EXPECT_EQ(r.m.l3_hdr_len, 48);
    EXPECT_EQ(r.m.l4_off, 0);
}

TEST(packet_parse, ipv6_routing_and_ah_lengths)
{
    // AH length is (hdrlen + 2) * 4: 12 bytes with hdrlen 1; a wrong formula shifts the ports.
    const outcome r = run(ipv6_frame({.ext = {{43, 24}, {51, 12}, {51, 28}}}));
    ASSERT_TRUE(r.ok) << verdict(r);
    EXPECT_EQ(r.m.l3_hdr_len, 40 + 24 + 12 + 28);
    EXPECT_EQ(r.m.l4_off, 14 + 104);
    EXPECT_EQ(r.m.sport, sport_v);
    EXPECT_EQ(r.m.dport, dport_v);
    const outcome esp = run(ipv6_frame({.ext = {{0, 8}}, .proto = proto_esp, .payload = l4(1)}));
    ASSERT_TRUE(esp.ok) << verdict(esp);
    EXPECT_EQ(esp.m.proto, proto_esp);
    EXPECT_EQ(esp.m.l4_off, 14 + 48);
    EXPECT_EQ(esp.m.sport, 0);
}

TEST(packet_parse, ipv6_at_most_eight_extension_headers)
{
    std::vector<ext_hdr> chain(8, ext_hdr{60});
    const outcome r = run(ipv6_frame({.ext = chain}));
    ASSERT_TRUE(r.ok) << verdict(r);
    EXPECT_EQ(r.m.l3_hdr_len, 40 + 64);
    chain.push_back(ext_hdr{60});
    EXPECT_TRUE(drops_with(ipv6_frame({.ext = chain}), drop_reason::ipv6_bad_ext_header));
}

TEST(packet_parse, ipv6_ext_header_overrunning_payload)
{
    // Hop-by-hop claiming 16 bytes with only 8 in the payload, although padding follows.
    bytes f = ipv6_frame({.ext = {{0, 8}}, .proto = 59, .payload = {}, .pad = 64});
    f[54 + 1] = 1;
    EXPECT_TRUE(drops_with(f, drop_reason::ipv6_bad_ext_header));
    // A single payload byte cannot hold the next-header/length pair.
    bytes g = ipv6_frame({.proto = 0, .payload = bytes{59}, .pad = 8});
    EXPECT_TRUE(drops_with(g, drop_reason::ipv6_bad_ext_header));
    // A chain that would not fit l3_hdr_len (40 + 216 > 255).
    EXPECT_TRUE(drops_with(ipv6_frame({.ext = {{0, 216}}}), drop_reason::ipv6_bad_ext_header));
    EXPECT_TRUE(run(ipv6_frame({.ext = {{0, 208}}})).ok);
}

TEST(packet_parse, ipv6_payload_length_sweep_over_extension_chain)
{
    const bytes full = ipv6_frame({.ext = {{0, 8}, {60, 8}, {44, 8, 0x0001}}, .payload = l4(8)});
    for (uint16_t pl = 1; pl <= 32; ++pl) {
        bytes f = full;
        put16(f, 18, pl);
        const outcome r = run(f);
        const std::string want = pl < 24 ? "ipv6_bad_ext_header" : pl < 32 ? "l4_truncated" : "ok";
        EXPECT_EQ(verdict(r), want) << "payload length " << pl;
    }
}

TEST(packet_parse, ipv6_bad_payload_length)
{
    bytes f = ipv6_frame({});
    bytes jumbo = f;
    put16(jumbo, 18, 0); // jumbogram marker behind a hop-by-hop header (RFC 2675): unsupported
    jumbo[20] = 0;
    EXPECT_TRUE(drops_with(jumbo, drop_reason::ip_bad_length));
    bytes empty = f;
    put16(empty, 18, 0); // header only, no next header (RFC 8200): valid
    empty[20] = 59;
    const outcome e = run(empty);
    ASSERT_TRUE(e.ok) << verdict(e);
    EXPECT_EQ(e.m.ip_len, 40);
    EXPECT_EQ(e.m.proto, 59);
    put16(f, 18, 13); // one byte past the frame
    EXPECT_TRUE(drops_with(f, drop_reason::ip_bad_length));
    // 40 + 65535 does not fit ip_len even when the frame is long enough.
    bytes big = ipv6_frame({.payload = l4(0xffff)});
    EXPECT_TRUE(drops_with(big, drop_reason::ip_bad_length));
    put16(big, 18, 0xffff - 40);
    const outcome r = run(big);
    ASSERT_TRUE(r.ok) << verdict(r);
    EXPECT_EQ(r.m.ip_len, 0xffff);
}

TEST(packet_parse, truncated_ipv4_udp_at_every_length)
{
    for (uint8_t ihl : {5, 6, 15}) {
        for (int tci : {-1, 42}) {
            const size_t l3 = tci < 0 ? 14 : 18;
            const bytes f = ipv4_frame({.tci = tci, .ihl = ihl});
            for (size_t n = 0; n < f.size(); ++n) {
                const char* want = n < 14                 ? "frame_truncated"
                                   : n < l3               ? "vlan_truncated"
                                   : n < l3 + 20          ? "ip_truncated"
                                   : n < l3 + ihl * 4u    ? "ip_bad_ihl"
                                                          : "ip_bad_length";
                EXPECT_EQ(verdict(run(cut(f, n))), want) << "ihl " << int(ihl) << " len " << n;
            }
            EXPECT_TRUE(run(f).ok);
        }
    }
}

TEST(packet_parse, truncated_ipv6_udp_at_every_length)
{
    for (int tci : {-1, 42}) {
        const size_t l3 = tci < 0 ? 14 : 18;
        const bytes f = ipv6_frame({.tci = tci, .ext = {{0, 8}}});
        for (size_t n = 0; n < f.size(); ++n) {
            const char* want = n < 14        ? "frame_truncated"
                               : n < l3      ? "vlan_truncated"
                               : n < l3 + 40 ? "ip_truncated"
                                             : "ip_bad_length";
            EXPECT_EQ(verdict(run(cut(f, n))), want) << "len " << n;
        }
        EXPECT_TRUE(run(f).ok);
    }
}

TEST(packet_parse, bad_version_both_ways)
{
    bytes f4 = ipv4_frame({.payload = l4(40)});
    for (uint8_t v : {0, 5, 6, 15}) {
        f4[14] = static_cast<uint8_t>(v << 4 | 5);
        fix_v4_csum(f4, 14);
        EXPECT_TRUE(drops_with(f4, drop_reason::ip_bad_version)) << int(v);
    }
    bytes f6 = ipv6_frame({});
    for (uint8_t v : {0, 4, 7, 15}) {
        f6[14] = static_cast<uint8_t>(v << 4);
        EXPECT_TRUE(drops_with(f6, drop_reason::ip_bad_version)) << int(v);
    }
    // A valid IPv6 packet behind the IPv4 EtherType and vice versa.
    bytes v6in4 = ipv6_frame({});
    put16(v6in4, 12, ethertype_ipv4);
    EXPECT_TRUE(drops_with(v6in4, drop_reason::ip_bad_version));
    bytes v4in6 = ipv4_frame({.payload = l4(40)});
    put16(v4in6, 12, ethertype_ipv6);
    EXPECT_TRUE(drops_with(v4in6, drop_reason::ip_bad_version));
}

TEST(packet_parse, bad_ihl)
{
    bytes f = ipv4_frame({.payload = l4(60)});
    for (uint8_t ihl = 0; ihl < 5; ++ihl) {
        f[14] = static_cast<uint8_t>(0x40 | ihl);
        EXPECT_TRUE(drops_with(f, drop_reason::ip_bad_ihl, ipv4_csum::trusted)) << int(ihl);
    }
    // IHL 15 (60 bytes) with only 24 bytes of IP in the frame.
    bytes g = ipv4_frame({.payload = l4(4)});
    g[14] = 0x4f;
    EXPECT_TRUE(drops_with(g, drop_reason::ip_bad_ihl, ipv4_csum::trusted));
}

TEST(packet_parse, bad_total_length)
{
    const bytes f = ipv4_frame({.ihl = 6, .payload = l4(8), .pad = 10});
    for (uint16_t total : {0, 19, 20, 23, 43, 0xffff}) { // < 24 (IHL*4) or > 42 bytes of frame
        bytes g = f;
        put16(g, 16, total);
        fix_v4_csum(g, 14);
        EXPECT_TRUE(drops_with(g, drop_reason::ip_bad_length)) << total;
    }
    bytes ok = f;
    put16(ok, 16, 42); // up to the end of the padding
    fix_v4_csum(ok, 14);
    EXPECT_EQ(run(ok).m.ip_len, 42);
}

TEST(packet_parse, bad_checksum_verify_vs_trusted)
{
    bytes f = ipv4_frame({});
    f[14 + 11] ^= 0x01;
    EXPECT_TRUE(drops_with(f, drop_reason::ip_bad_checksum, ipv4_csum::verify));
    EXPECT_TRUE(run(f, ipv4_csum::trusted).ok);
    // The checksum covers the options.
    bytes o = ipv4_frame({.ihl = 8});
    o[14 + 25] ^= 0x40;
    EXPECT_TRUE(drops_with(o, drop_reason::ip_bad_checksum, ipv4_csum::verify));
    EXPECT_TRUE(run(o, ipv4_csum::trusted).ok);
    // ...and not the payload.
    bytes p = ipv4_frame({});
    p.back() ^= 0xff;
    EXPECT_TRUE(run(p, ipv4_csum::verify).ok);
}

TEST(packet_parse, not_ip)
{
    bytes arp = eth(0x0806, -1);
    arp.resize(60, 0);
    EXPECT_TRUE(drops_with(arp, drop_reason::not_ip));
    bytes qinq = ipv4_frame({.tci = 10});
    put16(qinq, 12, 0x88a8); // S-tag first
    EXPECT_TRUE(drops_with(qinq, drop_reason::not_ip));
    for (uint16_t inner : {ethertype_vlan, uint16_t{0x88a8}}) { // second tag after 802.1Q
        bytes f = eth(inner, 10);
        const bytes ip = ipv4_frame({.tci = 20});
        f.insert(f.end(), ip.begin() + 14, ip.end());
        EXPECT_TRUE(drops_with(f, drop_reason::not_ip)) << std::hex << inner;
    }
    EXPECT_TRUE(drops_with(eth(0x0806, 3), drop_reason::not_ip));
}

TEST(packet_parse, ipv4_header_checksum_values)
{
    const uint8_t rfc[20] = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                             0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
    EXPECT_EQ(ipv4_header_checksum(rfc, 20), 0xb861);
    uint8_t good[20];
    std::memcpy(good, rfc, 20);
    good[10] = 0xb8, good[11] = 0x61;
    EXPECT_EQ(ipv4_header_checksum(good, 20), 0);
    const uint8_t carry[4] = {0xff, 0xff, 0x00, 0x01}; // 0x10000 folds to 0x0001
    EXPECT_EQ(ipv4_header_checksum(carry, 4), 0xfffe);
    const uint8_t odd[3] = {0x12, 0x34, 0x56}; // 0x1234 + 0x5600
    EXPECT_EQ(ipv4_header_checksum(odd, 3), static_cast<uint16_t>(~0x6834));
    EXPECT_EQ(ipv4_header_checksum(rfc, 0), 0xffff);
    const bytes f = ipv4_frame({.ihl = 15});
    EXPECT_EQ(ipv4_header_checksum(f.data() + 14, 60), 0);
}

namespace {

void check_invariants(const bytes& f, const outcome& r)
{
    const pkt_meta& m = r.m;
    ASSERT_TRUE(m.l3_off == 14 || m.l3_off == 18);
    ASSERT_TRUE(m.family == 4 || m.family == 6);
    ASSERT_TRUE(m.vlan <= 4095 || m.vlan == vlan_none);
    ASSERT_LE(size_t{m.l3_off} + m.ip_len, f.size());
    ASSERT_LE(m.l3_hdr_len, m.ip_len);
    ASSERT_LE(m.fragment, 1);
    if (m.l4_off == 0) {
        ASSERT_EQ(m.fragment, 1);
        ASSERT_EQ(m.sport | m.dport, 0);
        return;
    }
    ASSERT_EQ(m.l4_off, m.l3_off + m.l3_hdr_len);
    const bool ports = m.proto == proto_udp || m.proto == proto_tcp || m.proto == proto_sctp;
    const size_t need = ports ? (m.proto == proto_udp ? 8 : 4) : 0;
    ASSERT_LE(size_t{m.l4_off} + need, size_t{m.l3_off} + m.ip_len);
    if (ports) {
        ASSERT_EQ(m.sport, f[m.l4_off] << 8 | f[m.l4_off + 1]);
        ASSERT_EQ(m.dport, f[m.l4_off + 2] << 8 | f[m.l4_off + 3]);
    } else {
        ASSERT_EQ(m.sport | m.dport, 0);
    }
}

/// Sets every byte of `base` to every value; the parse must stay in bounds (ASan), give the same
/// answer twice, write every meta field on success, and keep its offsets consistent.
void flip_every_byte(const bytes& base, ipv4_csum c, size_t& accepted, size_t& dropped)
{
    for (size_t i = 0; i < base.size(); ++i) {
        for (int v = 0; v < 256; ++v) {
            bytes f = base;
            f[i] = static_cast<uint8_t>(v);
            const outcome a = run(f, c, 0x00);
            const outcome b = run(f, c, 0xff);
            ASSERT_EQ(a.ok, b.ok) << i << "=" << v;
            if (!a.ok) {
                ASSERT_EQ(a.why, b.why) << i << "=" << v;
                ASSERT_LT(static_cast<size_t>(a.why), drop_reason_count);
                ++dropped;
                continue;
            }
            static_assert(sizeof(pkt_meta) == 18, "pkt_meta has no padding to compare");
            ASSERT_EQ(std::memcmp(&a.m, &b.m, sizeof(pkt_meta)), 0) << i << "=" << v;
            ASSERT_NO_FATAL_FAILURE(check_invariants(f, a)) << i << "=" << v;
            ++accepted;
        }
    }
}

} // namespace

TEST(packet_parse, one_byte_flips_stay_in_bounds_and_are_deterministic)
{
    const std::vector<bytes> bases{
        ipv4_frame({.payload = l4(8)}),
        ipv4_frame({.tci = 0x0123, .ihl = 7, .frag = 0x2000, .payload = l4(8)}),
        ipv6_frame({.ext = {{0, 8}, {60, 8}, {44, 8, 0x0001}}, .payload = l4(8)}),
        ipv6_frame({.tci = 9, .ext = {{51, 12}, {43, 16}}, .proto = proto_tcp, .payload = l4(4)}),
    };
    for (ipv4_csum c : {ipv4_csum::verify, ipv4_csum::trusted}) {
        size_t accepted = 0;
        size_t dropped = 0;
        for (const bytes& b : bases) {
            ASSERT_NO_FATAL_FAILURE(flip_every_byte(b, c, accepted, dropped));
        }
        EXPECT_GT(accepted, 1000u);
        EXPECT_GT(dropped, 1000u);
    }
}

// parse_ip (after ESP decapsulation: the L2 header is known, only the inner IP packet is parsed)
// agrees with parse_frame on every field for both families, tagged and untagged, and takes the
// IP version from the packet itself rather than the (outer) EtherType.
TEST(packet_parse, parse_ip_agrees_with_parse_frame)
{
    for (int tci : {-1, 0x0123}) {
        v4 o4;
        o4.tci = tci;
        v6 o6;
        o6.tci = tci;
        o6.ext = {{0}, {60, 16}};
        for (const bytes& f : {ipv4_frame(o4), ipv6_frame(o6)}) {
            const outcome want = run(f);
            ASSERT_TRUE(want.ok);
            pkt_meta got;
            std::memset(&got, 0xa5, sizeof(got));
            drop_reason why = drop_reason::count_;
            ASSERT_TRUE(parse_ip(f.data(), static_cast<uint32_t>(f.size()), want.m.l3_off, want.m.vlan,
                                 ipv4_csum::verify, got, why));
            EXPECT_EQ(0, std::memcmp(&got, &want.m, sizeof(got)));
            bytes other = f; // an IPv4 EtherType over an IPv6 packet (or the reverse) changes nothing
            put16(other, want.m.l3_off - 2, want.m.family == 4 ? ethertype_ipv6 : ethertype_ipv4);
            ASSERT_TRUE(parse_ip(other.data(), static_cast<uint32_t>(other.size()), want.m.l3_off, want.m.vlan,
                                 ipv4_csum::verify, got, why));
            EXPECT_EQ(got.family, want.m.family);
        }
    }
}

TEST(packet_parse, parse_ip_rejects_bad_version_truncation_and_checksum)
{
    bytes f = ipv4_frame(v4{});
    pkt_meta m;
    drop_reason why = drop_reason::count_;
    EXPECT_FALSE(parse_ip(f.data(), 14, 14, vlan_none, ipv4_csum::verify, m, why));
    EXPECT_EQ(why, drop_reason::ip_truncated);
    EXPECT_FALSE(parse_ip(f.data(), 14 + 19, 14, vlan_none, ipv4_csum::verify, m, why));
    EXPECT_EQ(why, drop_reason::ip_truncated);
    f[14 + 8] ^= 1; // TTL: checksum now wrong
    EXPECT_FALSE(parse_ip(f.data(), static_cast<uint32_t>(f.size()), 14, vlan_none, ipv4_csum::verify, m, why));
    EXPECT_EQ(why, drop_reason::ip_bad_checksum);
    f[14] = 0x55;
    EXPECT_FALSE(parse_ip(f.data(), static_cast<uint32_t>(f.size()), 14, vlan_none, ipv4_csum::trusted, m, why));
    EXPECT_EQ(why, drop_reason::ip_bad_version);
}
