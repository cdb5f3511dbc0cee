/// Cross-validation of seal_burst/open_burst against OpenSSL EVP AES-GCM, plus the burst
/// contract (mixed keys, more than max_burst ops, per-op rejection, key handling).

#include "gcm_test_util.hh"

#include <gtest/gtest.h>

#include <algorithm>
#include <optional>

namespace msecgw::crypto::test {
namespace {

constexpr std::array<size_t, 11> edge_lengths{0, 1, 15, 16, 17, 63, 64, 1400, 1500, 2047, 2048};

class gcm_xvalid : public ::testing::Test {
protected:
    void SetUp() override
    {
        auto e = engine::create();
        ASSERT_TRUE(e) << e.err().detail;
        _engine.emplace(std::move(*e));
        for (aead a : {aead::aes_128_gcm, aead::aes_256_gcm}) {
            for (int i = 0; i < 4; ++i) {
                _keys.push_back(random_key(a, *_engine));
                ASSERT_TRUE(_keys.back().key);
            }
        }
    }

    const owned_key& any_key() { return _keys[rng()() % _keys.size()]; }

    /// Every length 0..2048 once, shuffled, each under a random key of either algorithm.
    std::vector<esp_packet> all_lengths()
    {
        std::vector<size_t> lens(2049);
        for (size_t i = 0; i < lens.size(); ++i) {
            lens[i] = i;
        }
        lens.insert(lens.end(), edge_lengths.begin(), edge_lengths.end());
        std::shuffle(lens.begin(), lens.end(), rng());
        std::vector<esp_packet> pkts;
        for (size_t len : lens) {
            pkts.push_back(random_packet(any_key(), len));
        }
        return pkts;
    }

    /// Seals pkts in bursts of random sizes 1..max_burst; all must succeed.
    void seal_in_random_bursts(std::vector<esp_packet>& pkts)
    {
        auto ops = ops_of(pkts);
        std::vector<uint8_t> ok(ops.size(), 0);
        for (size_t off = 0; off < ops.size();) {
            const size_t n = std::min<size_t>(1 + rng()() % max_burst, ops.size() - off);
            std::span<const gcm_op> burst(ops.data() + off, n);
            EXPECT_EQ(seal_burst(*_engine, burst, std::span(ok).subspan(off, n)), n);
            off += n;
        }
        EXPECT_EQ(std::count(ok.begin(), ok.end(), 1), std::ptrdiff_t(ok.size()));
    }

    std::optional<engine> _engine;
    std::vector<owned_key> _keys;
};

TEST_F(gcm_xvalid, seal_matches_openssl_for_every_length_in_mixed_bursts)
{
    auto pkts = all_lengths();
    std::vector<ossl_sealed> ref;
    for (auto& p : pkts) {
        ref.push_back(ossl_seal(p.key->alg, p.key->keymat, p.iv, p.aad, p.data));
    }
    seal_in_random_bursts(pkts);
    for (size_t i = 0; i < pkts.size(); ++i) {
        const auto& p = pkts[i];
        ASSERT_EQ(to_hex(p.data), to_hex(ref[i].ct)) << to_string(p.key->alg) << " len " << p.data.size();
        ASSERT_EQ(to_hex(p.tag), to_hex(ref[i].tag)) << to_string(p.key->alg) << " len " << p.data.size();
    }
}

TEST_F(gcm_xvalid, open_accepts_openssl_ciphertext_for_every_length)
{
    auto pkts = all_lengths();
    std::vector<bytes> plain;
    for (auto& p : pkts) {
        plain.push_back(p.data);
        auto ref = ossl_seal(p.key->alg, p.key->keymat, p.iv, p.aad, p.data);
        p.data = ref.ct;
        p.tag = ref.tag;
    }
    auto ops = ops_of(pkts);
    std::vector<uint8_t> ok(ops.size(), 0);
    EXPECT_EQ(open_burst(*_engine, ops, ok), ops.size()); // also chunks past max_burst
    for (size_t i = 0; i < pkts.size(); ++i) {
        ASSERT_EQ(ok[i], 1) << "len " << pkts[i].data.size();
        ASSERT_EQ(to_hex(pkts[i].data), to_hex(plain[i])) << "len " << pkts[i].data.size();
    }
}

TEST_F(gcm_xvalid, openssl_opens_sealed_packets)
{
    std::vector<esp_packet> pkts;
    for (size_t len : edge_lengths) {
        pkts.push_back(random_packet(any_key(), len));
    }
    std::vector<bytes> plain;
    for (const auto& p : pkts) {
        plain.push_back(p.data);
    }
    seal_in_random_bursts(pkts);
    for (size_t i = 0; i < pkts.size(); ++i) {
        const auto& p = pkts[i];
        bytes pt;
        ASSERT_TRUE(ossl_open(p.key->alg, p.key->keymat, p.iv, p.aad, p.data, p.tag, pt));
        EXPECT_EQ(to_hex(pt), to_hex(plain[i]));
    }
}

TEST_F(gcm_xvalid, one_burst_mixes_keys_and_algorithms)
{
    const owned_key& k128 = _keys.front();
    const owned_key& k256 = _keys.back();
    ASSERT_EQ(k128.alg, aead::aes_128_gcm);
    ASSERT_EQ(k256.alg, aead::aes_256_gcm);
    std::vector<esp_packet> pkts;
    for (size_t i = 0; i < max_burst; ++i) {
        pkts.push_back(random_packet(i % 2 == 0 ? k128 : k256, 1 + rng()() % 1500));
    }
    std::vector<ossl_sealed> ref;
    for (auto& p : pkts) {
        ref.push_back(ossl_seal(p.key->alg, p.key->keymat, p.iv, p.aad, p.data));
    }
    auto ops = ops_of(pkts);
    std::vector<uint8_t> ok(ops.size(), 0);
    ASSERT_EQ(seal_burst(*_engine, ops, ok), ops.size());
    for (size_t i = 0; i < pkts.size(); ++i) {
        EXPECT_EQ(to_hex(pkts[i].data), to_hex(ref[i].ct)) << i;
        EXPECT_EQ(to_hex(pkts[i].tag), to_hex(ref[i].tag)) << i;
    }
    ASSERT_EQ(open_burst(*_engine, ops, ok), ops.size());
}

TEST_F(gcm_xvalid, invalid_ops_fail_alone)
{
    std::vector<esp_packet> pkts;
    for (int i = 0; i < 8; ++i) {
        pkts.push_back(random_packet(any_key(), 100));
    }
    auto ops = ops_of(pkts);
    gcm_key wiped = *_keys[0].key;
    clear_gcm_key(wiped);
    ops[1].key = nullptr;
    ops[3].tag = nullptr;
    ops[4].data = nullptr; // with len 100
    ops[5].key = &wiped;
    ops[6].iv8 = nullptr;
    ops[7].aad = nullptr;
    std::vector<uint8_t> ok(ops.size(), 0xee);
    EXPECT_EQ(seal_burst(*_engine, ops, ok), 2u);
    EXPECT_EQ(ok, (std::vector<uint8_t>{1, 0, 1, 0, 0, 0, 0, 0}));
    EXPECT_EQ(open_burst(*_engine, ops, ok), 2u);
    EXPECT_EQ(ok, (std::vector<uint8_t>{1, 0, 1, 0, 0, 0, 0, 0}));
}

TEST_F(gcm_xvalid, zero_length_payload_with_null_data)
{
    std::vector<esp_packet> pkts{random_packet(_keys[0], 0), random_packet(_keys.back(), 0)};
    auto ops = ops_of(pkts);
    for (auto& op : ops) {
        op.data = nullptr;
    }
    std::vector<uint8_t> ok(ops.size(), 0);
    ASSERT_EQ(seal_burst(*_engine, ops, ok), 2u);
    for (const auto& p : pkts) {
        const auto ref = ossl_seal(p.key->alg, p.key->keymat, p.iv, p.aad, {});
        EXPECT_EQ(to_hex(p.tag), to_hex(ref.tag)); // GMAC of the AAD alone
    }
    EXPECT_EQ(open_burst(*_engine, ops, ok), 2u);
}

TEST_F(gcm_xvalid, empty_burst_and_short_ok_span)
{
    std::vector<uint8_t> ok(4, 0xee);
    EXPECT_EQ(seal_burst(*_engine, {}, ok), 0u);
    std::vector<esp_packet> pkts{random_packet(_keys[0], 10), random_packet(_keys[0], 10)};
    auto ops = ops_of(pkts);
    EXPECT_EQ(seal_burst(*_engine, ops, std::span(ok).first(1)), 1u); // only ops[0] processed
    EXPECT_EQ(ok[1], 0xee);
}

TEST(gcm_key, rejects_wrong_keying_material_length)
{
    auto e = engine::create();
    ASSERT_TRUE(e) << e.err().detail;
    gcm_key k{};
    EXPECT_FALSE(make_gcm_key(aead::aes_128_gcm, random_bytes(16), k, *e));
    EXPECT_FALSE(make_gcm_key(aead::aes_128_gcm, random_bytes(36), k, *e));
    EXPECT_FALSE(make_gcm_key(aead::aes_256_gcm, random_bytes(20), k, *e));
    EXPECT_FALSE(make_gcm_key(aead(7), random_bytes(20), k, *e));
    EXPECT_EQ(k.arch, cpu_arch::none); // failures leave a wiped key
    EXPECT_TRUE(make_gcm_key(aead::aes_256_gcm, random_bytes(36), k, *e));
    EXPECT_EQ(k.arch, e->arch_id());
}

TEST(gcm_key, clear_wipes_everything)
{
    auto e = engine::create();
    ASSERT_TRUE(e) << e.err().detail;
    gcm_key k{};
    ASSERT_TRUE(make_gcm_key(aead::aes_128_gcm, random_bytes(20), k, *e));
    clear_gcm_key(k);
    const auto* raw = reinterpret_cast<const uint8_t*>(&k);
    EXPECT_TRUE(std::all_of(raw, raw + sizeof(k), [](uint8_t b) { return b == 0; }));
}

TEST(gcm_engine, moved_from_engine_rejects_work)
{
    auto e = engine::create();
    ASSERT_TRUE(e) << e.err().detail;
    engine a = std::move(*e);
    owned_key key = random_key(aead::aes_128_gcm, a);
    ASSERT_TRUE(key.key);
    std::vector<esp_packet> pkts{random_packet(key, 32)};
    auto ops = ops_of(pkts);
    std::vector<uint8_t> ok(1, 0xee);
    EXPECT_EQ(seal_burst(*e, ops, ok), 0u); // NOLINT(bugprone-use-after-move): by design
    EXPECT_EQ(ok[0], 0);
    EXPECT_EQ(seal_burst(a, ops, ok), 1u);
}

} // namespace
} // namespace msecgw::crypto::test
