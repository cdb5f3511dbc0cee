#pragma once
/// IKEv2 messages (RFC 7296 §3.1 header + payload chain) and the SK payload (§3.14) protected with
/// ENCR_AES_GCM_16 per RFC 5282: 8-byte IV, AAD = IKE header ‖ SK generic header, 16-byte ICV.

#include <cstdint>
#include <vector>

#include "payloads.hh"

namespace msecgw::gkm {

enum class exchange_type : uint8_t {
    ike_sa_init = 34,
    ike_auth = 35,
    create_child_sa = 36,
    informational = 37,
    gsa_auth = 39,          ///< RFC 9838 registration
    gsa_registration = 40,  ///< RFC 9838 registration over an existing IKE SA
    gsa_rekey = 41,         ///< RFC 9838 multicast rekey
    gsa_inband_rekey = 42,
};

inline constexpr size_t ike_header_size = 28;
inline constexpr uint8_t ike_version_2 = 0x20;
inline constexpr uint8_t flag_initiator = 0x08;
inline constexpr uint8_t flag_response = 0x20;
/// Largest datagram we accept or send.
inline constexpr size_t max_message_size = 65535 - 28;

struct ike_header {
    uint64_t spi_i = 0;
    uint64_t spi_r = 0;
    payload_type next = payload_type::none;
    uint8_t version = ike_version_2;
    exchange_type exchange = exchange_type::ike_sa_init;
    uint8_t flags = 0;
    uint32_t message_id = 0;
    uint32_t length = 0;  ///< filled by encode

    bool is_response() const { return (flags & flag_response) != 0; }
    bool from_initiator() const { return (flags & flag_initiator) != 0; }
};

struct message {
    ike_header header;
    std::vector<payload> payloads;  ///< SK, if present, is last and still encrypted
};

/// Header plus unencrypted payload chain.
bytes encode_message(const message& m);
/// Checks the header (version 2, length equals the datagram) and decodes the payload chain.
result<message> decode_message(byte_view datagram);

/// Builds HDR, SK{inner} under key_and_salt (SK_ei or SK_er) with the given 8-byte IV.
result<bytes> seal_message(const ike_header& header, std::span<const payload> inner, byte_view key_and_salt,
                           byte_view iv);
/// Decrypts the SK payload of a decoded message (datagram is the bytes it was decoded from).
result<std::vector<payload>> open_message(const message& m, byte_view datagram, byte_view key_and_salt);

/// Exchange name for diagnostics.
std::string_view to_string(exchange_type e);

} // namespace msecgw::gkm
