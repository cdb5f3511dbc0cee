#include "srcauth/signature.hh"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include <array>
#include <cstring>
#include <fstream>
#include <sstream>

namespace msecgw::srcauth {

/// The OpenSSL objects of one key, made once: the key, and contexts reused for every operation.
struct pkey_holder {
    EVP_PKEY* pkey = nullptr;
    EVP_PKEY_CTX* pctx = nullptr; ///< ECDSA: initialised for sign or verify once
    EVP_MD_CTX* mdctx = nullptr;  ///< Ed25519: one-shot EVP_DigestSign/Verify, re-initialised per call
    ~pkey_holder()
    {
        EVP_MD_CTX_free(mdctx);
        EVP_PKEY_CTX_free(pctx);
        EVP_PKEY_free(pkey);
    }
};

namespace {

enum class role { sign, verify };

error key_error(std::string_view what, std::string_view why)
{
    return error{errc::config_bad_value, std::string(what) + ": " + std::string(why)};
}

result<std::string> read_file(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return error{errc::io, path + ": cannot read"};
    }
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

/// Prepares k's contexts for `r` and sets alg. Only Ed25519 and P-256 keys are accepted.
result<std::unique_ptr<pkey_holder>> prepare(std::unique_ptr<pkey_holder> k, std::string_view what, role r,
                                             wire::sig_alg& alg)
{
    if (EVP_PKEY_is_a(k->pkey, "ED25519")) {
        alg = wire::sig_alg::ed25519;
        k->mdctx = EVP_MD_CTX_new();
        return k->mdctx ? result<std::unique_ptr<pkey_holder>>(std::move(k)) : key_error(what, "out of memory");
    }
    std::array<char, 32> curve{};
    size_t curve_len = 0;
    if (!EVP_PKEY_is_a(k->pkey, "EC") ||
        EVP_PKEY_get_utf8_string_param(k->pkey, "group", curve.data(), curve.size(), &curve_len) != 1 ||
        std::string_view(curve.data(), curve_len) != "prime256v1") {
        return key_error(what, "key is neither Ed25519 nor ECDSA P-256");
    }
    alg = wire::sig_alg::ecdsa_p256;
    k->pctx = EVP_PKEY_CTX_new(k->pkey, nullptr);
    const bool ok = k->pctx != nullptr &&
                    (r == role::sign ? EVP_PKEY_sign_init(k->pctx) : EVP_PKEY_verify_init(k->pctx)) == 1 &&
                    EVP_PKEY_CTX_set_signature_md(k->pctx, EVP_sha256()) == 1;
    if (!ok) {
        return key_error(what, "cannot prepare ECDSA context");
    }
    return k;
}

/// Parses the PEM and prepares the contexts for `r`.
result<std::unique_ptr<pkey_holder>> load(std::string_view pem, std::string_view what, role r, wire::sig_alg& alg)
{
    auto k = std::make_unique<pkey_holder>();
    BIO* bio = BIO_new_mem_buf(pem.data(), int(pem.size()));
    if (bio == nullptr) {
        return key_error(what, "out of memory");
    }
    k->pkey = r == role::sign ? PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr)
                              : PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    if (k->pkey == nullptr) {
        return key_error(what, r == role::sign ? "no PEM private key" : "no PEM public key");
    }
    return prepare(std::move(k), what, r, alg);
}

/// One DER INTEGER holding a 32-byte unsigned big-endian value; returns bytes written.
size_t put_integer(const uint8_t* v, uint8_t* out)
{
    size_t skip = 0;
    while (skip < 31 && v[skip] == 0) {
        ++skip;
    }
    const bool pad = (v[skip] & 0x80) != 0;
    const size_t n = 32 - skip + (pad ? 1 : 0);
    out[0] = 0x02;
    out[1] = uint8_t(n);
    size_t at = 2;
    if (pad) {
        out[at++] = 0;
    }
    std::memcpy(out + at, v + skip, 32 - skip);
    return 2 + n;
}

/// Reads one DER INTEGER at p (bounded by end) into 32 bytes; advances p.
bool get_integer(const uint8_t*& p, const uint8_t* end, uint8_t* out)
{
    if (end - p < 2 || p[0] != 0x02) {
        return false;
    }
    size_t n = p[1];
    const uint8_t* v = p + 2;
    if (n == 0 || n > 33 || size_t(end - v) < n) {
        return false;
    }
    p = v + n;
    if (n == 33) {
        if (v[0] != 0) {
            return false;
        }
        ++v;
        --n;
    }
    std::memset(out, 0, 32 - n);
    std::memcpy(out + 32 - n, v, n);
    return true;
}

} // namespace

bool ecdsa_der_to_raw(std::span<const uint8_t> der, std::span<uint8_t, wire::sig_len> raw)
{
    if (der.size() < 8 || der[0] != 0x30 || der[1] != der.size() - 2) {
        return false;
    }
    const uint8_t* p = der.data() + 2;
    const uint8_t* end = der.data() + der.size();
    return get_integer(p, end, raw.data()) && get_integer(p, end, raw.data() + 32) && p == end;
}

size_t ecdsa_raw_to_der(std::span<const uint8_t, wire::sig_len> raw, std::span<uint8_t, 72> der)
{
    size_t n = put_integer(raw.data(), der.data() + 2);
    n += put_integer(raw.data() + 32, der.data() + 2 + n);
    der[0] = 0x30;
    der[1] = uint8_t(n);
    return n + 2;
}

signer::signer(std::unique_ptr<pkey_holder> k, wire::sig_alg a) : _k(std::move(k)), _alg(a) {}
signer::signer(signer&&) noexcept = default;
signer& signer::operator=(signer&&) noexcept = default;
signer::~signer() = default;

result<signer> signer::from_pem(std::string_view pem, std::string_view what)
{
    wire::sig_alg alg{};
    auto k = load(pem, what, role::sign, alg);
    if (!k) {
        return k.err();
    }
    return signer(std::move(k.value()), alg);
}

result<signer> signer::from_pem_file(const std::string& path)
{
    auto text = read_file(path);
    if (!text) {
        return text.err();
    }
    auto s = from_pem(text.value(), path);
    OPENSSL_cleanse(text.value().data(), text.value().size());
    return s;
}

bool signer::sign_digest(std::span<const uint8_t, signed_digest_len> digest, std::span<uint8_t, wire::sig_len> out)
{
    if (_alg == wire::sig_alg::ed25519) {
        size_t len = out.size();
        return EVP_DigestSignInit(_k->mdctx, nullptr, nullptr, nullptr, _k->pkey) == 1 &&
               EVP_DigestSign(_k->mdctx, out.data(), &len, digest.data(), digest.size()) == 1 &&
               len == wire::sig_len;
    }
    std::array<uint8_t, 80> der{};
    size_t len = der.size();
    return EVP_PKEY_sign(_k->pctx, der.data(), &len, digest.data(), digest.size()) == 1 &&
           ecdsa_der_to_raw(std::span(der.data(), len), out);
}

result<signer> signer::generate(wire::sig_alg alg)
{
    auto k = std::make_unique<pkey_holder>();
    k->pkey = alg == wire::sig_alg::ed25519 ? EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519")
                                            : EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
    if (k->pkey == nullptr) {
        return key_error("key generation", "OpenSSL failed");
    }
    const std::string pem = signer(std::move(k), alg).private_pem();
    return from_pem(pem, "generated key");
}

std::string signer::private_pem() const
{
    BIO* bio = BIO_new(BIO_s_secmem());
    std::string pem;
    if (bio != nullptr && PEM_write_bio_PrivateKey(bio, _k->pkey, nullptr, nullptr, 0, nullptr, nullptr) == 1) {
        char* p = nullptr;
        const long n = BIO_get_mem_data(bio, &p);
        pem.assign(p, size_t(n));
    }
    BIO_free(bio);
    return pem;
}

std::string signer::public_pem() const
{
    BIO* bio = BIO_new(BIO_s_mem());
    std::string pem;
    if (bio != nullptr && PEM_write_bio_PUBKEY(bio, _k->pkey) == 1) {
        char* p = nullptr;
        const long n = BIO_get_mem_data(bio, &p);
        pem.assign(p, size_t(n));
    }
    BIO_free(bio);
    return pem;
}

uint32_t key_id_of(const pkey_holder& k)
{
    unsigned char* der = nullptr;
    const int n = i2d_PUBKEY(k.pkey, &der);
    std::array<uint8_t, SHA256_DIGEST_LENGTH> d{};
    if (n > 0) {
        SHA256(der, size_t(n), d.data());
    }
    OPENSSL_free(der);
    return uint32_t(d[0]) << 16 | uint32_t(d[1]) << 8 | d[2];
}

uint32_t signer::key_id() const
{
    return key_id_of(*_k);
}

uint32_t sig_verifier::key_id() const
{
    return key_id_of(*_k);
}

sig_verifier::sig_verifier(std::unique_ptr<pkey_holder> k, wire::sig_alg a) : _k(std::move(k)), _alg(a) {}
sig_verifier::sig_verifier(sig_verifier&&) noexcept = default;
sig_verifier& sig_verifier::operator=(sig_verifier&&) noexcept = default;
sig_verifier::~sig_verifier() = default;

result<sig_verifier> sig_verifier::from_pem(std::string_view pem, std::string_view what)
{
    wire::sig_alg alg{};
    auto k = load(pem, what, role::verify, alg);
    if (!k) {
        return k.err();
    }
    return sig_verifier(std::move(k.value()), alg);
}

result<sig_verifier> sig_verifier::share() const
{
    auto k = std::make_unique<pkey_holder>();
    if (EVP_PKEY_up_ref(_k->pkey) != 1) {
        return key_error("shared key", "OpenSSL failed");
    }
    k->pkey = _k->pkey;
    wire::sig_alg alg{};
    auto p = prepare(std::move(k), "shared key", role::verify, alg);
    if (!p) {
        return p.err();
    }
    return sig_verifier(std::move(p.value()), alg);
}

result<sig_verifier> sig_verifier::from_pem_file(const std::string& path)
{
    auto text = read_file(path);
    if (!text) {
        return text.err();
    }
    return from_pem(text.value(), path);
}

bool sig_verifier::verify_digest(std::span<const uint8_t, signed_digest_len> digest,
                                 std::span<const uint8_t, wire::sig_len> sig) const
{
    if (_alg == wire::sig_alg::ed25519) {
        return EVP_DigestVerifyInit(_k->mdctx, nullptr, nullptr, nullptr, _k->pkey) == 1 &&
               EVP_DigestVerify(_k->mdctx, sig.data(), sig.size(), digest.data(), digest.size()) == 1;
    }
    std::array<uint8_t, 72> der{};
    const size_t len = ecdsa_raw_to_der(sig, der);
    return EVP_PKEY_verify(_k->pctx, der.data(), len, digest.data(), digest.size()) == 1;
}

} // namespace msecgw::srcauth
