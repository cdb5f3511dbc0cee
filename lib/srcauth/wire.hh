#pragma once
/// The source-authentication header (docs/wire-format.md defines every byte). It travels inside the
/// ESP payload (ESP Next Header 253) in front of the inner IP packet, or alone (control messages).
/// All integers are big-endian. This file is the only place that knows offsets.

#include "common/byte_order.hh"

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace msecgw::srcauth::wire {

inline constexpr uint8_t esp_next_header = 253; ///< RFC 3692 experimental protocol number
inline constexpr uint8_t version = 1;
inline constexpr uint8_t next_ipv4 = 4;
inline constexpr uint8_t next_ipv6 = 41;
inline constexpr uint8_t next_none = 59; ///< control messages carry no inner packet

enum class msg_type : uint8_t {
    tesla_data = 1,
    manifest_data = 2,
    signed_data = 3,
    tesla_bootstrap = 4,
    tesla_disclosure = 5,
    manifest = 6,
};
std::string_view to_string(msg_type t);

enum class sig_alg : uint8_t { ed25519 = 1, ecdsa_p256 = 2 };
inline constexpr uint8_t mac_gmac_aes128 = 1;

inline constexpr size_t key_len = 16;       ///< TESLA chain and MAC keys
inline constexpr size_t mac_len = 16;       ///< TESLA per-packet GMAC tag
inline constexpr size_t digest_len = 16;    ///< manifest entry: SHA-256 truncated
inline constexpr size_t sig_len = 64;       ///< Ed25519, or ECDSA P-256 as r || s

// Common header, every type.
inline constexpr size_t off_type = 0;       ///< u8: version << 4 | type
inline constexpr size_t off_next = 1;       ///< u8: next header (4, 41, 59)
inline constexpr size_t off_length = 2;     ///< u16: length of this header, inner packet excluded
inline constexpr size_t off_sender = 4;     ///< u32: sender id
inline constexpr size_t off_seq = 8;        ///< u64: sequence number (per sender and type family)
inline constexpr size_t common_len = 16;

// tesla_data: no disclosed key (keys travel in tesla_disclosure, one per interval), so that the
// header is 36 bytes and a full 1500-byte-MTU frame's ESP packet is not fragmented for it.
inline constexpr size_t td_interval = 16;   ///< u32 i
inline constexpr size_t td_mac = 20;        ///< GMAC(K'_i, sender||seq, header[0..20) || inner)
inline constexpr size_t tesla_data_len = 36;

// manifest_data: the common header alone.
inline constexpr size_t manifest_data_len = common_len;

// signed_data: a 20-byte header, the inner packet, then a 64-byte signature trailer over
// SHA-256(header[0..20) || inner), so the signed bytes are contiguous.
inline constexpr size_t sd_alg = 16;        ///< u8 sig_alg, then 3 zero bytes
inline constexpr size_t signed_data_len = 20;
inline constexpr size_t signed_trailer_len = sig_len;

// tesla_bootstrap (next header 59)
inline constexpr size_t tb_t0 = 16;         ///< u64 start of interval 0, sender clock, ns
inline constexpr size_t tb_interval_ns = 24;///< u64 interval length, ns
inline constexpr size_t tb_delay = 32;      ///< u32 disclosure delay d, intervals
inline constexpr size_t tb_chain_len = 36;  ///< u32 intervals in the chain (last usable = chain_len - 1)
inline constexpr size_t tb_commit = 40;     ///< u32 c, interval of the committed key
inline constexpr size_t tb_sig_alg = 44;    ///< u8
inline constexpr size_t tb_mac_alg = 45;    ///< u8 (1 = AES-128-GMAC)
inline constexpr size_t tb_reserved = 46;   ///< u16 zero
inline constexpr size_t tb_key = 48;        ///< K_c
inline constexpr size_t tb_sig = 64;        ///< signature over SHA-256(header[0..64))
inline constexpr size_t tesla_bootstrap_len = 128;

// tesla_disclosure (next header 59)
inline constexpr size_t tk_interval = 16;   ///< u32 j
inline constexpr size_t tk_reserved = 20;   ///< 12 zero bytes
inline constexpr size_t tk_key = 32;        ///< K_j
inline constexpr size_t tesla_disclosure_len = 48;

// manifest (next header 59)
inline constexpr size_t mf_first = 16;      ///< u64 sequence number of the first covered packet
inline constexpr size_t mf_count = 24;      ///< u16 n, digests that follow
inline constexpr size_t mf_sig_alg = 26;    ///< u8
inline constexpr size_t mf_digest_len = 27; ///< u8, 16
inline constexpr size_t mf_reserved = 28;   ///< u32 zero
inline constexpr size_t mf_digests = 32;    ///< n x 16 bytes, then the signature over SHA-256(header[0..32+16n))
inline constexpr size_t manifest_len(size_t n) { return mf_digests + n * digest_len + sig_len; }
inline constexpr size_t manifest_max_digests = (0xffff - mf_digests - sig_len) / digest_len;

inline uint64_t load_be64(const uint8_t* p)
{
    return uint64_t(load_be32(p)) << 32 | load_be32(p + 4);
}

inline void store_be64(uint8_t* p, uint64_t v)
{
    store_be32(p, uint32_t(v >> 32));
    store_be32(p + 4, uint32_t(v));
}

inline void put_common(uint8_t* h, msg_type t, uint8_t next, uint16_t length, uint32_t sender, uint64_t seq)
{
    h[off_type] = uint8_t(version << 4 | uint8_t(t));
    h[off_next] = next;
    store_be16(h + off_length, length);
    store_be32(h + off_sender, sender);
    store_be64(h + off_seq, seq);
}

/// The common header of a received message, checked against the buffer it came in.
struct common {
    msg_type type;
    uint8_t next;
    uint16_t length;
    uint32_t sender;
    uint64_t seq;
};

/// Parses the common header; false if the buffer is shorter than the header it announces, the
/// version is not 1, or the length is wrong for the type.
bool parse_common(const uint8_t* p, size_t len, common& out);

} // namespace msecgw::srcauth::wire
