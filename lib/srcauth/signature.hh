#pragma once
/// Ed25519 and ECDSA P-256 on OpenSSL 3 for bootstraps, manifests and signed packets. Keys come
/// from PEM (files named in the config, or PEM text in tests); error messages name the file, never
/// its content. Every signature on the wire is 64 bytes: Ed25519's, or ECDSA's r || s (each 32 bytes
/// big-endian, as in IEEE P1363), converted to and from DER here without allocating.
///
/// What is signed is always a SHA-256 digest D of the covered bytes (computed by the caller, batched
/// on ipsec-mb): ECDSA signs D as the message hash, so the result is an ordinary ECDSA-with-SHA-256
/// signature over the covered bytes; Ed25519 (PureEdDSA) signs the 32 bytes of D.
///
/// OpenSSL allocates inside its sign and verify calls: that is the reason `sign` mode is for low
/// rates and why a manifest's signature can be made on another lcore (manifest.hh).

#include "common/result.hh"
#include "srcauth/wire.hh"

#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace msecgw::srcauth {

inline constexpr size_t signed_digest_len = 32;

struct pkey_holder;

class signer {
public:
    static result<signer> from_pem_file(const std::string& path);
    static result<signer> from_pem(std::string_view pem, std::string_view what = "PEM text");
    /// A fresh key (tests, benchmarks, key provisioning tools).
    static result<signer> generate(wire::sig_alg alg);
    /// The private key as PKCS#8 PEM, to write to a key file (never log it).
    std::string private_pem() const;
    signer(signer&&) noexcept;
    signer& operator=(signer&&) noexcept;
    ~signer();

    wire::sig_alg alg() const { return _alg; }
    /// Signs the 32-byte digest into out (64 bytes). False if OpenSSL fails.
    bool sign_digest(std::span<const uint8_t, signed_digest_len> digest, std::span<uint8_t, wire::sig_len> out);
    /// SubjectPublicKeyInfo as PEM: the trust anchor to give to verifiers.
    std::string public_pem() const;
    /// 24-bit identifier of the public key (key_id_of).
    uint32_t key_id() const;

private:
    signer(std::unique_ptr<pkey_holder> k, wire::sig_alg a);
    std::unique_ptr<pkey_holder> _k;
    wire::sig_alg _alg;
};

class sig_verifier {
public:
    static result<sig_verifier> from_pem_file(const std::string& path);
    static result<sig_verifier> from_pem(std::string_view pem, std::string_view what = "PEM text");
    /// Another verifier of the same public key without parsing it again: the key is shared
    /// (reference-counted, read only), the operation contexts are its own.
    result<sig_verifier> share() const;
    sig_verifier(sig_verifier&&) noexcept;
    sig_verifier& operator=(sig_verifier&&) noexcept;
    ~sig_verifier();

    wire::sig_alg alg() const { return _alg; }
    /// 24-bit identifier of the public key (key_id_of).
    uint32_t key_id() const;
    bool verify_digest(std::span<const uint8_t, signed_digest_len> digest,
                       std::span<const uint8_t, wire::sig_len> sig) const;

private:
    sig_verifier(std::unique_ptr<pkey_holder> k, wire::sig_alg a);
    std::unique_ptr<pkey_holder> _k;
    wire::sig_alg _alg;
};

/// The first 3 bytes of SHA-256 over the DER SubjectPublicKeyInfo: the same on the signing and the
/// verifying side however the PEM files are written (the gateway puts it in its sender ids).
uint32_t key_id_of(const pkey_holder& k);

/// ECDSA signature conversions (exposed for the known-answer tests). der_to_raw: false unless der is
/// exactly SEQUENCE { INTEGER r, INTEGER s } with r, s < 2^256. raw_to_der writes at most 72 bytes
/// and returns the length.
bool ecdsa_der_to_raw(std::span<const uint8_t> der, std::span<uint8_t, wire::sig_len> raw);
size_t ecdsa_raw_to_der(std::span<const uint8_t, wire::sig_len> raw, std::span<uint8_t, 72> der);

} // namespace msecgw::srcauth
