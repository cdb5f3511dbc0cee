#pragma once
/// Hashes and MACs on Intel ipsec-mb for source authentication (lib/srcauth): SHA-256 and
/// HMAC-SHA256 through the multi-buffer job API, AES-128-GMAC through the direct GHASH kernels.
///
/// Same threading model as crypto.hh: each call uses one engine owned by the calling lcore and
/// does not allocate, lock, make system calls or throw. Keys are plain data, wiped by their owner.

#include "crypto/crypto.hh"

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace msecgw::crypto {

inline constexpr size_t sha256_len = 32;
inline constexpr size_t gmac_key_len = 16; ///< AES-128
inline constexpr size_t gmac_iv_len = 12;
inline constexpr size_t gmac_tag_len = 16;

/// One message to hash: data[0..len) -> digest (32 bytes).
struct sha256_op {
    const uint8_t* data;
    uint32_t len;
    uint8_t* digest;
};

/// SHA-256 of every op with ipsec-mb's multi-buffer jobs (IMB_AUTH_SHA_256), in chunks of
/// max_burst. Returns how many completed (an op with a null pointer is skipped, digest untouched).
uint32_t sha256_burst(engine& e, std::span<const sha256_op> ops);

/// SHA-256 of one message with the direct single-buffer call (IMB_SHA256), for comparison.
void sha256_one(engine& e, const uint8_t* data, uint32_t len, uint8_t* digest);

/// HMAC-SHA256 key as ipsec-mb wants it: the SHA-256 states after (K xor ipad) and (K xor opad).
struct hmac_sha256_key {
    alignas(16) std::array<uint8_t, sha256_len> ipad_state;
    alignas(16) std::array<uint8_t, sha256_len> opad_state;
};

/// Prepares an HMAC key of at most 64 bytes (longer keys are not needed here: errc::unsupported).
result<void> make_hmac_sha256_key(const engine& e, std::span<const uint8_t> key, hmac_sha256_key& out);
void clear_hmac_sha256_key(hmac_sha256_key& k);

/// HMAC-SHA256(key, data[0..len)) truncated to mac_len (1..32) bytes. len >= 1: ipsec-mb refuses
/// an empty message (such an op is skipped).
struct hmac_sha256_op {
    const hmac_sha256_key* key;
    const uint8_t* data;
    uint32_t len;
    uint8_t* mac;
    uint8_t mac_len;
};

/// Multi-buffer HMAC-SHA256 jobs (IMB_AUTH_HMAC_SHA_256). Returns how many completed.
uint32_t hmac_sha256_burst(engine& e, std::span<const hmac_sha256_op> ops);

/// AES-128-GMAC key: the GCM key schedule and GHASH powers (gcm_key with a zero salt).
result<void> make_gmac_key(const engine& e, std::span<const uint8_t, gmac_key_len> key, gcm_key& out);

/// GMAC(key, iv, head || body) with a 16-byte tag. Unless body follows head immediately, head_len
/// must be a multiple of 16 (ipsec-mb's GMAC update keeps no partial block between calls); body
/// may have any length.
struct gmac_op {
    const gcm_key* key;
    const uint8_t* iv;   ///< 12 bytes
    const uint8_t* head;
    uint32_t head_len;
    const uint8_t* body;
    uint32_t body_len;
    uint8_t* tag;        ///< 16 bytes written
};

/// When body follows head immediately (or one of them is empty) the message is hashed in one
/// ipsec-mb GCM call (empty plaintext, message as AAD), ~15% faster at 1420 B than the
/// init/update/finalize calls used otherwise; the tag is the same.
/// Computes every op's tag. An op whose key is wiped, of another arch or not AES-128, or whose
/// separate head is not a multiple of 16 bytes, is skipped (ok[i] = 0). Returns how many were
/// computed.
uint32_t gmac_burst(engine& e, std::span<const gmac_op> ops, std::span<uint8_t> ok);

/// For perf/srcauth_bench only (the data path does not use them): the TESLA MAC alternatives
/// measured against gmac_burst, on ipsec-mb's job API: AES-128-GMAC (key gk) and Poly1305 (one
/// 32-byte key for all: as a one-time authenticator Poly1305 would need a fresh key per message,
/// e.g. Poly1305-AES, so this is a lower bound of its cost). Each op's body only; returns how many
/// completed.
enum class job_mac : uint8_t { aes128_gmac, poly1305 };
uint32_t job_mac_burst(engine& e, job_mac kind, const gcm_key& gk, std::span<const uint8_t, 32> poly_key,
                       std::span<const gmac_op> ops);

} // namespace msecgw::crypto
