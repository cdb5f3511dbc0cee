/// seal_burst / open_burst: one direct ipsec-mb GCM call (IMB_AES128/256_GCM_ENC/DEC) per op,
/// over the whole burst. Measured in the gateway at every frame size against ipsec-mb 1.3's burst
/// job API (IMB_SUBMIT_BURST), which this file used for payloads over 256 B until session 6: the
/// direct call gave more packets per CPU second at 512 and 1420 B in both directions
/// (docs/performance.md, "lib/crypto: direct calls for every payload"), though a crypto-only loop
/// had favoured jobs there: the job fill and completion walk cost more in the gateway than the
/// loop showed.

#include "crypto/crypto.hh"
#include "crypto/imb_backend.hh"

#include <openssl/crypto.h>

#include <algorithm>
#include <cstring>

namespace msecgw::crypto {

namespace {

enum class direction : uint8_t { seal, open };

/// Everything ipsec-mb's argument checks would reject is rejected here first, per op, so one
/// bad op cannot fail the others.
bool op_valid(const gcm_op& op, cpu_arch arch)
{
    return op.key != nullptr && op.key->arch == arch &&
           (op.key->alg == aead::aes_128_gcm || op.key->alg == aead::aes_256_gcm) &&
           (op.data != nullptr || op.len == 0) && op.iv8 != nullptr && op.aad != nullptr &&
           op.tag != nullptr;
}

/// Per-chunk scratch on the worker's stack; index i is the op's position in the chunk.
struct chunk_scratch {
    std::array<uint16_t, max_burst> valid; ///< the valid ops, in order
    alignas(16) std::array<std::array<uint8_t, 16>, max_burst> nonce; ///< salt || iv8 (12 used)
};

/// Read pass: validate every op and build its nonce. Returns how many ops are valid.
uint32_t prepare(std::span<const gcm_op> ops, cpu_arch arch, chunk_scratch& s, std::span<uint8_t> ok)
{
    uint32_t n = 0;
    for (uint16_t i = 0; i < ops.size(); ++i) {
        ok[i] = 0;
        const gcm_op& op = ops[i];
        if (!op_valid(op, arch)) {
            continue;
        }
        std::memcpy(s.nonce[i].data(), op.key->salt.data(), gcm_salt_len);
        std::memcpy(s.nonce[i].data() + gcm_salt_len, op.iv8, gcm_iv_len);
        s.valid[n++] = i;
    }
    return n;
}

/// Seals, or opens (comparing tags in constant time, never exiting early), the valid ops of one
/// chunk (at most max_burst): the nonces of the whole chunk first, then the GCM calls back to back.
template <direction Dir>
uint32_t run_chunk(IMB_MGR* m, cpu_arch arch, std::span<const gcm_op> ops, std::span<uint8_t> ok)
{
    chunk_scratch s;
    const uint32_t n = prepare(ops, arch, s, ok);
    gcm_context_data ctx;
    alignas(16) std::array<uint8_t, gcm_icv_len> tag{}; // open: the computed tag
    uint32_t good = 0;
    for (uint32_t k = 0; k < n; ++k) {
        const uint16_t i = s.valid[k];
        const gcm_op& op = ops[i];
        uint8_t* data = op.data != nullptr ? op.data : s.nonce[i].data(); // len 0: never read or written
        if constexpr (Dir == direction::seal) {
            imb::gcm_direct<true>(m, op.key->alg, key_data(*op.key), &ctx, data, op.len, s.nonce[i].data(), op.aad,
                                  op.tag);
            ok[i] = 1;
        } else {
            imb::gcm_direct<false>(m, op.key->alg, key_data(*op.key), &ctx, data, op.len, s.nonce[i].data(), op.aad,
                                   tag.data());
            ok[i] = static_cast<uint8_t>(CRYPTO_memcmp(tag.data(), op.tag, gcm_icv_len) == 0);
        }
        good += ok[i];
    }
    // The last keystream block and GHASH state; open: a valid tag for the last (maybe forged) packet.
    OPENSSL_cleanse(&ctx, sizeof(ctx));
    if constexpr (Dir == direction::open) {
        OPENSSL_cleanse(tag.data(), tag.size());
    }
    return good;
}

template <direction Dir>
uint32_t run(engine& e, std::span<const gcm_op> ops, std::span<uint8_t> ok)
{
    ops = ops.first(std::min(ops.size(), ok.size()));
    IMB_MGR* m = engine_access::mgr(e);
    if (m == nullptr) {
        std::fill_n(ok.begin(), ops.size(), uint8_t{0});
        return 0;
    }
    uint32_t good = 0;
    for (size_t off = 0; off < ops.size(); off += max_burst) {
        const size_t n = std::min<size_t>(max_burst, ops.size() - off);
        good += run_chunk<Dir>(m, e.arch_id(), ops.subspan(off, n), ok.subspan(off, n));
    }
    return good;
}

} // namespace

uint32_t seal_burst(engine& e, std::span<const gcm_op> ops, std::span<uint8_t> ok)
{
    return run<direction::seal>(e, ops, ok);
}

uint32_t open_burst(engine& e, std::span<const gcm_op> ops, std::span<uint8_t> ok)
{
    return run<direction::open>(e, ops, ok);
}

} // namespace msecgw::crypto
