#pragma once
/// ESP tunnel-mode framing with RFC 5374 address preservation (RFC 4303 layout, RFC 4106 GCM
/// fields). Pure functions over bytes: no DPDK, no crypto, usable on workers and in fuzzers.
///
/// Protected packet: [outer IP][SPI|seq][IV 8][ inner IP packet | pad 1,2,3.. | pad len | next hdr ][ICV 16]
///                                          \____________ encrypted (GCM) _______________________/
/// Outer addresses copy the inner ones; never across IP versions (outer family == inner family).

#include <bit>
#include <cstdint>
#include <cstring>

#include "common/byte_order.hh"
#include "packet/packet.hh"

namespace msecgw::esp {

inline constexpr uint16_t esp_hdr_len = 8;  ///< SPI + sequence number
inline constexpr uint16_t iv_len = 8;       ///< RFC 4106 explicit IV
inline constexpr uint16_t icv_len = 16;     ///< GCM tag
inline constexpr uint16_t ipv4_hdr_len = 20;
inline constexpr uint16_t ipv6_hdr_len = 40;
inline constexpr uint8_t next_header_ipv4 = 4;
inline constexpr uint8_t next_header_ipv6 = 41;

inline constexpr uint8_t proto_esp = 50;

/// Sizes of one outbound encapsulation.
struct outb_layout {
    uint16_t outer_len;   ///< outer IP header: 20 or 40
    uint16_t head_len;    ///< outer + ESP header + IV: bytes inserted before the inner packet
    uint8_t pad_len;      ///< padding so that inner + pad + 2 is a multiple of 4
    uint16_t tail_len;    ///< pad + 2 + ICV: bytes appended after the inner packet
    uint16_t cipher_len;  ///< inner + pad + 2: bytes GCM encrypts
    uint32_t outer_total; ///< whole protected IP packet
};

/// Layout for an inner packet of `inner_len` bytes of IP version `family` (4 or 6).
inline outb_layout layout_for(uint8_t family, uint16_t inner_len)
{
    outb_layout l{};
    l.outer_len = family == 4 ? ipv4_hdr_len : ipv6_hdr_len;
    l.head_len = static_cast<uint16_t>(l.outer_len + esp_hdr_len + iv_len);
    l.pad_len = static_cast<uint8_t>((4 - (inner_len + 2) % 4) % 4);
    l.cipher_len = static_cast<uint16_t>(inner_len + l.pad_len + 2);
    l.tail_len = static_cast<uint16_t>(l.pad_len + 2 + icv_len);
    l.outer_total = static_cast<uint32_t>(l.head_len) + inner_len + l.tail_len;
    return l;
}

static_assert(std::endian::native == std::endian::little, "the framing below builds fields as native words");

/// Writes the outer IPv4 header at `out` from the inner IPv4 header `inner`: src/dst copied,
/// DSCP and ECN copied (RFC 4301 §5.1.2.1, RFC 6040 normal mode), TTL copied (keeps multicast
/// scoping), DF copied, protocol 50, checksum computed unless `csum_offload`.
inline void write_outer_v4(uint8_t* out, const uint8_t* inner, uint32_t outer_total, uint16_t ip_id, bool csum_offload)
{
    // Built as three native words and stored once: byte stores followed by the checksum's wide
    // loads would stall store forwarding on every packet.
    uint32_t addr_src, addr_dst;
    std::memcpy(&addr_src, inner + 12, 4);
    std::memcpy(&addr_dst, inner + 16, 4);
    const uint64_t w0 = 0x45u | (uint64_t{inner[1]} << 8) | (uint64_t{(outer_total >> 8) & 0xffu} << 16) |
                        (uint64_t{outer_total & 0xffu} << 24) | (uint64_t{static_cast<uint8_t>(ip_id >> 8)} << 32) |
                        (uint64_t{static_cast<uint8_t>(ip_id)} << 40) |
                        (uint64_t{static_cast<uint8_t>(inner[6] & 0x40)} << 48); // DF only, never MF/offset
    uint64_t w1 = uint64_t{inner[8]} | (uint64_t{proto_esp} << 8) | (uint64_t{addr_src} << 32); // TTL, ESP
    if (!csum_offload) {
        const uint16_t c = packet::checksum_fold((w0 & 0xffffffffu) + (w0 >> 32) + (w1 & 0xffffffffu) + (w1 >> 32) +
                                                 addr_dst);
        w1 |= uint64_t{static_cast<uint16_t>((c >> 8) | (c << 8))} << 16;
    }
    std::memcpy(out, &w0, 8);
    std::memcpy(out + 8, &w1, 8);
    std::memcpy(out + 16, &addr_dst, 4);
}

/// Writes the outer IPv6 header: src/dst, traffic class, flow label and hop limit copied,
/// next header 50.
void write_outer_v6(uint8_t* out, const uint8_t* inner, uint32_t outer_total);

/// Writes SPI, sequence number and explicit IV (all big-endian) at `p`: two 8-byte stores.
inline void write_esp_header(uint8_t* p, uint32_t spi, uint32_t seq, uint64_t iv)
{
    const uint64_t spi_seq = __builtin_bswap64((uint64_t{spi} << 32) | seq);
    const uint64_t iv_be = __builtin_bswap64(iv);
    std::memcpy(p, &spi_seq, 8);
    std::memcpy(p + 8, &iv_be, 8);
}

/// Writes padding 1,2,3,…, the pad length and the next header at `p` (RFC 4303 §2.4) with one
/// 8-byte store: `p` must have 8 writable bytes (in an ESP packet the ICV follows the trailer, so
/// the bytes past it are overwritten by the tag). `pad_len` is 0..3, as layout_for makes it.
inline void write_trailer(uint8_t* p, uint8_t pad_len, uint8_t next_header)
{
    const unsigned shift = 8u * pad_len;
    const uint64_t pad = uint64_t{0x030201} & ((uint64_t{1} << shift) - 1);
    const uint64_t w = pad | (uint64_t{pad_len} << shift) | (uint64_t{next_header} << (shift + 8));
    std::memcpy(p, &w, 8);
}

/// What an inbound ESP packet says before decryption.
struct inb_header {
    uint32_t spi;
    uint32_t seq;
    uint16_t esp_off;     ///< offset of the ESP header from the IP header
    uint16_t cipher_len;  ///< bytes between the IV and the ICV
};

/// Reads SPI/seq and checks that the ESP packet of `ip_len` bytes (outer header `outer_len`)
/// holds at least an IV, a 2-byte trailer (4-byte aligned) and an ICV. False if not.
inline bool read_inb_header(const uint8_t* ip, uint16_t outer_len, uint32_t ip_len, inb_header& h)
{
    const uint32_t min_len = uint32_t{outer_len} + esp_hdr_len + iv_len + 4 + icv_len;
    if (ip_len < min_len) {
        return false;
    }
    const uint32_t cipher_len = ip_len - outer_len - esp_hdr_len - iv_len - icv_len;
    if (cipher_len % 4 != 0 || cipher_len > 0xffff) {
        return false;
    }
    h.spi = load_be32(ip + outer_len);
    h.seq = load_be32(ip + outer_len + 4);
    h.esp_off = outer_len;
    h.cipher_len = static_cast<uint16_t>(cipher_len);
    return true;
}

/// Checks the padding of `cipher_len` bytes of plaintext `plain` (1,2,3,…, RFC 4303 §2.4) and
/// returns the payload length before it (0 if invalid); `nh` gets the trailer's next header.
inline uint16_t check_padding(const uint8_t* plain, uint16_t cipher_len, uint8_t& nh)
{
    if (cipher_len < 2) {
        return 0;
    }
    const uint8_t pad_len = plain[cipher_len - 2];
    nh = plain[cipher_len - 1];
    if (uint32_t{pad_len} + 2 > cipher_len) {
        return 0;
    }
    const auto len = static_cast<uint16_t>(cipher_len - 2 - pad_len);
    uint8_t diff = 0; // check every pad byte; padding is not secret, but keep the loop simple
    for (uint8_t i = 0; i < pad_len; ++i) {
        diff |= static_cast<uint8_t>(plain[len + i] ^ (i + 1));
    }
    return diff == 0 ? len : 0;
}

/// Checks the decrypted trailer of `cipher_len` bytes of plaintext `plain`: padding bytes are
/// 1,2,3,…, the next header is 4 or 41 and agrees with the inner IP version, the inner packet
/// length from its own header equals what is left. Returns the inner length, or 0 if invalid.
inline uint16_t check_trailer(const uint8_t* plain, uint16_t cipher_len)
{
    uint8_t nh = 0;
    const uint16_t inner_len = check_padding(plain, cipher_len, nh);
    if (inner_len < ipv4_hdr_len) {
        return 0;
    }
    const uint8_t version = plain[0] >> 4;
    const bool v4 = nh == next_header_ipv4 && version == 4 && load_be16(plain + 2) == inner_len;
    const bool v6 = nh == next_header_ipv6 && version == 6 && inner_len >= ipv6_hdr_len &&
                    load_be16(plain + 4) + uint32_t{ipv6_hdr_len} == inner_len;
    return v4 || v6 ? inner_len : 0;
}

/// RFC 5374 §3.1: the outer source and destination equal the inner ones (same family).
inline bool addresses_preserved(const uint8_t* outer, const uint8_t* inner, uint8_t family)
{
    if ((inner[0] >> 4) != family) {
        return false;
    }
    return family == 4 ? std::memcmp(outer + 12, inner + 12, 8) == 0
                       : std::memcmp(outer + 8, inner + 8, 32) == 0;
}

/// RFC 6040 decapsulation: combine outer ECN into the inner header. Returns false when the
/// packet must be dropped (outer CE on a Not-ECT inner packet). May rewrite the inner IPv4
/// checksum or IPv6 traffic class.
bool ecn_decapsulate(uint8_t* inner, uint8_t family, uint8_t outer_ecn);

} // namespace msecgw::esp
