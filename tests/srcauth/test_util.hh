#pragma once
// Helpers for the lib/srcauth tests: fresh signing keys as PEM, packet buffers with room for a
// header in front and a trailer behind, and an ipsec-mb engine.

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "crypto/auth.hh"
#include "srcauth/outcome.hh"
#include "srcauth/signature.hh"
#include "srcauth/tesla.hh"

namespace msecgw::srcauth::test {

using bytes = std::vector<uint8_t>;

/// A new private key (Ed25519 or P-256) as PKCS#8 PEM.
inline std::string new_private_pem(wire::sig_alg alg)
{
    return signer::generate(alg).value().private_pem();
}

struct key_pair {
    signer priv;
    std::string public_pem;
    sig_verifier anchor() const { return std::move(sig_verifier::from_pem(public_pem).value()); }
};

inline key_pair new_key_pair(wire::sig_alg alg)
{
    auto s = signer::from_pem(new_private_pem(alg));
    EXPECT_TRUE(s.ok());
    std::string pub = s->public_pem();
    return key_pair{std::move(s.value()), pub};
}

inline crypto::engine new_engine()
{
    auto e = crypto::engine::create();
    EXPECT_TRUE(e.ok());
    return std::move(e.value());
}

inline std::mt19937_64& rng()
{
    static std::mt19937_64 r(0x5eed);
    return r;
}

inline bytes random_bytes(size_t n)
{
    bytes b(n);
    for (auto& x : b) {
        x = uint8_t(rng()());
    }
    return b;
}

/// One packet in its own buffer: `head` bytes of header room, an IPv4-looking inner packet of
/// `inner` bytes, 64 bytes of trailer room.
struct test_packet {
    bytes buf;
    size_t head;
    uint32_t inner;
    uint8_t* hdr() { return buf.data(); }
    tag_job job() { return tag_job{buf.data(), inner, wire::next_ipv4}; }
    /// The view a verifier gets: header + inner (+ trailer for signed_data).
    packet_view view(size_t trailer = 0) { return packet_view{buf.data(), uint32_t(head + inner + trailer), this}; }
};

inline test_packet make_packet(size_t head, uint32_t inner)
{
    test_packet p{bytes(head + inner + wire::sig_len), head, inner};
    bytes payload = random_bytes(inner);
    std::copy(payload.begin(), payload.end(), p.buf.begin() + long(head));
    if (inner > 0) {
        p.buf[head] = 0x45;
    }
    return p;
}

/// Counts settled decisions by verdict.
struct tally {
    size_t released = 0, dropped = 0;
    void add(std::span<const settled> s)
    {
        for (const auto& x : s) {
            (x.v == verdict::release ? released : dropped)++;
        }
    }
};

} // namespace msecgw::srcauth::test
