#include "gcm_test_util.hh"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <cstdlib>
#include <fstream>
#include <iostream>

namespace msecgw::crypto::test {

namespace {

int hex_digit(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

std::string_view trim(std::string_view s)
{
    const auto b = s.find_first_not_of(" \t\r");
    if (b == std::string_view::npos) {
        return {};
    }
    const auto e = s.find_last_not_of(" \t\r");
    return s.substr(b, e - b + 1);
}

struct ctx_free {
    void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using ctx_ptr = std::unique_ptr<EVP_CIPHER_CTX, ctx_free>;

/// Cipher context keyed for `a` with nonce salt||iv8, AAD already absorbed.
ctx_ptr ossl_init(aead a, bool encrypt, std::span<const uint8_t> keymat,
                  std::span<const uint8_t> iv8, std::span<const uint8_t> aad)
{
    const EVP_CIPHER* cipher = a == aead::aes_128_gcm ? EVP_aes_128_gcm() : EVP_aes_256_gcm();
    const size_t kl = key_len(a);
    std::array<uint8_t, 12> nonce{};
    std::copy(keymat.begin() + kl, keymat.begin() + kl + gcm_salt_len, nonce.begin());
    std::copy(iv8.begin(), iv8.end(), nonce.begin() + gcm_salt_len);
    ctx_ptr c(EVP_CIPHER_CTX_new());
    int len = 0;
    if (!c || EVP_CipherInit_ex(c.get(), cipher, nullptr, nullptr, nullptr, encrypt) != 1 ||
        EVP_CIPHER_CTX_ctrl(c.get(), EVP_CTRL_GCM_SET_IVLEN, 12, nullptr) != 1 ||
        EVP_CipherInit_ex(c.get(), nullptr, nullptr, keymat.data(), nonce.data(), encrypt) != 1 ||
        EVP_CipherUpdate(c.get(), nullptr, &len, aad.data(), int(aad.size())) != 1) {
        ADD_FAILURE() << "OpenSSL GCM init failed";
        return nullptr;
    }
    return c;
}

/// Runs `in` through the context; returns false on an OpenSSL error.
bool ossl_update(EVP_CIPHER_CTX* c, std::span<const uint8_t> in, bytes& out)
{
    out.assign(in.size(), 0);
    int len = 0;
    return in.empty() ||
           EVP_CipherUpdate(c, out.data(), &len, in.data(), int(in.size())) == 1;
}

} // namespace

bytes from_hex(std::string_view hex)
{
    bytes out;
    int hi = -1;
    for (char c : hex) {
        if (c == ' ' || c == '\t') {
            continue;
        }
        const int d = hex_digit(c);
        if (d < 0) {
            return {};
        }
        if (hi < 0) {
            hi = d;
        } else {
            out.push_back(uint8_t(hi << 4 | d));
            hi = -1;
        }
    }
    return hi < 0 ? out : bytes{};
}

std::string to_hex(std::span<const uint8_t> b)
{
    static constexpr char digits[] = "0123456789abcdef";
    std::string s;
    for (uint8_t x : b) {
        s += digits[x >> 4];
        s += digits[x & 15];
    }
    return s;
}

std::map<std::string, bytes> load_vector_file(const std::string& path)
{
    std::map<std::string, bytes> out;
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
        const std::string_view l = trim(line);
        const auto eq = l.find('=');
        if (l.empty() || l.front() == '#' || eq == std::string_view::npos) {
            continue;
        }
        out[std::string(trim(l.substr(0, eq)))] = from_hex(trim(l.substr(eq + 1)));
    }
    return out;
}

std::string vector_path(std::string_view file)
{
    const std::vector<std::string> args = ::testing::internal::GetArgvs();
    for (size_t i = 1; i < args.size(); ++i) {
        if (!args[i].empty() && args[i][0] != '-') {
            return args[i];
        }
    }
    if (const char* dir = std::getenv("MSECGW_TEST_VECTORS")) {
        return std::string(dir) + "/" + std::string(file);
    }
    return "tests/vectors/" + std::string(file);
}

std::mt19937_64& rng()
{
    static std::mt19937_64 gen = [] {
        const char* env = std::getenv("MSECGW_TEST_SEED");
        const uint64_t seed = env != nullptr ? std::strtoull(env, nullptr, 0) : 0x4106'5374ULL;
        std::cout << "[ seed     ] MSECGW_TEST_SEED=" << seed << "\n";
        return std::mt19937_64(seed);
    }();
    return gen;
}

bytes random_bytes(size_t n)
{
    bytes b(n);
    for (auto& x : b) {
        x = uint8_t(rng()());
    }
    return b;
}

ossl_sealed ossl_seal(aead a, std::span<const uint8_t> keymat, std::span<const uint8_t> iv8,
                      std::span<const uint8_t> aad, std::span<const uint8_t> pt)
{
    ossl_sealed out;
    ctx_ptr c = ossl_init(a, true, keymat, iv8, aad);
    std::array<uint8_t, 16> fin{}; // GCM final emits nothing
    int len = 0;
    if (!c || !ossl_update(c.get(), pt, out.ct) ||
        EVP_CipherFinal_ex(c.get(), fin.data(), &len) != 1 ||
        EVP_CIPHER_CTX_ctrl(c.get(), EVP_CTRL_GCM_GET_TAG, int(gcm_icv_len), out.tag.data()) != 1) {
        ADD_FAILURE() << "OpenSSL GCM seal failed";
    }
    return out;
}

bool ossl_open(aead a, std::span<const uint8_t> keymat, std::span<const uint8_t> iv8,
               std::span<const uint8_t> aad, std::span<const uint8_t> ct,
               std::span<const uint8_t> tag, bytes& pt)
{
    ctx_ptr c = ossl_init(a, false, keymat, iv8, aad);
    bytes want(tag.begin(), tag.end());
    std::array<uint8_t, 16> fin{};
    int len = 0;
    return c && ossl_update(c.get(), ct, pt) &&
           EVP_CIPHER_CTX_ctrl(c.get(), EVP_CTRL_GCM_SET_TAG, int(want.size()), want.data()) == 1 &&
           EVP_CipherFinal_ex(c.get(), fin.data(), &len) == 1;
}

owned_key expand_key(aead a, bytes keymat, const engine& e)
{
    owned_key k{a, std::move(keymat), std::make_unique<gcm_key>()};
    if (!make_gcm_key(a, k.keymat, *k.key, e)) {
        k.key.reset();
    }
    return k;
}

owned_key random_key(aead a, const engine& e)
{
    return expand_key(a, random_bytes(key_len(a) + gcm_salt_len), e);
}

gcm_op esp_packet::op()
{
    return gcm_op{key != nullptr ? key->key.get() : nullptr, data.data(), uint32_t(data.size()),
                  iv.data(), aad.data(), tag.data()};
}

esp_packet random_packet(const owned_key& key, size_t len)
{
    esp_packet p;
    p.key = &key;
    const bytes iv = random_bytes(gcm_iv_len);
    const bytes aad = random_bytes(gcm_aad_len);
    std::copy(iv.begin(), iv.end(), p.iv.begin());
    std::copy(aad.begin(), aad.end(), p.aad.begin());
    p.data = random_bytes(len);
    return p;
}

std::vector<gcm_op> ops_of(std::vector<esp_packet>& pkts)
{
    std::vector<gcm_op> ops;
    ops.reserve(pkts.size());
    for (auto& p : pkts) {
        ops.push_back(p.op());
    }
    return ops;
}

} // namespace msecgw::crypto::test
