#pragma once
/// One established IKE SA as both roles see it: SK_* keys, the IKE_SA_INIT messages and nonces
/// that AUTH signs (RFC 7296 §2.15), SK payload protection and the G-IKEv2 default wrap key.

#include <cstdint>
#include <optional>
#include <string>

#include "crypto.hh"
#include "message.hh"

namespace msecgw::gkm {

enum class ike_role { initiator, responder };

/// Our only IKE SA suite: ENCR_AES_GCM_16 (256-bit), PRF_HMAC_SHA2_256, the given ECDH group,
/// key wrap KW_5649_256.
proposal make_ike_proposal(dh_group group);
/// An initiator's IKE_SA_INIT request: SA (make_ike_proposal(group)), KE, Ni, and N(COOKIE)
/// first when cookie is not empty (RFC 7296 §2.6).
message ike_sa_init_request(uint64_t spi_i, dh_group group, const bytes& public_value, const bytes& nonce_i,
                            const bytes& cookie = {});
/// The responder's pick from the initiator's SA payload: the first proposal that is exactly our
/// suite for ke_group (the group of the KE payload). Returns the proposal to echo back.
std::optional<proposal> choose_ike_proposal(const sa_payload& offered, dh_group ke_group);

inline constexpr size_t ike_encr_key_size = 32;
inline constexpr size_t wrap_key_size = 32;  ///< KW_5649_256

struct ike_init_exchange {
    uint64_t spi_i = 0;
    uint64_t spi_r = 0;
    bytes nonce_i;
    bytes nonce_r;
    bytes request;   ///< RealMessage1
    bytes response;  ///< RealMessage2
};

class ike_sa {
public:
    ike_sa(ike_role role, ike_init_exchange init, ike_sa_keys keys);

    uint64_t spi_i() const { return _init.spi_i; }
    uint64_t spi_r() const { return _init.spi_r; }
    ike_role role() const { return _role; }

    /// HDR, SK{inner} in our direction.
    result<bytes> seal(exchange_type exchange, uint32_t message_id, bool response, std::span<const payload> inner);
    /// The inner payloads of a received message, checked against the peer's key.
    result<std::vector<payload>> open(const message& m, byte_view datagram) const;

    /// AUTH data for a shared key (RFC 7296 §2.15) as signed by who, whose ID payload is id.
    secret psk_auth(byte_view psk, ike_role who, const id_payload& id) const;
    /// The octets who signs (RFC 7296 §2.15): its IKE_SA_INIT message, the peer's nonce and
    /// prf(SK_p, ID); a certificate signs them as they are, a shared key MACs them.
    bytes signed_octets(ike_role who, const id_payload& id) const;
    /// GSK_w = prf+(SK_d, "Key Wrap for G-IKEv2"): the KWK with KWK ID 0.
    const secret& wrap_key() const { return _wrap_key; }

    /// One record of Wireshark's ikev2_decryption_table UAT (for an operator-requested keylog).
    std::string wireshark_keylog_record() const;

private:
    ike_role _role;
    ike_init_exchange _init;
    ike_sa_keys _keys;
    secret _wrap_key;
    uint64_t _next_iv = 1;
};

} // namespace msecgw::gkm
