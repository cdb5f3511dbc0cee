#pragma once
/// Header parsing for the data plane: Ethernet, 802.1Q (tag kept), IPv4 with options, IPv6 with
/// extension headers skipped, UDP/TCP/SCTP ports. Pure functions over a byte span: no DPDK types,
/// no allocation, safe for worker lcores and fuzzing.

#include <cstdint>

#include "common/drop_reason.hh"

namespace msecgw::packet {

inline constexpr uint16_t ethertype_ipv4 = 0x0800;
inline constexpr uint16_t ethertype_ipv6 = 0x86dd;
inline constexpr uint16_t ethertype_vlan = 0x8100;
inline constexpr uint16_t vlan_none = 4096; ///< same value as config::vlan_untagged

inline constexpr uint8_t proto_tcp = 6;
inline constexpr uint8_t proto_udp = 17;
inline constexpr uint8_t proto_esp = 50;
inline constexpr uint8_t proto_sctp = 132;

/// Whether the IPv4 header checksum must be verified in software or was already checked
/// (good) by the NIC.
enum class ipv4_csum : uint8_t { verify, trusted };

/// What the parser learned about one frame. Offsets are from the start of the frame.
struct pkt_meta {
    uint16_t l3_off;    ///< start of the IP header (14 or 18)
    uint16_t l4_off;    ///< start of the L4 header; 0 when there is none (non-first fragment)
    uint16_t ip_len;    ///< IP packet length from the header (total length / 40 + payload length)
    uint16_t vlan;      ///< 802.1Q VLAN id, or vlan_none when untagged
    uint16_t sport;     ///< host byte order; 0 when the protocol has no ports or not first fragment
    uint16_t dport;
    uint8_t family;     ///< 4 or 6
    uint8_t proto;      ///< upper-layer protocol after IPv6 extension headers
    uint8_t fragment;   ///< 1 when this is an IP fragment (first or not)
    uint8_t l3_hdr_len; ///< IPv4 IHL*4, or 40 + extension headers for IPv6
    uint8_t frag_hdr;   ///< IPv6 fragment: offset of the fragment header from the IP header; else 0
    uint8_t frag_prev;  ///< IPv6 fragment: offset of the next-header byte that names it; else 0
};

/// Parses one frame of `len` bytes. On success fills `m` and returns true; otherwise stores the
/// drop reason in `why` and returns false (m is then unspecified).
///
/// Rules: the frame may be longer than the IP packet (Ethernet padding), never shorter. Only one
/// 802.1Q tag is parsed; a second tag is not IP (`not_ip`). IPv4: version 4, IHL >= 5, options
/// within the frame, total length >= IHL*4 and within the frame, checksum when `csum` says so.
/// IPv6: version 6, payload length within the frame; hop-by-hop, routing, fragment, destination
/// options and AH headers are skipped (at most 8), truncation is `ipv6_bad_ext_header`. Ports are
/// read for UDP, TCP and SCTP in unfragmented packets and first fragments (`l4_truncated` when cut).
///
/// Details: IPv6 payload length 0 (jumbogram) is `ip_bad_length`, and so is an IPv6 packet whose
/// 40 + payload length does not fit `ip_len`. The extension header walk stops after a non-first
/// fragment header (what follows is fragment data): `proto` is that header's next header. An
/// extension chain longer than 215 bytes (40 + chain would not fit `l3_hdr_len`) is
/// `ipv6_bad_ext_header`. IPv4 AH (51) is not skipped: `proto` is 51 with no ports.
bool parse_frame(const uint8_t* frame, uint32_t len, ipv4_csum csum, pkt_meta& m, drop_reason& why);

/// Parses only the IP packet at `l3_off` of a frame of `len` bytes whose link-layer header is
/// known (after ESP decapsulation: the L2 header stays, the inner packet follows it). The IP
/// version nibble picks IPv4 or IPv6; the same rules as parse_frame apply from there on. Fills
/// `m` (l3_off and vlan as given) or stores the drop reason in `why` and returns false.
bool parse_ip(const uint8_t* frame, uint32_t len, uint16_t l3_off, uint16_t vlan, ipv4_csum csum, pkt_meta& m,
              drop_reason& why);

/// Internet checksum (RFC 1071) over `len` bytes, folded and complemented. 16-bit words are read
/// big-endian, so the result is stored high byte first; it is 0 over a header with a correct
/// checksum field. An odd trailing byte is padded with zero.
uint16_t ipv4_header_checksum(const uint8_t* hdr, uint32_t len);

/// The checksum (as ipv4_header_checksum returns it) from a plain sum of the header's words read
/// in native (little-endian) order, 16 or 32 bits at a time: for headers built in registers.
inline uint16_t checksum_fold(uint64_t sum)
{
    sum = (sum & 0xffffffffu) + (sum >> 32);
    sum = (sum & 0xffffffffu) + (sum >> 32);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    const auto le = static_cast<uint16_t>(sum);
    return static_cast<uint16_t>(~static_cast<uint16_t>((le << 8) | (le >> 8)));
}

} // namespace msecgw::packet
