#pragma once
/// ESP tunnel-mode framing with RFC 5374 address preservation (RFC 4303 layout, RFC 4106 GCM
/// fields). Pure functions over bytes: no DPDK, no crypto, usable on workers and in fuzzers.
///
/// Protected packet: [outer IP][SPI|seq][IV 8][ inner IP packet | pad 1,2,3.. | pad len | next hdr ][ICV 16]
///                                          \____________ encrypted (GCM) _______________________/
/// Outer addresses copy the inner ones; never across IP versions (outer family == inner family).

#include <cstdint>

namespace msecgw::esp {

inline constexpr uint16_t esp_hdr_len = 8;  ///< SPI + sequence number
inline constexpr uint16_t iv_len = 8;       ///< RFC 4106 explicit IV
inline constexpr uint16_t icv_len = 16;     ///< GCM tag
inline constexpr uint16_t ipv4_hdr_len = 20;
inline constexpr uint16_t ipv6_hdr_len = 40;
inline constexpr uint8_t next_header_ipv4 = 4;
inline constexpr uint8_t next_header_ipv6 = 41;

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
outb_layout layout_for(uint8_t family, uint16_t inner_len);

/// Writes the outer IPv4 header at `out` from the inner IPv4 header `inner`: src/dst copied,
/// DSCP and ECN copied (RFC 4301 §5.1.2.1, RFC 6040 normal mode), TTL copied (keeps multicast
/// scoping), DF copied, protocol 50, checksum computed unless `csum_offload`.
void write_outer_v4(uint8_t* out, const uint8_t* inner, uint32_t outer_total, uint16_t ip_id, bool csum_offload);

/// Writes the outer IPv6 header: src/dst, traffic class, flow label and hop limit copied,
/// next header 50.
void write_outer_v6(uint8_t* out, const uint8_t* inner, uint32_t outer_total);

/// Writes SPI, sequence number and explicit IV (all big-endian) at `p`.
void write_esp_header(uint8_t* p, uint32_t spi, uint32_t seq, uint64_t iv);

/// Writes padding 1,2,3,…, the pad length and the next header at `p` (RFC 4303 §2.4).
void write_trailer(uint8_t* p, uint8_t pad_len, uint8_t next_header);

/// What an inbound ESP packet says before decryption.
struct inb_header {
    uint32_t spi;
    uint32_t seq;
    uint16_t esp_off;     ///< offset of the ESP header from the IP header
    uint16_t cipher_len;  ///< bytes between the IV and the ICV
};

/// Reads SPI/seq and checks that the ESP packet of `ip_len` bytes (outer header `outer_len`)
/// holds at least an IV, a 2-byte trailer (4-byte aligned) and an ICV. False if not.
bool read_inb_header(const uint8_t* ip, uint16_t outer_len, uint32_t ip_len, inb_header& h);

/// Checks the decrypted trailer of `cipher_len` bytes of plaintext `plain`: padding bytes are
/// 1,2,3,…, the next header is 4 or 41 and agrees with the inner IP version, the inner packet
/// length from its own header equals what is left. Returns the inner length, or 0 if invalid.
uint16_t check_trailer(const uint8_t* plain, uint16_t cipher_len);

/// RFC 5374 §3.1: the outer source and destination equal the inner ones (same family).
bool addresses_preserved(const uint8_t* outer, const uint8_t* inner, uint8_t family);

/// RFC 6040 decapsulation: combine outer ECN into the inner header. Returns false when the
/// packet must be dropped (outer CE on a Not-ECT inner packet). May rewrite the inner IPv4
/// checksum or IPv6 traffic class.
bool ecn_decapsulate(uint8_t* inner, uint8_t family, uint8_t outer_ecn);

} // namespace msecgw::esp
