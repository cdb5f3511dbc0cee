/// ipsec-mb code paths: which one auto-selection picks (printed, not asserted) and, for every
/// path this CPU supports, identical output to OpenSSL and to each other (ipsec-mb xvalid idea).

#include "gcm_test_util.hh"

#include <gtest/gtest.h>

#include <iostream>

namespace msecgw::crypto::test {
namespace {

/// Code paths the CPU can run, checked with the compiler's CPUID helpers (ipsec-mb needs
/// IMB_CPUFLAGS_SSE = SSE4.2+AES-NI+PCLMULQDQ, AVX2 adds BMI2, AVX512 the SKX set).
std::vector<cpu_arch> cpu_supported_archs()
{
    __builtin_cpu_init();
    std::vector<cpu_arch> v;
    if (!(__builtin_cpu_supports("sse4.2") && __builtin_cpu_supports("aes") &&
          __builtin_cpu_supports("pclmul"))) {
        return v;
    }
    v.push_back(cpu_arch::sse);
    if (!__builtin_cpu_supports("avx")) {
        return v;
    }
    v.push_back(cpu_arch::avx);
    if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi2"))) {
        return v;
    }
    v.push_back(cpu_arch::avx2);
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl")) {
        v.push_back(cpu_arch::avx512);
    }
    return v;
}

struct plain_input {
    aead alg;
    bytes keymat;
    esp_packet pkt; ///< key pointer filled per engine
};

std::vector<plain_input> shared_inputs()
{
    std::vector<plain_input> in;
    const std::array<size_t, 12> lens{0, 1, 15, 16, 17, 63, 64, 255, 256, 1400, 1500, 2048};
    for (size_t i = 0; i < 2 * lens.size(); ++i) {
        const aead a = i % 2 == 0 ? aead::aes_128_gcm : aead::aes_256_gcm;
        plain_input p{a, random_bytes(key_len(a) + gcm_salt_len), {}};
        owned_key dummy{a, {}, nullptr};
        p.pkt = random_packet(dummy, lens[i / 2]);
        p.pkt.key = nullptr;
        in.push_back(std::move(p));
    }
    return in;
}

/// Seals the inputs on `e` with keys expanded by `e`; returns ciphertext||tag per input.
std::vector<bytes> seal_on(engine& e, const std::vector<plain_input>& in)
{
    std::vector<owned_key> keys;
    std::vector<esp_packet> pkts;
    for (const auto& x : in) {
        keys.push_back(expand_key(x.alg, x.keymat, e));
        EXPECT_TRUE(keys.back().key);
    }
    for (size_t i = 0; i < in.size(); ++i) {
        pkts.push_back(in[i].pkt);
        pkts.back().key = &keys[i];
    }
    auto ops = ops_of(pkts);
    std::vector<uint8_t> ok(ops.size(), 0);
    EXPECT_EQ(seal_burst(e, ops, ok), ops.size()) << e.arch();
    std::vector<bytes> out;
    for (const auto& p : pkts) {
        bytes b = p.data;
        b.insert(b.end(), p.tag.begin(), p.tag.end());
        out.push_back(std::move(b));
    }
    return out;
}

/// Opens `sealed` (ciphertext||tag per input) on `e`; every packet must verify.
void expect_opens_on(engine& e, const std::vector<plain_input>& in, const std::vector<bytes>& sealed)
{
    std::vector<owned_key> keys;
    std::vector<esp_packet> pkts;
    for (size_t i = 0; i < in.size(); ++i) {
        keys.push_back(expand_key(in[i].alg, in[i].keymat, e));
    }
    for (size_t i = 0; i < in.size(); ++i) {
        esp_packet p = in[i].pkt;
        p.key = &keys[i];
        p.data.assign(sealed[i].begin(), sealed[i].end() - gcm_icv_len);
        std::copy(sealed[i].end() - gcm_icv_len, sealed[i].end(), p.tag.begin());
        pkts.push_back(std::move(p));
    }
    auto ops = ops_of(pkts);
    std::vector<uint8_t> ok(ops.size(), 0);
    EXPECT_EQ(open_burst(e, ops, ok), ops.size()) << e.arch();
    for (size_t i = 0; i < pkts.size(); ++i) {
        EXPECT_EQ(to_hex(pkts[i].data), to_hex(in[i].pkt.data)) << e.arch() << " input " << i;
    }
}

TEST(gcm_arch, reports_auto_selected_arch)
{
    auto e = engine::create();
    ASSERT_TRUE(e) << e.err().detail;
    std::cout << "[ ipsec-mb ] auto-selected arch: " << e->arch() << ", features 0x" << std::hex
              << e->features() << std::dec << "\n";
    RecordProperty("ipsec_mb_arch", std::string(e->arch()));
    const auto archs = cpu_supported_archs();
    EXPECT_NE(std::find(archs.begin(), archs.end(), e->arch_id()), archs.end());
}

TEST(gcm_arch, every_supported_arch_matches_openssl_and_the_others)
{
    const auto archs = cpu_supported_archs();
    ASSERT_FALSE(archs.empty()) << "CPU without AES-NI: ipsec-mb has no GCM path to test";
    const auto in = shared_inputs();
    std::vector<bytes> ref;
    for (const auto& x : in) {
        const auto r = ossl_seal(x.alg, x.keymat, x.pkt.iv, x.pkt.aad, x.pkt.data);
        ref.push_back(r.ct);
        ref.back().insert(ref.back().end(), r.tag.begin(), r.tag.end());
    }
    std::vector<engine> engines;
    for (cpu_arch a : archs) {
        auto e = engine::create(a);
        ASSERT_TRUE(e) << to_string(a) << ": " << e.err().detail;
        engines.push_back(std::move(*e));
    }
    std::cout << "[ ipsec-mb ] cross-checked archs:";
    for (size_t k = 0; k < engines.size(); ++k) {
        std::cout << " " << engines[k].arch();
        const auto out = seal_on(engines[k], in);
        for (size_t i = 0; i < in.size(); ++i) {
            ASSERT_EQ(to_hex(out[i]), to_hex(ref[i])) << engines[k].arch() << " input " << i;
        }
        // Output sealed on this arch opens on every arch.
        for (auto& other : engines) {
            expect_opens_on(other, in, out);
        }
    }
    std::cout << "\n";
}

TEST(gcm_arch, key_expanded_for_another_arch_is_rejected)
{
    const auto archs = cpu_supported_archs();
    if (archs.size() < 2) {
        GTEST_SKIP() << "only one ipsec-mb code path on this CPU";
    }
    auto first = engine::create(archs.front());
    auto last = engine::create(archs.back());
    ASSERT_TRUE(first && last);
    owned_key key = random_key(aead::aes_128_gcm, *first);
    ASSERT_TRUE(key.key);
    std::vector<esp_packet> pkts{random_packet(key, 64)};
    auto ops = ops_of(pkts);
    std::vector<uint8_t> ok(1, 0xee);
    EXPECT_EQ(seal_burst(*last, ops, ok), 0u);
    EXPECT_EQ(ok[0], 0);
    EXPECT_EQ(seal_burst(*first, ops, ok), 1u);
}

TEST(gcm_arch, forcing_an_unavailable_path_fails)
{
    EXPECT_FALSE(engine::create(cpu_arch::none));
    EXPECT_FALSE(engine::create(cpu_arch::noaesni)); // not exported by ipsec-mb 1.3
}

} // namespace
} // namespace msecgw::crypto::test
