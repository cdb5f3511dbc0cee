#include "crypto.hh"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include <algorithm>
#include <array>

namespace msecgw::gkm {

namespace {

template <class T, void (*Free)(T*)>
struct ossl_deleter {
    void operator()(T* p) const { Free(p); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, ossl_deleter<EVP_PKEY, EVP_PKEY_free>>;
using pkey_ctx_ptr = std::unique_ptr<EVP_PKEY_CTX, ossl_deleter<EVP_PKEY_CTX, EVP_PKEY_CTX_free>>;
using cipher_ctx_ptr = std::unique_ptr<EVP_CIPHER_CTX, ossl_deleter<EVP_CIPHER_CTX, EVP_CIPHER_CTX_free>>;
using bn_ptr = std::unique_ptr<BIGNUM, ossl_deleter<BIGNUM, BN_clear_free>>;
using ec_group_ptr = std::unique_ptr<EC_GROUP, ossl_deleter<EC_GROUP, EC_GROUP_free>>;
using ec_point_ptr = std::unique_ptr<EC_POINT, ossl_deleter<EC_POINT, EC_POINT_free>>;
using param_bld_ptr = std::unique_ptr<OSSL_PARAM_BLD, ossl_deleter<OSSL_PARAM_BLD, OSSL_PARAM_BLD_free>>;
using params_ptr = std::unique_ptr<OSSL_PARAM, ossl_deleter<OSSL_PARAM, OSSL_PARAM_free>>;

constexpr size_t p256_coordinate = 32;
constexpr uint8_t uncompressed_point = 0x04;

error openssl_failure(std::string_view what)
{
    return make_error(reason::crypto, what);
}

void append(bytes& out, byte_view in)
{
    out.insert(out.end(), in.begin(), in.end());
}

/// An EC P-256 EVP_PKEY from an uncompressed point (and optionally its private scalar).
pkey_ptr p256_pkey(byte_view point65, const BIGNUM* priv)
{
    param_bld_ptr bld(OSSL_PARAM_BLD_new());
    if (!bld ||
        !OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, SN_X9_62_prime256v1, 0) ||
        !OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point65.data(), point65.size()) ||
        (priv != nullptr && !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_PRIV_KEY, priv))) {
        return nullptr;
    }
    params_ptr params(OSSL_PARAM_BLD_to_param(bld.get()));
    pkey_ctx_ptr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
    EVP_PKEY* pkey = nullptr;
    int selection = priv != nullptr ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY;
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) <= 0 ||
        EVP_PKEY_fromdata(ctx.get(), &pkey, selection, params.get()) <= 0) {
        return nullptr;
    }
    return pkey_ptr(pkey);
}

/// The KE data of a key: x ‖ y for P-256, the raw key for X25519.
bytes public_value_of(dh_group g, EVP_PKEY* pkey)
{
    if (g == dh_group::curve25519) {
        bytes pub(32);
        size_t len = pub.size();
        if (EVP_PKEY_get_raw_public_key(pkey, pub.data(), &len) != 1 || len != pub.size()) {
            return {};
        }
        return pub;
    }
    std::array<uint8_t, 1 + 2 * p256_coordinate> point{};
    size_t len = 0;
    if (EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size(), &len) != 1 ||
        len != point.size() || point[0] != uncompressed_point) {
        return {};
    }
    return bytes(point.begin() + 1, point.end());
}

/// Checks a peer's KE data and turns it into an EVP_PKEY. For P-256 that is partial public-key
/// validation (SP 800-56A 5.6.2.3.4: coordinates in range, on the curve, not the point at
/// infinity), which suffices with cofactor 1 (RFC 5903 §7); the full check would add an n·Q
/// scalar multiplication per exchange and prove nothing more.
pkey_ptr peer_pkey(dh_group g, byte_view peer)
{
    if (peer.size() != ke_data_size(g)) {
        return nullptr;
    }
    if (g == dh_group::curve25519) {
        return pkey_ptr(EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr, peer.data(), peer.size()));
    }
    bytes point{uncompressed_point};
    append(point, peer);
    pkey_ptr pkey = p256_pkey(point, nullptr);
    if (!pkey) {
        return nullptr;
    }
    pkey_ctx_ptr check(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey.get(), nullptr));
    if (!check || EVP_PKEY_public_check_quick(check.get()) != 1) {
        return nullptr;
    }
    return pkey;
}

/// The uncompressed point d·G on P-256.
bytes p256_public_point(const BIGNUM* d)
{
    ec_group_ptr group(EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1));
    if (!group) {
        return {};
    }
    ec_point_ptr q(EC_POINT_new(group.get()));
    bytes out(1 + 2 * p256_coordinate);
    if (!q || EC_POINT_mul(group.get(), q.get(), d, nullptr, nullptr, nullptr) != 1 ||
        EC_POINT_point2oct(group.get(), q.get(), POINT_CONVERSION_UNCOMPRESSED, out.data(), out.size(), nullptr) !=
            out.size()) {
        return {};
    }
    return out;
}

bool is_all_zero(byte_view b)
{
    uint8_t acc = 0;
    for (uint8_t v : b) {
        acc |= v;
    }
    return acc == 0;
}

const EVP_CIPHER* gcm_cipher(size_t key_size)
{
    switch (key_size) {
    case 16: return EVP_aes_128_gcm();
    case 24: return EVP_aes_192_gcm();
    case 32: return EVP_aes_256_gcm();
    default: return nullptr;
    }
}

const EVP_CIPHER* wrap_pad_cipher(size_t kek_size)
{
    switch (kek_size) {
    case 16: return EVP_aes_128_wrap_pad();
    case 24: return EVP_aes_192_wrap_pad();
    case 32: return EVP_aes_256_wrap_pad();
    default: return nullptr;
    }
}

/// Sets up a GCM context; the nonce is salt (key tail) ‖ iv.
cipher_ctx_ptr gcm_context(byte_view key_and_salt, byte_view iv, int encrypt)
{
    if (key_and_salt.size() < gcm_salt_size || iv.size() != gcm_iv_size) {
        return nullptr;
    }
    size_t key_size = key_and_salt.size() - gcm_salt_size;
    const EVP_CIPHER* cipher = gcm_cipher(key_size);
    if (cipher == nullptr) {
        return nullptr;
    }
    std::array<uint8_t, gcm_salt_size + gcm_iv_size> nonce{};
    std::copy_n(key_and_salt.data() + key_size, gcm_salt_size, nonce.begin());
    std::copy(iv.begin(), iv.end(), nonce.begin() + gcm_salt_size);
    cipher_ctx_ptr ctx(EVP_CIPHER_CTX_new());
    if (!ctx || EVP_CipherInit_ex(ctx.get(), cipher, nullptr, nullptr, nullptr, encrypt) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, int(nonce.size()), nullptr) != 1 ||
        EVP_CipherInit_ex(ctx.get(), nullptr, nullptr, key_and_salt.data(), nonce.data(), encrypt) != 1) {
        return nullptr;
    }
    return ctx;
}

bool add_aad(EVP_CIPHER_CTX* ctx, byte_view aad)
{
    int len = 0;
    return aad.empty() || EVP_CipherUpdate(ctx, nullptr, &len, aad.data(), int(aad.size())) == 1;
}

} // namespace

secret prf(byte_view key, byte_view data)
{
    secret out(prf_size);
    unsigned int len = 0;
    // HMAC() with a null key pointer and length 0 is valid HMAC with an empty key.
    static const uint8_t empty = 0;
    HMAC(EVP_sha256(), key.empty() ? &empty : key.data(), int(key.size()), data.data(), data.size(),
         out.mutable_view().data(), &len);
    return out;
}

secret prf_plus(byte_view key, byte_view seed, size_t length)
{
    secret out(length);
    if (length > 255 * prf_size) {
        return secret();
    }
    bytes block;  // T(n-1) | S | n
    secret previous;
    size_t done = 0;
    for (uint8_t n = 1; done < length; ++n) {
        block.assign(previous.view().begin(), previous.view().end());
        append(block, seed);
        block.push_back(n);
        previous = prf(key, block);
        size_t take = std::min(prf_size, length - done);
        std::copy_n(previous.data(), take, out.mutable_view().data() + done);
        done += take;
    }
    OPENSSL_cleanse(block.data(), block.size());
    return out;
}

ike_sa_keys derive_ike_sa_keys(byte_view nonce_i, byte_view nonce_r, byte_view shared_secret,
                               uint64_t spi_i, uint64_t spi_r, size_t encr_key_size)
{
    bytes nonces(nonce_i.begin(), nonce_i.end());
    append(nonces, nonce_r);
    secret skeyseed = prf(nonces, shared_secret);

    bytes seed = nonces;
    for (uint64_t spi : {spi_i, spi_r}) {
        for (int shift = 56; shift >= 0; shift -= 8) {
            seed.push_back(static_cast<uint8_t>(spi >> shift));
        }
    }
    const size_t encr = encr_key_size + gcm_salt_size;
    const size_t total = prf_size + 2 * encr + 2 * prf_size;  // SK_ai/ar are empty: no integ
    secret stream = prf_plus(skeyseed.view(), seed, total);
    size_t at = 0;
    auto take = [&](size_t n) {
        secret s(stream.view().subspan(at, n));
        at += n;
        return s;
    };
    ike_sa_keys keys;
    keys.sk_d = take(prf_size);
    keys.sk_ei = take(encr);
    keys.sk_er = take(encr);
    keys.sk_pi = take(prf_size);
    keys.sk_pr = take(prf_size);
    return keys;
}

bool is_supported(dh_group g)
{
    return g == dh_group::ecp256 || g == dh_group::curve25519;
}

size_t ke_data_size(dh_group g)
{
    return g == dh_group::ecp256 ? 2 * p256_coordinate : 32;
}

void ecdh_key::pkey_deleter::operator()(void* p) const
{
    EVP_PKEY_free(static_cast<EVP_PKEY*>(p));
}

ecdh_key::ecdh_key(dh_group g, void* pkey, bytes pub) : _group(g), _pkey(pkey), _public(std::move(pub)) {}
ecdh_key::ecdh_key(ecdh_key&&) noexcept = default;
ecdh_key& ecdh_key::operator=(ecdh_key&&) noexcept = default;
ecdh_key::~ecdh_key() = default;

result<ecdh_key> ecdh_key::generate(dh_group g)
{
    if (!is_supported(g)) {
        return make_error(reason::unsupported, "key exchange method " + std::to_string(unsigned(g)));
    }
    pkey_ptr pkey(g == dh_group::curve25519 ? EVP_PKEY_Q_keygen(nullptr, nullptr, "X25519")
                                            : EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
    if (!pkey) {
        return openssl_failure("ECDH key generation");
    }
    bytes pub = public_value_of(g, pkey.get());
    if (pub.empty()) {
        return openssl_failure("ECDH public value");
    }
    return ecdh_key(g, pkey.release(), std::move(pub));
}

result<ecdh_key> ecdh_key::from_private(dh_group g, byte_view private_key)
{
    if (!is_supported(g) || private_key.size() != 32) {
        return make_error(reason::unsupported, "fixed ECDH private key");
    }
    pkey_ptr pkey;
    if (g == dh_group::curve25519) {
        pkey.reset(EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, private_key.data(), private_key.size()));
    } else {
        bn_ptr d(BN_bin2bn(private_key.data(), int(private_key.size()), nullptr));
        bytes point = d ? p256_public_point(d.get()) : bytes{};
        if (!point.empty()) {
            pkey = p256_pkey(point, d.get());
        }
    }
    if (!pkey) {
        return openssl_failure("ECDH private key import");
    }
    bytes pub = public_value_of(g, pkey.get());
    if (pub.empty()) {
        return openssl_failure("ECDH public value");
    }
    return ecdh_key(g, pkey.release(), std::move(pub));
}

result<secret> ecdh_key::shared_secret(byte_view peer_public) const
{
    pkey_ptr peer = peer_pkey(_group, peer_public);
    if (!peer) {
        return make_error(reason::bad_length, "peer KE data is not a valid public value");
    }
    pkey_ctx_ptr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, static_cast<EVP_PKEY*>(_pkey.get()), nullptr));
    size_t len = 0;
    // peer_pkey validated the peer already: 0 keeps OpenSSL from repeating it as a full check.
    if (!ctx || EVP_PKEY_derive_init(ctx.get()) != 1 || EVP_PKEY_derive_set_peer_ex(ctx.get(), peer.get(), 0) != 1 ||
        EVP_PKEY_derive(ctx.get(), nullptr, &len) != 1) {
        return openssl_failure("ECDH derive");
    }
    secret out(len);
    if (EVP_PKEY_derive(ctx.get(), out.mutable_view().data(), &len) != 1 || len != out.size()) {
        return openssl_failure("ECDH derive");
    }
    if (is_all_zero(out.view())) {
        return make_error(reason::crypto, "ECDH shared secret is all zero");
    }
    return out;
}

result<bytes> gcm_seal(byte_view key_and_salt, byte_view iv, byte_view aad, byte_view plaintext)
{
    cipher_ctx_ptr ctx = gcm_context(key_and_salt, iv, 1);
    if (!ctx || !add_aad(ctx.get(), aad)) {
        return openssl_failure("AES-GCM setup");
    }
    bytes out(plaintext.size() + gcm_icv_size);
    int len = 0;
    int tail = 0;
    if ((!plaintext.empty() &&
         EVP_CipherUpdate(ctx.get(), out.data(), &len, plaintext.data(), int(plaintext.size())) != 1) ||
        EVP_CipherFinal_ex(ctx.get(), out.data() + len, &tail) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, int(gcm_icv_size), out.data() + plaintext.size()) != 1) {
        return openssl_failure("AES-GCM encrypt");
    }
    return out;
}

result<secret> gcm_open(byte_view key_and_salt, byte_view iv, byte_view aad, byte_view sealed)
{
    if (sealed.size() < gcm_icv_size) {
        return make_error(reason::truncated, "AES-GCM input shorter than its ICV");
    }
    cipher_ctx_ptr ctx = gcm_context(key_and_salt, iv, 0);
    if (!ctx || !add_aad(ctx.get(), aad)) {
        return openssl_failure("AES-GCM setup");
    }
    const size_t text_size = sealed.size() - gcm_icv_size;
    secret out(text_size);
    std::array<uint8_t, gcm_icv_size> icv{};
    std::copy_n(sealed.data() + text_size, gcm_icv_size, icv.begin());
    int len = 0;
    int tail = 0;
    if ((text_size > 0 &&
         EVP_CipherUpdate(ctx.get(), out.mutable_view().data(), &len, sealed.data(), int(text_size)) != 1) ||
        EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, int(icv.size()), icv.data()) != 1) {
        return openssl_failure("AES-GCM decrypt");
    }
    // EVP's GCM tag check compares in constant time.
    if (EVP_CipherFinal_ex(ctx.get(), out.mutable_view().data() + len, &tail) != 1) {
        return make_error(reason::integrity, "AES-GCM ICV mismatch");
    }
    return out;
}

namespace {

result<bytes> run_wrap(byte_view kek, byte_view input, int encrypt)
{
    const EVP_CIPHER* cipher = wrap_pad_cipher(kek.size());
    if (cipher == nullptr) {
        return make_error(reason::unsupported, "key wrap KEK size " + std::to_string(kek.size()));
    }
    cipher_ctx_ptr ctx(EVP_CIPHER_CTX_new());
    if (!ctx) {
        return openssl_failure("key wrap context");
    }
    EVP_CIPHER_CTX_set_flags(ctx.get(), EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
    bytes out(input.size() + 16);
    int len = 0;
    int tail = 0;
    if (EVP_CipherInit_ex(ctx.get(), cipher, nullptr, kek.data(), nullptr, encrypt) != 1 ||
        EVP_CipherUpdate(ctx.get(), out.data(), &len, input.data(), int(input.size())) != 1 ||
        EVP_CipherFinal_ex(ctx.get(), out.data() + len, &tail) != 1) {
        OPENSSL_cleanse(out.data(), out.size());
        return make_error(encrypt ? reason::crypto : reason::integrity,
                          encrypt ? "key wrap failed" : "key unwrap: integrity check failed");
    }
    out.resize(size_t(len + tail));
    return out;
}

} // namespace

result<bytes> key_wrap(byte_view kek, byte_view key)
{
    if (key.empty()) {
        return make_error(reason::bad_length, "key wrap of an empty key");
    }
    return run_wrap(kek, key, 1);
}

result<secret> key_unwrap(byte_view kek, byte_view wrapped)
{
    if (wrapped.size() < 16 || wrapped.size() % 8 != 0) {
        return make_error(reason::bad_length, "wrapped key length " + std::to_string(wrapped.size()));
    }
    result<bytes> plain = run_wrap(kek, wrapped, 0);
    if (!plain) {
        return plain.err();
    }
    secret out(plain.value());
    OPENSSL_cleanse(plain.value().data(), plain.value().size());
    return out;
}

void random_fill(std::span<uint8_t> out)
{
    if (!out.empty() && RAND_bytes(out.data(), int(out.size())) != 1) {
        std::abort();  // no safe way on without randomness
    }
}

bytes random_bytes(size_t n)
{
    bytes out(n);
    random_fill(out);
    return out;
}

secret random_secret(size_t n)
{
    secret out(n);
    random_fill(out.mutable_view());
    return out;
}

} // namespace msecgw::gkm

namespace msecgw::gkm {

void signing_key::pkey_deleter::operator()(void* p) const
{
    EVP_PKEY_free(static_cast<EVP_PKEY*>(p));
}

signing_key::signing_key(void* pkey, bytes der) : _pkey(pkey), _public_der(std::move(der)) {}
signing_key::signing_key(signing_key&&) noexcept = default;
signing_key& signing_key::operator=(signing_key&&) noexcept = default;
signing_key::~signing_key() = default;

namespace {

result<signing_key> with_public_der(pkey_ptr pkey)
{
    int len = i2d_PUBKEY(pkey.get(), nullptr);
    bytes der(len > 0 ? size_t(len) : 0);
    uint8_t* p = der.data();
    if (len <= 0 || i2d_PUBKEY(pkey.get(), &p) != len) {
        return make_error(reason::crypto, "ECDSA public key export");
    }
    return signing_key::adopt(pkey.release(), std::move(der));
}

} // namespace

result<signing_key> signing_key::generate()
{
    pkey_ptr pkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
    if (!pkey) {
        return make_error(reason::crypto, "ECDSA key generation");
    }
    return with_public_der(std::move(pkey));
}

result<signing_key> signing_key::from_private_der(byte_view der)
{
    const uint8_t* p = der.data();
    pkey_ptr pkey(d2i_AutoPrivateKey(nullptr, &p, long(der.size())));
    if (!pkey || EVP_PKEY_get_base_id(pkey.get()) != EVP_PKEY_EC || p != der.data() + der.size()) {
        return make_error(reason::crypto, "ECDSA private key import");
    }
    return with_public_der(std::move(pkey));
}

secret signing_key::private_der() const
{
    auto* pkey = static_cast<EVP_PKEY*>(_pkey.get());
    int len = i2d_PrivateKey(pkey, nullptr);
    secret der(len > 0 ? size_t(len) : 0);
    uint8_t* p = der.mutable_view().data();
    if (len <= 0 || i2d_PrivateKey(pkey, &p) != len) {
        return secret();
    }
    return der;
}

signing_key signing_key::adopt(void* pkey, bytes public_der)
{
    return signing_key(pkey, std::move(public_der));
}

result<bytes> signing_key::sign(byte_view data) const
{
    using md_ctx_ptr = std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)>;
    md_ctx_ptr ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    size_t len = 0;
    auto* pkey = static_cast<EVP_PKEY*>(_pkey.get());
    if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, pkey) != 1 ||
        EVP_DigestSign(ctx.get(), nullptr, &len, data.data(), data.size()) != 1) {
        return make_error(reason::crypto, "ECDSA sign");
    }
    bytes sig(len);
    if (EVP_DigestSign(ctx.get(), sig.data(), &len, data.data(), data.size()) != 1) {
        return make_error(reason::crypto, "ECDSA sign");
    }
    sig.resize(len);
    return sig;
}

void verify_key::pkey_deleter::operator()(void* p) const
{
    EVP_PKEY_free(static_cast<EVP_PKEY*>(p));
}

verify_key::verify_key(void* pkey) : _pkey(pkey) {}
verify_key::verify_key(verify_key&&) noexcept = default;
verify_key& verify_key::operator=(verify_key&&) noexcept = default;
verify_key::~verify_key() = default;

result<verify_key> verify_key::parse(byte_view public_key_der)
{
    const uint8_t* p = public_key_der.data();
    pkey_ptr pkey(d2i_PUBKEY(nullptr, &p, long(public_key_der.size())));
    if (!pkey || EVP_PKEY_get_base_id(pkey.get()) != EVP_PKEY_EC) {
        return make_error(reason::crypto, "not an EC SubjectPublicKeyInfo");
    }
    return verify_key(pkey.release());
}

bool verify_key::verify(byte_view data, byte_view signature) const
{
    using md_ctx_ptr = std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)>;
    md_ctx_ptr ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    auto* pkey = static_cast<EVP_PKEY*>(_pkey.get());
    return ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, pkey) == 1 &&
           EVP_DigestVerify(ctx.get(), signature.data(), signature.size(), data.data(), data.size()) == 1;
}

bool verify_signature(byte_view public_key_der, byte_view data, byte_view signature)
{
    result<verify_key> key = verify_key::parse(public_key_der);
    return key && key->verify(data, signature);
}

} // namespace msecgw::gkm
