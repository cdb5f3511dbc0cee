#pragma once
/// The TESLA one-way key chain (RFC 4082 section 3): K_i = F(K_{i+1}), MAC key K'_i = F'(K_i), with
///   F(K)  = HMAC-SHA256(K, 0x00) truncated to 16 bytes
///   F'(K) = HMAC-SHA256(K, 0x01) truncated to 16 bytes
/// (RFC 4082 leaves F and F' to the profile; these are its PRF-with-distinct-inputs construction.)
/// Both run on ipsec-mb (no allocation), so a worker may walk the chain.
///
/// `key_chain` is the sender's side: it holds K_0..K_{N-1} as checkpoints every s = ceil(sqrt(N))
/// intervals plus the segments in use (memory O(sqrt N)); walking forward recomputes one segment of
/// s keys from the next checkpoint each s intervals.

#include "common/result.hh"
#include "crypto/auth.hh"
#include "srcauth/secret.hh"
#include "srcauth/wire.hh"

#include <cstdint>

namespace msecgw::srcauth {

using chain_key = secret_key<wire::key_len>;

/// out = F(in). in and out may alias.
void chain_f(crypto::engine& e, const chain_key& in, chain_key& out);
/// out = F'(in).
void chain_f_prime(crypto::engine& e, const chain_key& in, chain_key& out);

class key_chain {
public:
    /// Control core: a chain of `length` (>= 2) keys from a random K_{N-1}.
    static result<key_chain> generate(crypto::engine& e, uint32_t length);
    /// Tests: a chain from a given last key.
    static result<key_chain> from_last(crypto::engine& e, uint32_t length, const chain_key& last);

    uint32_t length() const { return _n; }
    /// K_i for 0 <= i < length. Cheap while i moves forward within or into the next segment;
    /// a jump recomputes one segment (at most s F evaluations). Keys of the current and previous
    /// segment stay available, so K_{i-d} is cheap for d <= s.
    const chain_key& key(crypto::engine& e, uint32_t i);

private:
    key_chain() = default;
    void fill_segment(crypto::engine& e, uint32_t seg, secret_array<chain_key>& into);
    uint32_t _n = 0;
    uint32_t _s = 0;
    secret_array<chain_key> _checkpoints; ///< K_{k s}; the last entry is K_{N-1}
    secret_array<chain_key> _seg[2];      ///< two segment buffers
    uint32_t _seg_id[2] = {UINT32_MAX, UINT32_MAX};
    uint32_t _next_slot = 0;
};

} // namespace msecgw::srcauth
