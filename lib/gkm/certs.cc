#include "certs.hh"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <algorithm>
#include <cstdio>

#include "ike_sa.hh"
#include "rekey.hh"

namespace msecgw::gkm {

namespace {

/// RFC 7427 AUTH prefix for sha256WithRSAEncryption: ASN.1 length, then AlgorithmIdentifier
/// {1.2.840.113549.1.1.11, NULL}.
constexpr uint8_t rsa_sha256_prefix[] = {0x0f, 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48,
                                         0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00};

struct pkey_free {
    void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct x509_free {
    void operator()(X509* p) const { X509_free(p); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_free>;
using x509_ptr = std::unique_ptr<X509, x509_free>;

std::string common_name_of(X509* cert)
{
    char cn[256] = {};
    const int n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
    return n > 0 ? std::string(cn, static_cast<size_t>(n)) : std::string();
}

byte_view prefix_for(EVP_PKEY* key)
{
    switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_EC: return byte_view(ecdsa_sha256_prefix);
    case EVP_PKEY_RSA: return byte_view(rsa_sha256_prefix);
    default: return {};
    }
}

bool starts_with(byte_view data, byte_view prefix)
{
    return data.size() > prefix.size() && std::equal(prefix.begin(), prefix.end(), data.begin());
}

} // namespace

struct certificate_identity::impl {
    pkey_ptr key;
};

result<certificate_identity> certificate_identity::load(const std::string& certificate_pem,
                                                        const std::string& private_key_pem)
{
    std::FILE* f = std::fopen(certificate_pem.c_str(), "r");
    if (f == nullptr) {
        return error{errc::io, certificate_pem + ": cannot read the certificate"};
    }
    x509_ptr cert(PEM_read_X509(f, nullptr, nullptr, nullptr));
    std::fclose(f);
    if (!cert) {
        return error{errc::config_bad_value, certificate_pem + ": not a PEM X.509 certificate"};
    }
    f = std::fopen(private_key_pem.c_str(), "r");
    if (f == nullptr) {
        return error{errc::io, private_key_pem + ": cannot read the private key"};
    }
    pkey_ptr key(PEM_read_PrivateKey(f, nullptr, nullptr, nullptr));
    std::fclose(f);
    if (!key) {
        return error{errc::config_bad_value, private_key_pem + ": not a PEM private key (unencrypted)"};
    }
    if (prefix_for(key.get()).empty()) {
        return error{errc::unsupported, private_key_pem + ": only ECDSA and RSA keys sign GSA_AUTH"};
    }
    if (X509_check_private_key(cert.get(), key.get()) != 1) {
        return error{errc::config_bad_value, private_key_pem + ": does not belong to " + certificate_pem};
    }
    const std::string cn = common_name_of(cert.get());
    if (cn.empty()) {
        return error{errc::config_bad_value, certificate_pem + ": no subject commonName (it is the IKE identity)"};
    }
    const int n = i2d_X509(cert.get(), nullptr);
    bytes der(static_cast<size_t>(std::max(n, 0)));
    unsigned char* p = der.data();
    i2d_X509(cert.get(), &p);
    auto s = std::make_unique<impl>();
    s->key = std::move(key);
    return certificate_identity(std::move(s), std::move(der), cn);
}

certificate_identity::certificate_identity(std::unique_ptr<impl> s, bytes der, std::string cn)
    : _s(std::move(s)), _der(std::move(der)), _cn(std::move(cn))
{
}
certificate_identity::certificate_identity(certificate_identity&&) noexcept = default;
certificate_identity& certificate_identity::operator=(certificate_identity&&) noexcept = default;
certificate_identity::~certificate_identity() = default;

result<bytes> certificate_identity::sign_auth(byte_view octets) const
{
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    size_t len = 0;
    if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, _s->key.get()) != 1 ||
        EVP_DigestSign(ctx.get(), nullptr, &len, octets.data(), octets.size()) != 1) {
        return error{errc::unsupported, "certificate signature: OpenSSL refused"};
    }
    const byte_view prefix = prefix_for(_s->key.get());
    bytes out(prefix.begin(), prefix.end());
    out.resize(prefix.size() + len);
    if (EVP_DigestSign(ctx.get(), out.data() + prefix.size(), &len, octets.data(), octets.size()) != 1) {
        return error{errc::unsupported, "certificate signature: OpenSSL refused"};
    }
    out.resize(prefix.size() + len);
    return out;
}

struct verified_peer::impl {
    pkey_ptr key;
};

verified_peer::verified_peer(std::unique_ptr<impl> s, std::string cn) : _s(std::move(s)), _cn(std::move(cn)) {}
verified_peer::verified_peer(verified_peer&&) noexcept = default;
verified_peer& verified_peer::operator=(verified_peer&&) noexcept = default;
verified_peer::~verified_peer() = default;

bool verified_peer::verify_auth(byte_view octets, byte_view auth_data) const
{
    const byte_view prefix = prefix_for(_s->key.get());
    if (prefix.empty() || !starts_with(auth_data, prefix)) {
        return false; // an algorithm other than the one the certificate's key can verify
    }
    const byte_view sig = auth_data.subspan(prefix.size());
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    return ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, _s->key.get()) == 1 &&
           EVP_DigestVerify(ctx.get(), sig.data(), sig.size(), octets.data(), octets.size()) == 1;
}

struct trust_anchors::impl {
    std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)> store{X509_STORE_new(), X509_STORE_free};
};

result<trust_anchors> trust_anchors::load(const std::string& ca_pem)
{
    auto s = std::make_unique<impl>();
    if (!s->store || X509_STORE_load_file(s->store.get(), ca_pem.c_str()) != 1) {
        return error{errc::config_bad_value, ca_pem + ": cannot load CA certificates (PEM)"};
    }
    return trust_anchors(std::move(s));
}

trust_anchors::trust_anchors(std::unique_ptr<impl> s) : _s(std::move(s)) {}
trust_anchors::trust_anchors(trust_anchors&&) noexcept = default;
trust_anchors& trust_anchors::operator=(trust_anchors&&) noexcept = default;
trust_anchors::~trust_anchors() = default;

result<verified_peer> trust_anchors::verify(byte_view certificate_der) const
{
    const unsigned char* p = certificate_der.data();
    x509_ptr cert(d2i_X509(nullptr, &p, static_cast<long>(certificate_der.size())));
    if (!cert || p != certificate_der.data() + certificate_der.size()) {
        return error{errc::config_bad_value, "CERT: not one DER X.509 certificate"};
    }
    std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)> ctx(X509_STORE_CTX_new(), X509_STORE_CTX_free);
    if (!ctx || X509_STORE_CTX_init(ctx.get(), _s->store.get(), cert.get(), nullptr) != 1) {
        return error{errc::unsupported, "CERT: cannot verify (OpenSSL)"};
    }
    if (X509_verify_cert(ctx.get()) != 1) {
        return error{errc::config_bad_value, std::string("CERT: ") +
                                                 X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()))};
    }
    auto s = std::make_unique<verified_peer::impl>();
    s->key.reset(X509_get_pubkey(cert.get()));
    if (!s->key || prefix_for(s->key.get()).empty()) {
        return error{errc::unsupported, "CERT: only ECDSA and RSA keys"};
    }
    return verified_peer(std::move(s), common_name_of(cert.get()));
}

result<certificate_auth> certificate_auth::load(const certificate_config& c, const std::string& identity)
{
    certificate_auth out;
    if (c.certificate_file.empty() != c.private_key_file.empty()) {
        return error{errc::config_missing_key, "a certificate needs both certificate_file and private_key_file"};
    }
    if (!c.certificate_file.empty()) {
        auto own = certificate_identity::load(c.certificate_file, c.private_key_file);
        if (!own) {
            return own.err();
        }
        if (own->common_name() != identity) {
            return error{errc::config_bad_value, c.certificate_file + ": commonName '" + own->common_name() +
                                                     "' is not the identity '" + identity + "'"};
        }
        out.own = std::move(own.value());
    }
    if (!c.ca_file.empty()) {
        auto anchors = trust_anchors::load(c.ca_file);
        if (!anchors) {
            return anchors.err();
        }
        out.anchors = std::move(anchors.value());
    }
    return out;
}

result<std::vector<payload>> certificate_auth::sign(const ike_sa& sa, ike_role who, const id_payload& id) const
{
    result<bytes> sig = own->sign_auth(sa.signed_octets(who, id));
    if (!sig) {
        return sig.err();
    }
    bytes cert{cert_encoding_x509_signature};
    cert.insert(cert.end(), own->der().begin(), own->der().end());
    return std::vector<payload>{payload{payload_type::cert, false, opaque_payload{std::move(cert)}},
                                payload{payload_type::auth, false, auth_payload{auth_method::digital_signature, std::move(*sig)}}};
}

result<void> certificate_auth::verify(const std::vector<payload>& msg, const ike_sa& sa, ike_role peer,
                                      const id_payload& id, const std::string& identity) const
{
    const auto* cert = find_payload<opaque_payload>(msg, payload_type::cert);
    const auto* auth = find_payload<auth_payload>(msg, payload_type::auth);
    if (!anchors) {
        return error{errc::config_reference, "a certificate signature, and no ca_file to verify it"};
    }
    if (cert == nullptr || auth == nullptr || cert->body.empty() || cert->body[0] != cert_encoding_x509_signature) {
        return error{errc::config_bad_value, "digital signature AUTH without an X.509 CERT payload"};
    }
    auto peer_cert = anchors->verify(byte_view(cert->body).subspan(1));
    if (!peer_cert) {
        return peer_cert.err();
    }
    if (peer_cert->common_name() != identity) {
        return error{errc::config_bad_value, "certificate commonName '" + peer_cert->common_name() +
                                                 "' is not the identity '" + identity + "'"};
    }
    if (!peer_cert->verify_auth(sa.signed_octets(peer, id), auth->data)) {
        return error{errc::config_bad_value, "the AUTH signature does not verify"};
    }
    return {};
}

} // namespace msecgw::gkm
