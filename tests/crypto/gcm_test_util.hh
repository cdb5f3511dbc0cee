#pragma once
/// Helpers for the lib/crypto tests: hex, the vector file, OpenSSL EVP as the independent
/// AES-GCM reference, and owned ESP test packets.

#include "crypto/crypto.hh"

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace msecgw::crypto::test {

using bytes = std::vector<uint8_t>;

/// Hex to bytes; spaces are skipped. An odd digit count or a non-hex character yields {}.
bytes from_hex(std::string_view hex);
std::string to_hex(std::span<const uint8_t> b);

/// `name = hex` lines, '#' comments. Empty map if the file cannot be read.
std::map<std::string, bytes> load_vector_file(const std::string& path);

/// Path of a file under tests/vectors: the first positional command-line argument if one was
/// given (meson passes it), else $MSECGW_TEST_VECTORS/<file>, else tests/vectors/<file>.
std::string vector_path(std::string_view file);

/// Seeded from $MSECGW_TEST_SEED if set, else a fixed value; the seed is printed.
std::mt19937_64& rng();
bytes random_bytes(size_t n);

inline size_t key_len(aead a)
{
    return a == aead::aes_128_gcm ? 16 : 32;
}

/// OpenSSL EVP AES-GCM with the RFC 4106 nonce salt||iv8 (keymat = key || salt).
struct ossl_sealed {
    bytes ct;
    std::array<uint8_t, gcm_icv_len> tag{};
};
ossl_sealed ossl_seal(aead a, std::span<const uint8_t> keymat, std::span<const uint8_t> iv8,
                      std::span<const uint8_t> aad, std::span<const uint8_t> pt);
/// True iff the tag verifies; pt receives the plaintext.
bool ossl_open(aead a, std::span<const uint8_t> keymat, std::span<const uint8_t> iv8,
               std::span<const uint8_t> aad, std::span<const uint8_t> ct,
               std::span<const uint8_t> tag, bytes& pt);

/// A key built by make_gcm_key on the heap (gcm_key is 1088 bytes, 64-aligned).
struct owned_key {
    aead alg;
    bytes keymat;
    std::unique_ptr<gcm_key> key;
};
/// Random keying material for `a`, expanded with `e`. key is null if make_gcm_key failed.
owned_key random_key(aead a, const engine& e);
owned_key expand_key(aead a, bytes keymat, const engine& e);

/// One ESP payload with its own buffers; op() views them.
struct esp_packet {
    const owned_key* key = nullptr;
    std::array<uint8_t, gcm_iv_len> iv{};
    std::array<uint8_t, gcm_aad_len> aad{};
    bytes data;
    std::array<uint8_t, gcm_icv_len> tag{};

    gcm_op op();
};
/// Random IV, AAD and `len` bytes of payload under `key`.
esp_packet random_packet(const owned_key& key, size_t len);

std::vector<gcm_op> ops_of(std::vector<esp_packet>& pkts);

} // namespace msecgw::crypto::test
