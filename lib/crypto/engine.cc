#include "crypto/crypto.hh"
#include "crypto/imb_backend.hh"

#include <openssl/crypto.h>

#include <string>
#include <utility>

namespace msecgw::crypto {

namespace {

struct arch_row {
    cpu_arch arch;
    IMB_ARCH imb;
    uint64_t cpu_flags; ///< IMB_CPUFLAGS_* the code path needs
    void (*init)(IMB_MGR*);
};

// noaesni has no row: init_mb_mgr_sse_no_aesni is not exported by Debian's 1.3 header.
constexpr arch_row arch_table[] = {
    {cpu_arch::sse, IMB_ARCH_SSE, IMB_CPUFLAGS_SSE, init_mb_mgr_sse},
    {cpu_arch::avx, IMB_ARCH_AVX, IMB_CPUFLAGS_AVX, init_mb_mgr_avx},
    {cpu_arch::avx2, IMB_ARCH_AVX2, IMB_CPUFLAGS_AVX2, init_mb_mgr_avx2},
    {cpu_arch::avx512, IMB_ARCH_AVX512, IMB_CPUFLAGS_AVX512, init_mb_mgr_avx512},
};

error imb_error(std::string what)
{
    return error{errc::unsupported, "ipsec-mb: " + std::move(what)};
}

/// A manager whose self-test (if the build has one) did not pass must not be used.
bool self_test_failed(const IMB_MGR* m)
{
    return (m->features & IMB_FEATURE_SELF_TEST) != 0 &&
           (m->features & IMB_FEATURE_SELF_TEST_PASS) == 0;
}

result<engine> finish_init(IMB_MGR* m, cpu_arch arch)
{
    if (const int err = imb_get_errno(m); err != 0) {
        free_mb_mgr(m);
        return imb_error(std::string("init failed: ") + imb_get_strerror(err));
    }
    if (self_test_failed(m)) {
        free_mb_mgr(m);
        return imb_error("self-test failed");
    }
    return engine_access::make(m, arch);
}

result<cpu_arch> from_imb(IMB_ARCH a)
{
    for (const arch_row& r : arch_table) {
        if (r.imb == a) {
            return r.arch;
        }
    }
    if (a == IMB_ARCH_NOAESNI) {
        return cpu_arch::noaesni;
    }
    return imb_error("no usable code path on this CPU");
}

} // namespace

std::string_view to_string(aead a)
{
    switch (a) {
    case aead::aes_128_gcm: return "aes-128-gcm";
    case aead::aes_256_gcm: return "aes-256-gcm";
    }
    return "?";
}

std::string_view to_string(cpu_arch a)
{
    switch (a) {
    case cpu_arch::none: return "none";
    case cpu_arch::noaesni: return "noaesni";
    case cpu_arch::sse: return "sse";
    case cpu_arch::avx: return "avx";
    case cpu_arch::avx2: return "avx2";
    case cpu_arch::avx512: return "avx512";
    }
    return "?";
}

result<engine> engine::create()
{
    IMB_MGR* m = alloc_mb_mgr(0);
    if (m == nullptr) {
        return imb_error("alloc_mb_mgr failed");
    }
    IMB_ARCH chosen = IMB_ARCH_NONE;
    init_mb_mgr_auto(m, &chosen);
    auto arch = from_imb(chosen);
    if (!arch) {
        free_mb_mgr(m);
        return arch.err();
    }
    return finish_init(m, *arch);
}

result<engine> engine::create(cpu_arch forced)
{
    for (const arch_row& r : arch_table) {
        if (r.arch != forced) {
            continue;
        }
        IMB_MGR* m = alloc_mb_mgr(0);
        if (m == nullptr) {
            return imb_error("alloc_mb_mgr failed");
        }
        if ((m->features & r.cpu_flags) != r.cpu_flags) {
            free_mb_mgr(m);
            return imb_error("CPU lacks the features of " + std::string(to_string(forced)));
        }
        r.init(m);
        return finish_init(m, forced);
    }
    return imb_error("cannot force code path " + std::string(to_string(forced)));
}

engine::engine(engine&& other) noexcept
    : _mgr(std::exchange(other._mgr, nullptr)), _arch(other._arch)
{
}

engine& engine::operator=(engine&& other) noexcept
{
    if (this != &other) {
        if (_mgr != nullptr) {
            free_mb_mgr(_mgr);
        }
        _mgr = std::exchange(other._mgr, nullptr);
        _arch = other._arch;
    }
    return *this;
}

engine::~engine()
{
    if (_mgr != nullptr) {
        free_mb_mgr(_mgr);
    }
}

uint64_t engine::features() const
{
    return _mgr != nullptr ? _mgr->features : 0;
}

std::string_view engine::arch() const
{
    // 1.3's init_mb_mgr_avx512 switches to its VAES/VPCLMULQDQ ("t2") kernels on its own.
    if (_arch == cpu_arch::avx512 &&
        (features() & IMB_CPUFLAGS_AVX512_T2) == IMB_CPUFLAGS_AVX512_T2) {
        return "avx512_t2 (vaes)";
    }
    return to_string(_arch);
}

result<void> make_gcm_key(aead alg, std::span<const uint8_t> keying_material, gcm_key& out,
                          const engine& e)
{
    clear_gcm_key(out);
    if (alg != aead::aes_128_gcm && alg != aead::aes_256_gcm) {
        return error{errc::config_bad_value, "unknown AEAD algorithm"};
    }
    const size_t key_len = alg == aead::aes_128_gcm ? 16 : 32;
    if (keying_material.size() != key_len + gcm_salt_len) {
        return error{errc::config_bad_value,
                     std::string(to_string(alg)) + ": keying material must be " +
                         std::to_string(key_len + gcm_salt_len) + " bytes, got " +
                         std::to_string(keying_material.size())};
    }
    IMB_MGR* m = engine_access::mgr(e);
    if (m == nullptr) {
        return imb_error("make_gcm_key on a moved-from engine");
    }
    // The key is read in place: no temporary copy of it exists to wipe.
    if (alg == aead::aes_128_gcm) {
        imb::aes128_gcm_pre(m, keying_material.data(), key_data(out));
    } else {
        imb::aes256_gcm_pre(m, keying_material.data(), key_data(out));
    }
    for (size_t i = 0; i < gcm_salt_len; ++i) {
        out.salt[i] = keying_material[key_len + i];
    }
    out.alg = alg;
    out.arch = e.arch_id();
    return {};
}

void clear_gcm_key(gcm_key& k)
{
    OPENSSL_cleanse(&k, sizeof(k));
}

} // namespace msecgw::crypto
