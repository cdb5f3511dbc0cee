#pragma once
/// Internal to lib/crypto: the only place that includes intel-ipsec-mb.h. Every IMB_* macro we
/// use is wrapped here once as an inline function (STYLE.md: no function-like macros elsewhere).

#include "crypto/crypto.hh"

#include <cstdint>

// Keep the library's pre-0.55 compatibility macros (GCM, DES, CBC, ...) out of our code.
#define NO_COMPAT_IMB_API_053
#include <intel-ipsec-mb.h>

namespace msecgw::crypto {

// intel-ipsec-mb.h adds aligned(64) to gcm_key_data only `#ifdef LINUX`, which applications
// do not define, so here its alignment is 1 and its size 1008: our storage supplies the 64.
static_assert(sizeof(gcm_key_data) <= gcm_expanded_len);
static_assert(alignof(gcm_key) >= 64 && alignof(gcm_key_data) <= 64);
static_assert(gcm_salt_len + gcm_iv_len == IMB_GCM_IV_DATA_LEN);

/// Grants lib/crypto code access to the engine's manager without a public accessor.
struct engine_access {
    static IMB_MGR* mgr(const engine& e) { return e._mgr; }
    static engine make(IMB_MGR* m, cpu_arch a) { return engine(m, a); }
};

inline gcm_key_data* key_data(gcm_key& k)
{
    return reinterpret_cast<gcm_key_data*>(k.expanded.data());
}

inline const gcm_key_data* key_data(const gcm_key& k)
{
    return reinterpret_cast<const gcm_key_data*>(k.expanded.data());
}

namespace imb {

/// Release builds (NDEBUG) skip ipsec-mb's per-job argument checks: the job's builder validates
/// every field the checks look at first (STYLE.md "_NOCHECK only behind validation").
#ifdef NDEBUG
inline constexpr bool checked_submit = false;
#else
inline constexpr bool checked_submit = true;
#endif

inline void aes128_gcm_pre(IMB_MGR* m, const uint8_t* key, gcm_key_data* out)
{
    IMB_AES128_GCM_PRE(m, key, out);
}

inline void aes256_gcm_pre(IMB_MGR* m, const uint8_t* key, gcm_key_data* out)
{
    IMB_AES256_GCM_PRE(m, key, out);
}

/// Direct (one-call, synchronous) GCM encryption or decryption of `len` bytes in place with a
/// 12-byte nonce; writes the (computed) tag to `tag`. Every pointer valid (`data` too when
/// `len` is 0): the caller validates.
template <bool Encrypt>
inline void gcm_direct(IMB_MGR* m, aead alg, const gcm_key_data* key, gcm_context_data* ctx, uint8_t* data,
                       uint64_t len, const uint8_t* nonce12, const uint8_t* aad, uint8_t* tag)
{
    const bool k128 = alg == aead::aes_128_gcm;
    if constexpr (Encrypt) {
        (k128 ? m->gcm128_enc : m->gcm256_enc)(key, ctx, data, data, len, nonce12, aad, gcm_aad_len, tag, gcm_icv_len);
    } else {
        (k128 ? m->gcm128_dec : m->gcm256_dec)(key, ctx, data, data, len, nonce12, aad, gcm_aad_len, tag, gcm_icv_len);
    }
}

/// Classic job API (one job at a time; multi-buffer algorithms fill their lanes across calls).
inline IMB_JOB* get_next_job(IMB_MGR* m)
{
    return IMB_GET_NEXT_JOB(m);
}

/// Submits the job get_next_job returned; returns a completed job or null.
inline IMB_JOB* submit_job(IMB_MGR* m)
{
    if constexpr (checked_submit) {
        return IMB_SUBMIT_JOB(m);
    } else {
        return IMB_SUBMIT_JOB_NOCHECK(m);
    }
}

/// Completes the oldest outstanding job; null when none is left.
inline IMB_JOB* flush_job(IMB_MGR* m)
{
    return IMB_FLUSH_JOB(m);
}

inline void sha256_one_block(IMB_MGR* m, const void* block64, void* state32)
{
    IMB_SHA256_ONE_BLOCK(m, block64, state32);
}

inline void sha256(IMB_MGR* m, const void* data, uint64_t len, void* digest32)
{
    IMB_SHA256(m, data, len, digest32);
}

inline void gmac128_init(IMB_MGR* m, const gcm_key_data* key, gcm_context_data* ctx, const uint8_t* iv, uint64_t iv_len)
{
    IMB_AES128_GMAC_INIT(m, key, ctx, iv, iv_len);
}

inline void gmac128_update(IMB_MGR* m, const gcm_key_data* key, gcm_context_data* ctx, const uint8_t* data, uint64_t len)
{
    IMB_AES128_GMAC_UPDATE(m, key, ctx, data, len);
}

inline void gmac128_finalize(IMB_MGR* m, const gcm_key_data* key, gcm_context_data* ctx, uint8_t* tag, uint64_t tag_len)
{
    IMB_AES128_GMAC_FINALIZE(m, key, ctx, tag, tag_len);
}

/// AES-128-GMAC of one contiguous message in one call: GCM encryption of an empty plaintext with
/// the message as AAD (SP 800-38D defines GMAC so). Faster here than init/update/finalize: the
/// one-call AAD hashing of the VAES code path runs 16 blocks at a time.
inline void gmac128_one_call(IMB_MGR* m, const gcm_key_data* key, gcm_context_data* ctx, const uint8_t* iv,
                             const uint8_t* data, uint64_t len, uint8_t* tag, uint64_t tag_len)
{
    IMB_AES128_GCM_ENC(m, key, ctx, nullptr, nullptr, 0, iv, data, len, tag, tag_len);
}

} // namespace imb
} // namespace msecgw::crypto
