#pragma once
/// IKEv2 / G-IKEv2 cryptography on OpenSSL 3 EVP: PRF_HMAC_SHA2_256, prf+ (RFC 7296 §2.13),
/// SKEYSEED and SK_* (§2.14), ECDH groups 19 and 31 (RFC 5903, RFC 8031), AES-GCM for the SK
/// payload (RFC 5282) and AES key wrap with padding (RFC 5649). Control core only.

#include <cstdint>
#include <memory>

#include "bytes.hh"
#include "errors.hh"

namespace msecgw::gkm {

inline constexpr size_t prf_size = 32;   ///< PRF_HMAC_SHA2_256 output and preferred key size
inline constexpr size_t gcm_salt_size = 4;
inline constexpr size_t gcm_iv_size = 8;
inline constexpr size_t gcm_icv_size = 16;

/// PRF_HMAC_SHA2_256(key, data).
secret prf(byte_view key, byte_view data);

/// prf+(key, seed) truncated to length bytes: T1 = prf(K, S | 0x01), Tn = prf(K, Tn-1 | S | n).
/// length must be at most 255 * 32.
secret prf_plus(byte_view key, byte_view seed, size_t length);

/// The keys of one IKE SA for ENCR_AES_GCM_16 (no integrity transform): sk_ei / sk_er are the
/// encryption key followed by the 4-byte salt.
struct ike_sa_keys {
    secret sk_d, sk_ai, sk_ar, sk_ei, sk_er, sk_pi, sk_pr;
};

/// SKEYSEED = prf(Ni | Nr, g^ir); {SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr} =
/// prf+(SKEYSEED, Ni | Nr | SPIi | SPIr). encr_key_size is 16 or 32 (AES-128/256-GCM).
ike_sa_keys derive_ike_sa_keys(byte_view nonce_i, byte_view nonce_r, byte_view shared_secret,
                               uint64_t spi_i, uint64_t spi_r, size_t encr_key_size);

/// IKEv2 key exchange methods we implement (Transform Type 4 IDs).
enum class dh_group : uint16_t {
    ecp256 = 19,      ///< RFC 5903: KE data x ‖ y (64 bytes), shared secret x (32 bytes)
    curve25519 = 31,  ///< RFC 8031: KE data and shared secret 32 bytes
};

bool is_supported(dh_group g);
size_t ke_data_size(dh_group g);

/// One ephemeral ECDH key pair.
class ecdh_key {
public:
    static result<ecdh_key> generate(dh_group g);
    /// A fixed private key (32-byte big-endian scalar for P-256, raw X25519 key): tests only.
    static result<ecdh_key> from_private(dh_group g, byte_view private_key);

    ecdh_key(ecdh_key&&) noexcept;
    ecdh_key& operator=(ecdh_key&&) noexcept;
    ~ecdh_key();

    dh_group group() const { return _group; }
    /// The KE payload's Key Exchange Data.
    const bytes& public_value() const { return _public; }
    /// g^ir from the peer's KE data; rejects points not on the curve and all-zero X25519 output.
    result<secret> shared_secret(byte_view peer_public) const;

private:
    struct pkey_deleter {
        void operator()(void* p) const;
    };
    ecdh_key(dh_group g, void* pkey, bytes pub);
    dh_group _group;
    std::unique_ptr<void, pkey_deleter> _pkey;  ///< EVP_PKEY
    bytes _public;
};

/// AES-GCM with a 16-byte ICV: key_and_salt is the AES key followed by the 4-byte salt, the
/// nonce is salt ‖ iv (8 bytes). Returns ciphertext ‖ ICV.
result<bytes> gcm_seal(byte_view key_and_salt, byte_view iv, byte_view aad, byte_view plaintext);
/// Inverse of gcm_seal; reason::integrity when the ICV does not verify.
result<secret> gcm_open(byte_view key_and_salt, byte_view iv, byte_view aad, byte_view sealed);

/// RFC 5649 AES key wrap with padding (KEK of 16, 24 or 32 bytes).
result<bytes> key_wrap(byte_view kek, byte_view key);
result<secret> key_unwrap(byte_view kek, byte_view wrapped);

/// Cryptographically strong random bytes.
void random_fill(std::span<uint8_t> out);
bytes random_bytes(size_t n);
secret random_secret(size_t n);

} // namespace msecgw::gkm

namespace msecgw::gkm {

/// ECDSA P-256 with SHA-256, the GCKS's key for signing GSA_REKEY messages.
class signing_key {
public:
    static result<signing_key> generate();
    /// The key from private_der() (a persisted GCKS signs with the same key after a restart).
    static result<signing_key> from_private_der(byte_view der);
    signing_key(signing_key&&) noexcept;
    signing_key& operator=(signing_key&&) noexcept;
    ~signing_key();

    /// DER ECDSA-Sig-Value over SHA-256(data).
    result<bytes> sign(byte_view data) const;
    /// The private key, DER (PKCS #8 / SEC 1 as OpenSSL writes it): key material, wrap it before storing.
    secret private_der() const;
    /// SubjectPublicKeyInfo (DER) to give to group members.
    const bytes& public_key_der() const { return _public_der; }

    /// Takes ownership of an EVP_PKEY (crypto.cc only).
    static signing_key adopt(void* pkey, bytes public_der);

private:
    signing_key(void* pkey, bytes der);
    struct pkey_deleter {
        void operator()(void* p) const;
    };
    std::unique_ptr<void, pkey_deleter> _pkey;
    bytes _public_der;
};

/// An ECDSA P-256 public key parsed once (parsing DER costs about as much as verifying).
class verify_key {
public:
    static result<verify_key> parse(byte_view public_key_der);
    verify_key(verify_key&&) noexcept;
    verify_key& operator=(verify_key&&) noexcept;
    ~verify_key();

    /// ECDSA-Sig-Value (DER) over SHA-256(data).
    bool verify(byte_view data, byte_view signature) const;

private:
    explicit verify_key(void* pkey);
    struct pkey_deleter {
        void operator()(void* p) const;
    };
    std::unique_ptr<void, pkey_deleter> _pkey;
};

/// Verifies an ECDSA P-256/SHA-256 signature against a DER SubjectPublicKeyInfo.
bool verify_signature(byte_view public_key_der, byte_view data, byte_view signature);

} // namespace msecgw::gkm
