#pragma once
/// IKEv2 (RFC 7296 §3) and G-IKEv2 (RFC 9838 §4) payloads as plain structs, with encode and a
/// strictly bounds-checked decode. Numbers are IANA's "IKEv2 Parameters" registry values.

#include <cstdint>
#include <optional>
#include <variant>
#include <vector>

#include "bytes.hh"
#include "errors.hh"

namespace msecgw::gkm {

enum class payload_type : uint8_t {
    none = 0,
    sa = 33,
    ke = 34,
    idi = 35,
    idr = 36,
    cert = 37,
    certreq = 38,
    auth = 39,
    nonce = 40,
    notify = 41,
    del = 42,
    vendor_id = 43,
    sk = 46,
    idg = 50,  ///< RFC 9838 Group Identification
    gsa = 51,  ///< RFC 9838 Group Security Association
    kd = 52,   ///< RFC 9838 Key Download
};

enum class transform_type : uint8_t { encr = 1, prf = 2, integ = 3, ke = 4, sn = 5, kwa = 13, gcauth = 14 };
enum class protocol_id : uint8_t { none = 0, ike = 1, ah = 2, esp = 3, gike_update = 6 };
enum class id_type : uint8_t { ipv4_addr = 1, fqdn = 2, rfc822_addr = 3, ipv6_addr = 5, key_id = 11 };
enum class auth_method : uint8_t { shared_key_mic = 2, digital_signature = 14 };

enum class notify_type : uint16_t {
    unsupported_critical_payload = 1,
    invalid_ike_spi = 4,
    invalid_major_version = 5,
    invalid_syntax = 7,
    invalid_message_id = 9,
    no_proposal_chosen = 14,
    invalid_ke_payload = 17,
    authentication_failed = 24,
    invalid_group_id = 45,
    authorization_failed = 46,
    registration_failed = 49,
    cookie = 16390,
    group_sender = 16429,
};
/// Notify types below this value are errors (RFC 7296 §3.10.1).
inline constexpr uint16_t notify_error_limit = 16384;

inline constexpr uint16_t encr_aes_gcm_16 = 20;
inline constexpr uint16_t prf_hmac_sha2_256 = 5;
inline constexpr uint16_t kw_5649_128 = 1;
inline constexpr uint16_t kw_5649_256 = 3;
inline constexpr uint16_t sn_32bit_unspecified = 2;  ///< multi-sender group SAs (RFC 9838)
inline constexpr uint16_t attr_key_length = 14;       ///< transform attribute, in bits

/// RFC 9838 GSA policy types, attributes and key bags.
enum class gsa_policy_type : uint8_t { kek = 1, tek = 2, group_wide = 3 };
enum class gsa_attribute : uint16_t { key_lifetime = 1, initial_message_id = 2, next_spi = 3 };
enum class gwp_attribute : uint16_t { atd = 1, dtd = 2, sender_id_bits = 3 };
enum class key_bag_type : uint8_t { group = 1, member = 2 };
enum class group_key_attribute : uint16_t { sa_key = 1 };
enum class member_key_attribute : uint16_t { wrap_key = 1, auth_key = 2, gm_sender_id = 3 };

/// RFC 7296 §3.3.5 data attribute: TV (2-byte value, AF bit set) or TLV.
struct attribute {
    uint16_t type = 0;
    bytes value;
    bool tv = false;

    static attribute short_form(uint16_t type, uint16_t value);
    static attribute long_form(uint16_t type, byte_view value);
    static attribute u32(uint16_t type, uint32_t value);
    /// The value as an unsigned integer of 1 to 8 bytes.
    std::optional<uint64_t> as_uint() const;
};

const attribute* find_attribute(const std::vector<attribute>& attrs, uint16_t type);

struct transform {
    transform_type type{};
    uint16_t id = 0;
    std::vector<attribute> attributes;

    std::optional<uint16_t> key_length_bits() const;
    static transform make(transform_type type, uint16_t id, std::optional<uint16_t> key_bits = std::nullopt);
};

struct proposal {
    uint8_t number = 1;
    protocol_id protocol = protocol_id::ike;
    bytes spi;
    std::vector<transform> transforms;

    const transform* find(transform_type type) const;
};

struct sa_payload {
    std::vector<proposal> proposals;
};

struct ke_payload {
    uint16_t group = 0;
    bytes data;
};

struct nonce_payload {
    bytes data;
};

/// IDi, IDr and IDg share one layout: ID Type, 3 reserved bytes, data.
struct id_payload {
    id_type type = id_type::key_id;
    bytes data;
};

struct auth_payload {
    auth_method method = auth_method::shared_key_mic;
    bytes data;
};

struct notify_payload {
    protocol_id protocol = protocol_id::none;
    bytes spi;
    notify_type type{};
    bytes data;
};

struct delete_payload {
    protocol_id protocol = protocol_id::ike;
    uint8_t spi_size = 0;
    std::vector<bytes> spis;
};

/// RFC 7296 §3.13.1 traffic selector (TS_IPV4_ADDR_RANGE = 7, TS_IPV6_ADDR_RANGE = 8).
struct traffic_selector {
    uint8_t ts_type = 7;
    uint8_t ip_protocol = 0;
    uint16_t start_port = 0;
    uint16_t end_port = 0xffff;
    bytes start_address;
    bytes end_address;
};

/// One GSA policy substructure: Type, RESERVED, Length, Protocol, SPI Size, RESERVED2(2), SPI,
/// then for TEK policies source and destination traffic selectors, for KEK and TEK policies the
/// transform substructures, and for all the policy attributes.
struct gsa_policy {
    gsa_policy_type type = gsa_policy_type::tek;
    protocol_id protocol = protocol_id::esp;
    bytes spi;
    traffic_selector source;       ///< TEK only
    traffic_selector destination;  ///< TEK only
    std::vector<transform> transforms;
    std::vector<attribute> attributes;
};

struct gsa_payload {
    std::vector<gsa_policy> policies;
};

/// RFC 9838 key bag: Bag Type, RESERVED, Length, attributes.
struct key_bag {
    key_bag_type type = key_bag_type::group;
    std::vector<attribute> attributes;
};

struct kd_payload {
    std::vector<key_bag> bags;
};

/// Wrapped key carried in SA_KEY / WRAP_KEY / AUTH_KEY: Key ID(4), KWK ID(4), RFC 5649 output.
struct wrapped_key {
    uint32_t key_id = 0;
    uint32_t kwk_id = 0;  ///< 0: the default wrap key GSK_w of the IKE SA
    bytes wrapped;

    bytes encode() const;
    static result<wrapped_key> decode(byte_view value);
};

/// The SK payload before decryption: first inner payload type and IV ‖ ciphertext ‖ ICV.
struct sk_payload {
    payload_type first_inner = payload_type::none;
    bytes body;
};

/// Any payload we carry without interpreting (CERT, V, unknown non-critical).
struct opaque_payload {
    bytes body;
};

using payload_body = std::variant<sa_payload, ke_payload, nonce_payload, id_payload, auth_payload, notify_payload,
                                  delete_payload, gsa_payload, kd_payload, sk_payload, opaque_payload>;

struct payload {
    payload_type type = payload_type::none;
    bool critical = false;
    payload_body body;
};

/// Appends a chain of payloads (generic headers included); next_after_last is the Next Payload
/// of the last one (none for a chain, the inner type is never needed: SK sets its own).
void encode_payload_chain(bytes& out, std::span<const payload> payloads);

/// Decodes a chain that starts with type first and must fill data exactly.
result<std::vector<payload>> decode_payload_chain(payload_type first, byte_view data);

/// First payload of the given type in a chain, or null.
template <class Body>
const Body* find_payload(const std::vector<payload>& payloads, payload_type type)
{
    for (const payload& p : payloads) {
        if (p.type == type) {
            if (const Body* b = std::get_if<Body>(&p.body)) {
                return b;
            }
        }
    }
    return nullptr;
}

/// First Notify of the given type, or null.
const notify_payload* find_notify(const std::vector<payload>& payloads, notify_type type);
/// First error Notify (type < 16384), or null.
const notify_payload* find_error_notify(const std::vector<payload>& payloads);

} // namespace msecgw::gkm
