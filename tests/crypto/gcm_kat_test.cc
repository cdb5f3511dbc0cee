/// Known answer: RFC 4106 ESP vector pkt_aes_128_gcm (tests/vectors/rfc4106_aes128gcm_esp.txt).

#include "gcm_test_util.hh"

#include <gtest/gtest.h>

#include <optional>

namespace msecgw::crypto::test {
namespace {

enum class field { ciphertext, icv, aad, iv };

bytes concat(const bytes& a, const bytes& b)
{
    bytes out = a;
    out.insert(out.end(), b.begin(), b.end());
    return out;
}

std::span<uint8_t> field_of(esp_packet& p, field f)
{
    switch (f) {
    case field::ciphertext: return p.data;
    case field::icv: return p.tag;
    case field::aad: return p.aad;
    case field::iv: return p.iv;
    }
    return {};
}

class rfc4106_kat : public ::testing::Test {
protected:
    void SetUp() override
    {
        const std::string path = vector_path("rfc4106_aes128gcm_esp.txt");
        auto v = load_vector_file(path);
        for (const char* name : {"key", "salt", "iv", "spi", "seq", "inner_packet", "esp_trailer",
                                 "ciphertext_icv"}) {
            ASSERT_TRUE(v.count(name) == 1 && !v[name].empty()) << path << ": no valid " << name;
        }
        _keymat = concat(v["key"], v["salt"]);
        _iv = v["iv"];
        _aad = concat(v["spi"], v["seq"]);
        _plaintext = concat(v["inner_packet"], v["esp_trailer"]);
        _expected = v["ciphertext_icv"];
        ASSERT_EQ(_keymat.size(), 20u);
        ASSERT_EQ(_iv.size(), gcm_iv_len);
        ASSERT_EQ(_aad.size(), gcm_aad_len);
        ASSERT_EQ(_plaintext.size(), 64u);
        ASSERT_EQ(_expected.size(), _plaintext.size() + gcm_icv_len);

        auto e = engine::create();
        ASSERT_TRUE(e) << e.err().detail;
        _engine.emplace(std::move(*e));
        _key = expand_key(aead::aes_128_gcm, _keymat, *_engine);
        ASSERT_TRUE(_key.key);
    }

    esp_packet packet(const owned_key& key, bool sealed) const
    {
        esp_packet p;
        p.key = &key;
        std::copy(_iv.begin(), _iv.end(), p.iv.begin());
        std::copy(_aad.begin(), _aad.end(), p.aad.begin());
        if (sealed) {
            p.data.assign(_expected.begin(), _expected.end() - gcm_icv_len);
            std::copy(_expected.end() - gcm_icv_len, _expected.end(), p.tag.begin());
        } else {
            p.data = _plaintext;
        }
        return p;
    }

    /// Opens every packet in one call; all must fail except the untouched last one.
    void expect_only_last_opens(std::vector<esp_packet>& pkts, std::string_view what)
    {
        auto ops = ops_of(pkts);
        std::vector<uint8_t> ok(pkts.size(), 0xee);
        EXPECT_EQ(open_burst(*_engine, ops, ok), 1u) << what;
        for (size_t i = 0; i + 1 < ok.size(); ++i) {
            EXPECT_EQ(ok[i], 0) << what << ": flip of byte " << i / 8 << " bit " << i % 8;
        }
        EXPECT_EQ(ok.back(), 1) << what << ": untouched packet in the same burst";
    }

    void expect_flips_rejected(field f)
    {
        std::vector<esp_packet> pkts;
        esp_packet base = packet(_key, true);
        for (size_t byte = 0; byte < field_of(base, f).size(); ++byte) {
            for (int bit = 0; bit < 8; ++bit) {
                esp_packet p = base;
                field_of(p, f)[byte] ^= uint8_t(1u << bit);
                pkts.push_back(std::move(p));
            }
        }
        pkts.push_back(base);
        expect_only_last_opens(pkts, "field " + std::to_string(int(f)));
    }

    std::optional<engine> _engine;
    bytes _keymat, _iv, _aad, _plaintext, _expected;
    owned_key _key;
};

TEST_F(rfc4106_kat, openssl_reference_reproduces_vector)
{
    const auto ref = ossl_seal(aead::aes_128_gcm, _keymat, _iv, _aad, _plaintext);
    EXPECT_EQ(to_hex(concat(ref.ct, bytes(ref.tag.begin(), ref.tag.end()))), to_hex(_expected));
}

TEST_F(rfc4106_kat, seal_produces_vector_bytes)
{
    std::vector<esp_packet> pkts{packet(_key, false)};
    auto ops = ops_of(pkts);
    std::array<uint8_t, 1> ok{};
    ASSERT_EQ(seal_burst(*_engine, ops, ok), 1u);
    EXPECT_EQ(ok[0], 1);
    const bytes tag(pkts[0].tag.begin(), pkts[0].tag.end());
    EXPECT_EQ(to_hex(concat(pkts[0].data, tag)), to_hex(_expected));
}

TEST_F(rfc4106_kat, open_recovers_plaintext)
{
    std::vector<esp_packet> pkts{packet(_key, true)};
    auto ops = ops_of(pkts);
    std::array<uint8_t, 1> ok{};
    ASSERT_EQ(open_burst(*_engine, ops, ok), 1u);
    EXPECT_EQ(ok[0], 1);
    EXPECT_EQ(to_hex(pkts[0].data), to_hex(_plaintext));
}

TEST_F(rfc4106_kat, open_rejects_every_ciphertext_bit_flip)
{
    expect_flips_rejected(field::ciphertext);
}

TEST_F(rfc4106_kat, open_rejects_every_icv_bit_flip)
{
    expect_flips_rejected(field::icv);
}

TEST_F(rfc4106_kat, open_rejects_every_aad_bit_flip)
{
    expect_flips_rejected(field::aad);
}

TEST_F(rfc4106_kat, open_rejects_every_iv_bit_flip)
{
    expect_flips_rejected(field::iv);
}

TEST_F(rfc4106_kat, open_rejects_every_key_and_salt_bit_flip)
{
    std::vector<owned_key> keys;
    keys.reserve(_keymat.size() * 8);
    for (size_t i = 0; i < _keymat.size() * 8; ++i) {
        bytes km = _keymat;
        km[i / 8] ^= uint8_t(1u << (i % 8));
        keys.push_back(expand_key(aead::aes_128_gcm, km, *_engine));
        ASSERT_TRUE(keys.back().key);
    }
    std::vector<esp_packet> pkts;
    for (const auto& k : keys) {
        pkts.push_back(packet(k, true));
    }
    pkts.push_back(packet(_key, true));
    expect_only_last_opens(pkts, "key||salt");
}

TEST_F(rfc4106_kat, open_rejects_truncated_ciphertext)
{
    std::vector<esp_packet> pkts{packet(_key, true), packet(_key, true)};
    pkts[0].data.pop_back();
    expect_only_last_opens(pkts, "truncated");
}

} // namespace
} // namespace msecgw::crypto::test
