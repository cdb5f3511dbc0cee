/// SHA-256 / HMAC-SHA256 on ipsec-mb's multi-buffer job API and AES-128-GMAC on its direct
/// GHASH calls (see auth.hh). Jobs are submitted one by one and drained at the end of each chunk,
/// so the lanes of the multi-buffer kernels fill with the ops of one burst.

#include "crypto/auth.hh"
#include "crypto/imb_backend.hh"

#include <openssl/crypto.h>

#include <cstring>

namespace msecgw::crypto {

namespace {

constexpr size_t sha256_block = 64;

/// Scratch for one chunk of HMAC ops: ipsec-mb writes the full 32-byte MAC here first.
struct mac_scratch {
    alignas(16) std::array<std::array<uint8_t, sha256_len>, max_burst> mac;
};

/// Fields every hash-only job shares.
void fill_hash_job(IMB_JOB* j, const uint8_t* data, uint32_t len, uint8_t* out, uint16_t index)
{
    j->cipher_mode = IMB_CIPHER_NULL;
    j->cipher_direction = IMB_DIR_ENCRYPT;
    j->chain_order = IMB_ORDER_HASH_CIPHER;
    j->src = data;
    j->dst = const_cast<uint8_t*>(data); // NULL cipher over 0 bytes: nothing is written
    j->cipher_start_src_offset_in_bytes = 0;
    j->msg_len_to_cipher_in_bytes = 0;
    j->hash_start_src_offset_in_bytes = 0;
    j->msg_len_to_hash_in_bytes = len;
    j->auth_tag_output = out;
    j->auth_tag_output_len_in_bytes = sha256_len;
    j->iv = nullptr;
    j->iv_len_in_bytes = 0;
    j->user_data = reinterpret_cast<void*>(static_cast<uintptr_t>(index));
}

/// Submits `n` jobs built by `fill(job, i)` for i in [0, n) and drains them; `done(i)` is called for
/// every job that completed. Jobs whose index `fill` rejects (returns false) are not submitted.
template <class Fill, class Done>
uint32_t run_jobs(IMB_MGR* m, uint32_t n, Fill fill, Done done)
{
    uint32_t good = 0;
    auto complete = [&](IMB_JOB* j) {
        if (j != nullptr && j->status == IMB_STATUS_COMPLETED) {
            done(static_cast<uint32_t>(reinterpret_cast<uintptr_t>(j->user_data)));
            ++good;
        }
    };
    for (uint32_t i = 0; i < n; ++i) {
        IMB_JOB* j = imb::get_next_job(m);
        if (!fill(j, i)) {
            continue;
        }
        complete(imb::submit_job(m));
    }
    while (IMB_JOB* j = imb::flush_job(m)) {
        complete(j);
    }
    return good;
}

/// run_jobs over ops in chunks of max_burst; fill(job, op, index in chunk), done(op, index in chunk).
template <class Op, class Fill, class Done>
uint32_t run_chunked(engine& e, std::span<const Op> ops, Fill fill, Done done)
{
    IMB_MGR* m = engine_access::mgr(e);
    if (m == nullptr) {
        return 0;
    }
    uint32_t good = 0;
    for (size_t base = 0; base < ops.size(); base += max_burst) {
        const auto chunk = ops.subspan(base, std::min<size_t>(max_burst, ops.size() - base));
        good += run_jobs(
            m, uint32_t(chunk.size()), [&](IMB_JOB* j, uint32_t i) { return fill(j, chunk[i], i); },
            [&](uint32_t i) { done(chunk[i], i); });
    }
    return good;
}

} // namespace

uint32_t sha256_burst(engine& e, std::span<const sha256_op> ops)
{
    return run_chunked(
        e, ops,
        [](IMB_JOB* j, const sha256_op& op, uint32_t i) {
            if (op.digest == nullptr || (op.data == nullptr && op.len != 0)) {
                return false;
            }
            // An empty message may come with a null pointer (an empty vector's data()): ipsec-mb
            // reads nothing then, but its checked submit (builds without NDEBUG) refuses a null
            // src with IMB_ERR_JOB_NULL_SRC, so such an op would hash in release and fail in debug.
            static const uint8_t empty_message = 0;
            fill_hash_job(j, op.len == 0 ? &empty_message : op.data, op.len, op.digest, uint16_t(i));
            j->hash_alg = IMB_AUTH_SHA_256;
            return true;
        },
        [](const sha256_op&, uint32_t) {});
}

void sha256_one(engine& e, const uint8_t* data, uint32_t len, uint8_t* digest)
{
    imb::sha256(engine_access::mgr(e), data, len, digest);
}

result<void> make_hmac_sha256_key(const engine& e, std::span<const uint8_t> key, hmac_sha256_key& out)
{
    clear_hmac_sha256_key(out);
    IMB_MGR* m = engine_access::mgr(e);
    if (m == nullptr || key.size() > sha256_block) {
        return error{errc::unsupported, "HMAC-SHA256 key longer than one block or no engine"};
    }
    std::array<uint8_t, sha256_block> block{};
    for (auto [pad, state] : {std::pair{uint8_t(0x36), out.ipad_state.data()}, std::pair{uint8_t(0x5c), out.opad_state.data()}}) {
        block.fill(pad);
        for (size_t i = 0; i < key.size(); ++i) {
            block[i] ^= key[i];
        }
        imb::sha256_one_block(m, block.data(), state);
    }
    OPENSSL_cleanse(block.data(), block.size());
    return {};
}

void clear_hmac_sha256_key(hmac_sha256_key& k)
{
    OPENSSL_cleanse(&k, sizeof(k));
}

uint32_t hmac_sha256_burst(engine& e, std::span<const hmac_sha256_op> ops)
{
    mac_scratch s;
    const uint32_t good = run_chunked(
        e, ops,
        [&](IMB_JOB* j, const hmac_sha256_op& op, uint32_t i) {
            if (op.key == nullptr || op.mac == nullptr || op.mac_len == 0 || op.mac_len > sha256_len || op.data == nullptr ||
                op.len == 0) {
                return false;
            }
            fill_hash_job(j, op.data, op.len, s.mac[i].data(), uint16_t(i));
            j->hash_alg = IMB_AUTH_HMAC_SHA_256;
            j->u.HMAC._hashed_auth_key_xor_ipad = op.key->ipad_state.data();
            j->u.HMAC._hashed_auth_key_xor_opad = op.key->opad_state.data();
            return true;
        },
        [&](const hmac_sha256_op& op, uint32_t i) { std::memcpy(op.mac, s.mac[i].data(), op.mac_len); });
    OPENSSL_cleanse(&s, sizeof(s));
    return good;
}

result<void> make_gmac_key(const engine& e, std::span<const uint8_t, gmac_key_len> key, gcm_key& out)
{
    std::array<uint8_t, gmac_key_len + gcm_salt_len> material{}; // GMAC never uses the salt
    std::memcpy(material.data(), key.data(), key.size());
    result<void> r = make_gcm_key(aead::aes_128_gcm, material, out, e);
    OPENSSL_cleanse(material.data(), material.size());
    return r;
}

uint32_t gmac_burst(engine& e, std::span<const gmac_op> ops, std::span<uint8_t> ok)
{
    IMB_MGR* m = engine_access::mgr(e);
    const size_t n = std::min(ops.size(), ok.size());
    uint32_t good = 0;
    gcm_context_data ctx;
    for (size_t i = 0; i < n; ++i) {
        const gmac_op& op = ops[i];
        ok[i] = 0;
        if (m == nullptr || op.key == nullptr || op.key->arch != e.arch_id() || op.key->alg != aead::aes_128_gcm ||
            op.iv == nullptr || op.tag == nullptr || (op.head == nullptr && op.head_len != 0) ||
            (op.body == nullptr && op.body_len != 0)) {
            continue;
        }
        const gcm_key_data* k = key_data(*op.key);
        const bool contiguous = op.head_len == 0 || op.body_len == 0 || op.head + op.head_len == op.body;
        if (!contiguous && op.head_len % 16 != 0) { // ipsec-mb's update takes whole blocks but for the last
            continue;
        }
        if (contiguous) {
            const uint8_t* msg = op.head_len != 0 ? op.head : op.body;
            imb::gmac128_one_call(m, k, &ctx, op.iv, msg, uint64_t(op.head_len) + op.body_len, op.tag, gmac_tag_len);
            ok[i] = 1;
            ++good;
            continue;
        }
        imb::gmac128_init(m, k, &ctx, op.iv, gmac_iv_len);
        if (op.head_len != 0) {
            imb::gmac128_update(m, k, &ctx, op.head, op.head_len);
        }
        if (op.body_len != 0) {
            imb::gmac128_update(m, k, &ctx, op.body, op.body_len);
        }
        imb::gmac128_finalize(m, k, &ctx, op.tag, gmac_tag_len);
        ok[i] = 1;
        ++good;
    }
    return good;
}

uint32_t job_mac_burst(engine& e, job_mac kind, const gcm_key& gk, std::span<const uint8_t, 32> poly_key,
                       std::span<const gmac_op> ops)
{
    if (gk.arch != e.arch_id() || gk.alg != aead::aes_128_gcm) {
        return 0;
    }
    const gcm_key_data* k = key_data(gk);
    return run_chunked(
        e, ops,
        [&](IMB_JOB* j, const gmac_op& op, uint32_t i) {
            if (op.tag == nullptr || op.body == nullptr || op.body_len == 0) {
                return false;
            }
            fill_hash_job(j, op.body, op.body_len, op.tag, uint16_t(i));
            j->auth_tag_output_len_in_bytes = gmac_tag_len;
            if (kind == job_mac::aes128_gmac) {
                j->hash_alg = IMB_AUTH_AES_GMAC_128;
                j->u.GMAC._key = k;
                j->u.GMAC._iv = op.iv;
                j->u.GMAC.iv_len_in_bytes = gmac_iv_len;
            } else {
                j->hash_alg = IMB_AUTH_POLY1305;
                j->u.POLY1305._key = poly_key.data();
            }
            return true;
        },
        [](const gmac_op&, uint32_t) {});
}

} // namespace msecgw::crypto
