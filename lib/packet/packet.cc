#include "packet.hh"

#include <cstring>

#include "common/byte_order.hh"

namespace msecgw::packet {

namespace {

constexpr uint32_t eth_hdr_len = 14;
constexpr uint32_t vlan_tag_len = 4;
constexpr uint32_t ipv4_min_hdr = 20;
constexpr uint32_t ipv6_hdr_len = 40;
constexpr uint32_t max_ip_len = 0xffff;      ///< pkt_meta::ip_len is 16 bits
constexpr uint32_t max_l3_hdr_len = 0xff;    ///< pkt_meta::l3_hdr_len is 8 bits
constexpr unsigned max_ext_headers = 8;

constexpr uint8_t ext_hop_by_hop = 0;
constexpr uint8_t ext_routing = 43;
constexpr uint8_t ext_fragment = 44;
constexpr uint8_t ext_auth = 51;
constexpr uint8_t ext_dest_opts = 60;

constexpr uint16_t ipv4_mf = 0x2000;
constexpr uint16_t ipv4_frag_off_mask = 0x1fff;
constexpr uint16_t ipv6_frag_off_mask = 0xfff8;

bool fail(drop_reason& why, drop_reason r)
{
    why = r;
    return false;
}

bool has_ports(uint8_t proto)
{
    return proto == proto_udp || proto == proto_tcp || proto == proto_sctp;
}

bool is_ipv6_ext(uint8_t next)
{
    return next == ext_hop_by_hop || next == ext_routing || next == ext_fragment || next == ext_auth
        || next == ext_dest_opts;
}

/// Records the L4 offset and, for UDP/TCP/SCTP, the ports. `l4` and `ip_end` are frame offsets
/// with l4 <= ip_end <= frame length.
bool read_ports(const uint8_t* f, uint32_t l4, uint32_t ip_end, pkt_meta& m, drop_reason& why)
{
    m.l4_off = static_cast<uint16_t>(l4);
    m.sport = 0;
    m.dport = 0;
    if (!has_ports(m.proto)) {
        return true;
    }
    const uint32_t need = m.proto == proto_udp ? 8 : 4;
    if (l4 > ip_end || ip_end - l4 < need) {
        return fail(why, drop_reason::l4_truncated);
    }
    m.sport = load_be16(f + l4);
    m.dport = load_be16(f + l4 + 2);
    return true;
}

bool parse_ipv4(const uint8_t* f, uint32_t len, ipv4_csum csum, pkt_meta& m, drop_reason& why)
{
    const uint32_t room = len - m.l3_off;
    if (room < ipv4_min_hdr) {
        return fail(why, drop_reason::ip_truncated);
    }
    const uint8_t* ip = f + m.l3_off;
    if ((ip[0] >> 4) != 4) {
        return fail(why, drop_reason::ip_bad_version);
    }
    const uint32_t ihl = static_cast<uint32_t>(ip[0] & 0x0f) * 4;
    if (ihl < ipv4_min_hdr || ihl > room) {
        return fail(why, drop_reason::ip_bad_ihl);
    }
    const uint32_t total = load_be16(ip + 2);
    if (total < ihl || total > room) {
        return fail(why, drop_reason::ip_bad_length);
    }
    if (csum == ipv4_csum::verify && ipv4_header_checksum(ip, ihl) != 0) {
        return fail(why, drop_reason::ip_bad_checksum);
    }
    m.family = 4;
    m.proto = ip[9];
    m.ip_len = static_cast<uint16_t>(total);
    m.l3_hdr_len = static_cast<uint8_t>(ihl);
    const uint16_t frag = load_be16(ip + 6);
    const bool later_fragment = (frag & ipv4_frag_off_mask) != 0;
    m.fragment = (later_fragment || (frag & ipv4_mf) != 0) ? 1 : 0;
    if (later_fragment) {
        return true; // l4_off, sport, dport stay 0
    }
    return read_ports(f, m.l3_off + ihl, m.l3_off + total, m, why);
}

/// State of the IPv6 extension header walk; offsets are from the start of the IPv6 header.
struct ext_walk {
    uint8_t next;
    uint32_t off;
    bool fragment;
    bool later_fragment;
    uint32_t next_field; ///< offset of the byte holding `next`
    uint32_t frag_hdr;   ///< offset of the fragment header, 0 if none
    uint32_t frag_prev;  ///< offset of the next-header byte naming the fragment header
};

/// Size in bytes of the extension header of type `type` whose first two bytes are at `p`.
uint32_t ext_size(uint8_t type, const uint8_t* p)
{
    if (type == ext_fragment) {
        return 8;
    }
    if (type == ext_auth) {
        return (static_cast<uint32_t>(p[1]) + 2) * 4;
    }
    return (static_cast<uint32_t>(p[1]) + 1) * 8;
}

/// Skips the extension headers of an IPv6 packet of `ip_len` bytes (all inside the frame). Stops
/// after a non-first fragment header: what follows it is fragment data, not headers.
bool walk_ipv6_ext(const uint8_t* ip, uint32_t ip_len, ext_walk& w, drop_reason& why)
{
    for (unsigned count = 0; is_ipv6_ext(w.next); ++count) {
        if (count == max_ext_headers || ip_len - w.off < 2) {
            return fail(why, drop_reason::ipv6_bad_ext_header);
        }
        const uint8_t* h = ip + w.off;
        const uint32_t size = ext_size(w.next, h);
        if (ip_len - w.off < size) {
            return fail(why, drop_reason::ipv6_bad_ext_header);
        }
        const bool is_frag = w.next == ext_fragment;
        if (is_frag && !w.fragment) {
            w.frag_hdr = w.off;
            w.frag_prev = w.next_field;
        }
        w.next = h[0];
        w.next_field = w.off;
        w.off += size;
        if (is_frag) {
            w.fragment = true;
            if ((load_be16(h + 2) & ipv6_frag_off_mask) != 0) {
                w.later_fragment = true;
                break;
            }
        }
    }
    if (w.off > max_l3_hdr_len) {
        return fail(why, drop_reason::ipv6_bad_ext_header);
    }
    return true;
}

bool parse_ipv6(const uint8_t* f, uint32_t len, pkt_meta& m, drop_reason& why)
{
    const uint32_t room = len - m.l3_off;
    if (room < ipv6_hdr_len) {
        return fail(why, drop_reason::ip_truncated);
    }
    const uint8_t* ip = f + m.l3_off;
    if ((ip[0] >> 4) != 6) {
        return fail(why, drop_reason::ip_bad_version);
    }
    const uint32_t payload = load_be16(ip + 4);
    const uint32_t ip_len = ipv6_hdr_len + payload;
    // Payload length 0 is a jumbogram only behind a hop-by-hop header (RFC 2675; unsupported);
    // otherwise it is a valid header-only packet (RFC 8200), e.g. next header 59.
    const bool jumbogram = payload == 0 && ip[6] == 0;
    if (jumbogram || ip_len > room || ip_len > max_ip_len) {
        return fail(why, drop_reason::ip_bad_length);
    }
    ext_walk w{ip[6], ipv6_hdr_len, false, false, 6, 0, 0};
    if (!walk_ipv6_ext(ip, ip_len, w, why)) {
        return false;
    }
    m.family = 6;
    m.proto = w.next;
    m.ip_len = static_cast<uint16_t>(ip_len);
    m.l3_hdr_len = static_cast<uint8_t>(w.off);
    m.fragment = w.fragment ? 1 : 0;
    m.frag_hdr = static_cast<uint8_t>(w.frag_hdr);
    m.frag_prev = static_cast<uint8_t>(w.frag_prev);
    if (w.later_fragment) {
        return true; // l4_off, sport, dport stay 0
    }
    return read_ports(f, m.l3_off + w.off, m.l3_off + ip_len, m, why);
}

} // namespace

bool parse_frame(const uint8_t* frame, uint32_t len, ipv4_csum csum, pkt_meta& m, drop_reason& why)
{
    m = pkt_meta{};
    m.vlan = vlan_none;
    if (len < eth_hdr_len) {
        return fail(why, drop_reason::frame_truncated);
    }
    uint16_t type = load_be16(frame + 12);
    uint32_t l3 = eth_hdr_len;
    if (type == ethertype_vlan) {
        if (len < eth_hdr_len + vlan_tag_len) {
            return fail(why, drop_reason::vlan_truncated);
        }
        m.vlan = static_cast<uint16_t>(load_be16(frame + 14) & 0x0fff);
        type = load_be16(frame + 16);
        l3 += vlan_tag_len;
    }
    m.l3_off = static_cast<uint16_t>(l3);
    if (type == ethertype_ipv4) {
        return parse_ipv4(frame, len, csum, m, why);
    }
    if (type == ethertype_ipv6) {
        return parse_ipv6(frame, len, m, why);
    }
    // Includes a second tag (0x8100 / 0x88a8) and QinQ outer tags: only one tag is parsed.
    return fail(why, drop_reason::not_ip);
}

bool parse_ip(const uint8_t* frame, uint32_t len, uint16_t l3_off, uint16_t vlan, ipv4_csum csum, pkt_meta& m,
              drop_reason& why)
{
    m = pkt_meta{};
    m.vlan = vlan;
    m.l3_off = l3_off;
    if (len <= l3_off) {
        return fail(why, drop_reason::ip_truncated);
    }
    switch (frame[l3_off] >> 4) {
    case 4: return parse_ipv4(frame, len, csum, m, why);
    case 6: return parse_ipv6(frame, len, m, why);
    default: return fail(why, drop_reason::ip_bad_version);
    }
}

uint16_t ipv4_header_checksum(const uint8_t* hdr, uint32_t len)
{
    // RFC 1071 §2(B): the one's complement sum does not depend on byte order, so sum native
    // (little-endian) 32-bit words and swap once at the end.
    uint64_t sum = 0;
    uint32_t i = 0;
    if (len == 20) { // the usual header: five loads, no loop
        uint64_t a, b;
        uint32_t c;
        std::memcpy(&a, hdr, 8);
        std::memcpy(&b, hdr + 8, 8);
        std::memcpy(&c, hdr + 16, 4);
        sum = (a & 0xffffffffu) + (a >> 32) + (b & 0xffffffffu) + (b >> 32) + c;
        i = 20;
    }
    for (; i + 4 <= len; i += 4) {
        uint32_t w;
        std::memcpy(&w, hdr + i, 4);
        sum += w;
    }
    if (i + 2 <= len) {
        uint16_t w;
        std::memcpy(&w, hdr + i, 2);
        sum += w;
        i += 2;
    }
    if (i < len) {
        sum += hdr[i]; // odd trailing byte, padded with zero: the low byte of a little-endian word
    }
    return checksum_fold(sum);
}

} // namespace msecgw::packet
