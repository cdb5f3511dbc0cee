#pragma once
/// GSA_AUTH with certificates (RFC 7296 §3.6, §2.15; RFC 7427 Digital Signature authentication):
/// an end-entity X.509 certificate and its private key (ECDSA P-256 or RSA) from PEM files sign the
/// AUTH octets with SHA-256; the peer sends its certificate in a CERT payload (encoding 4, X.509
/// Certificate - Signature) and the receiver verifies it against a CA bundle (PEM), requires its
/// subject commonName to equal the IKE identity, then verifies the signature. Control core only.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bytes.hh"
#include "common/result.hh"
#include "payloads.hh"

namespace msecgw::gkm {

class ike_sa;
enum class ike_role;

/// Certificate authentication settings. With certificate_file and private_key_file this side
/// signs its AUTH (the certificate's commonName must be its identity); with ca_file it accepts
/// peers that sign with a certificate chaining to it (their commonName is their identity).
struct certificate_config {
    std::string certificate_file;
    std::string private_key_file;
    std::string ca_file;
};

/// CERT payload Cert Encoding "X.509 Certificate - Signature" (RFC 7296 §3.6).
inline constexpr uint8_t cert_encoding_x509_signature = 4;

/// Our certificate and private key.
class certificate_identity {
public:
    /// Errors name the file; the key is never printed.
    static result<certificate_identity> load(const std::string& certificate_pem, const std::string& private_key_pem);
    certificate_identity(certificate_identity&&) noexcept;
    certificate_identity& operator=(certificate_identity&&) noexcept;
    ~certificate_identity();

    /// The certificate, DER (what the CERT payload carries after its encoding byte).
    const bytes& der() const { return _der; }
    /// Its subject commonName: the identity this certificate proves.
    const std::string& common_name() const { return _cn; }
    /// RFC 7427 AUTH data: ASN.1 length, AlgorithmIdentifier (ecdsa-with-SHA256 or
    /// sha256WithRSAEncryption), signature over SHA-256(octets).
    result<bytes> sign_auth(byte_view octets) const;

private:
    struct impl;
    explicit certificate_identity(std::unique_ptr<impl> s, bytes der, std::string cn);
    std::unique_ptr<impl> _s;
    bytes _der;
    std::string _cn;
};

/// A peer certificate that chained to the trust anchors.
class verified_peer {
public:
    verified_peer(verified_peer&&) noexcept;
    verified_peer& operator=(verified_peer&&) noexcept;
    ~verified_peer();
    const std::string& common_name() const { return _cn; }
    /// Checks RFC 7427 AUTH data (the algorithm must match the key: ECDSA or RSA with SHA-256).
    bool verify_auth(byte_view octets, byte_view auth_data) const;

private:
    friend class trust_anchors;
    struct impl;
    verified_peer(std::unique_ptr<impl> s, std::string cn);
    std::unique_ptr<impl> _s;
    std::string _cn;
};

/// CA certificates (PEM bundle) peers' certificates must chain to.
class trust_anchors {
public:
    static result<trust_anchors> load(const std::string& ca_pem);
    trust_anchors(trust_anchors&&) noexcept;
    trust_anchors& operator=(trust_anchors&&) noexcept;
    ~trust_anchors();

    /// The certificate (DER) chains to an anchor and is valid now; its CN and public key.
    result<verified_peer> verify(byte_view certificate_der) const;

private:
    struct impl;
    explicit trust_anchors(std::unique_ptr<impl> s);
    std::unique_ptr<impl> _s;
};

/// One party's certificates: its own (to sign) and the anchors (to verify peers), as configured.
struct certificate_auth {
    std::optional<certificate_identity> own;
    std::optional<trust_anchors> anchors;

    /// Loads what `c` names; `identity` must be the certificate's commonName.
    static result<certificate_auth> load(const certificate_config& c, const std::string& identity);
    /// CERT and AUTH (digital signature) payloads of `who` with ID payload `id` (own required).
    result<std::vector<payload>> sign(const ike_sa& sa, ike_role who, const id_payload& id) const;
    /// Checks a peer's CERT + AUTH (digital signature) in `msg`: the certificate chains to the
    /// anchors, its commonName is the identity in `id`, the signature covers the peer's octets.
    result<void> verify(const std::vector<payload>& msg, const ike_sa& sa, ike_role peer, const id_payload& id,
                        const std::string& identity) const;
};

} // namespace msecgw::gkm
