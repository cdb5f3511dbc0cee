#include "srcauth/tesla_chain.hh"

#include <openssl/rand.h>

#include <cmath>

namespace msecgw::srcauth {

namespace {

void chain_prf(crypto::engine& e, const chain_key& in, uint8_t label, chain_key& out)
{
    crypto::hmac_sha256_key k;
    (void)crypto::make_hmac_sha256_key(e, in.view(), k); // 16-byte key: cannot fail
    const crypto::hmac_sha256_op op{&k, &label, 1, out.data(), uint8_t(wire::key_len)};
    crypto::hmac_sha256_burst(e, std::span(&op, 1));
    crypto::clear_hmac_sha256_key(k);
}

} // namespace

void chain_f(crypto::engine& e, const chain_key& in, chain_key& out)
{
    chain_prf(e, in, 0x00, out);
}

void chain_f_prime(crypto::engine& e, const chain_key& in, chain_key& out)
{
    chain_prf(e, in, 0x01, out);
}

result<key_chain> key_chain::generate(crypto::engine& e, uint32_t length)
{
    chain_key last;
    if (RAND_priv_bytes(last.data(), int(wire::key_len)) != 1) {
        return error{errc::unsupported, "no random bytes for the TESLA chain"};
    }
    return from_last(e, length, last);
}

result<key_chain> key_chain::from_last(crypto::engine& e, uint32_t length, const chain_key& last)
{
    if (length < 2 || length == UINT32_MAX) {
        return error{errc::config_bad_value, "TESLA chain length must be 2 .. 2^32-2"};
    }
    key_chain c;
    c._n = length;
    c._s = std::max<uint32_t>(1, uint32_t(std::ceil(std::sqrt(double(length)))));
    const uint32_t segments = (length + c._s - 1) / c._s;
    c._checkpoints = secret_array<chain_key>(segments + 1);
    c._seg[0] = secret_array<chain_key>(c._s);
    c._seg[1] = secret_array<chain_key>(c._s);
    chain_key k = last;
    c._checkpoints[segments] = last;
    for (uint32_t i = length - 1;; --i) {
        if (i % c._s == 0) {
            c._checkpoints[i / c._s] = k;
        }
        if (i == 0) {
            break;
        }
        chain_f(e, k, k);
    }
    return c;
}

void key_chain::fill_segment(crypto::engine& e, uint32_t seg, secret_array<chain_key>& into)
{
    const uint32_t first = seg * _s;
    const uint32_t end = std::min(first + _s, _n); // one past the segment's last interval
    const uint32_t segments = (_n + _s - 1) / _s;
    // Start from K_end (the next checkpoint) or, for the last segment, from K_{N-1} itself.
    chain_key k = end < _n ? _checkpoints[seg + 1] : _checkpoints[segments];
    uint32_t i = end < _n ? end : _n - 1;
    if (i == end - 1) {
        into[i - first] = k;
    }
    while (i > first) {
        chain_f(e, k, k);
        --i;
        into[i - first] = k;
    }
}

const chain_key& key_chain::key(crypto::engine& e, uint32_t i)
{
    const uint32_t seg = i / _s;
    for (int b = 0; b < 2; ++b) {
        if (_seg_id[b] == seg) {
            return _seg[b][i - seg * _s];
        }
    }
    // Replace the buffer not holding seg - 1, so K_{i-d} of the previous segment stays cached.
    uint32_t slot = _next_slot;
    if (_seg_id[slot] == seg - 1) {
        slot ^= 1;
    }
    fill_segment(e, seg, _seg[slot]);
    _seg_id[slot] = seg;
    _next_slot = slot ^ 1;
    return _seg[slot][i - seg * _s];
}

} // namespace msecgw::srcauth
