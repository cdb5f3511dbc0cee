#pragma once
/// Payload helpers both roles of a G-IKEv2 registration share (internal header).

#include <string>

#include "payloads.hh"
#include "wire.hh"

namespace msecgw::gkm {

/// IDi / IDr as ID_KEY_ID carrying the identity string.
inline id_payload key_id_payload(const std::string& identity)
{
    return id_payload{id_type::key_id, bytes(identity.begin(), identity.end())};
}

inline std::string identity_of(const id_payload& id)
{
    return std::string(id.data.begin(), id.data.end());
}

/// IDg: the group ID as a 4-byte ID_KEY_ID.
inline id_payload group_id_payload(uint32_t group_id)
{
    id_payload id{id_type::key_id, {}};
    wire_writer(id.data).u32(group_id);
    return id;
}

inline std::optional<uint32_t> group_id_of(const id_payload& id)
{
    wire_reader r(id.data);
    auto v = r.u32();
    return id.type == id_type::key_id && v && r.at_end() ? v : std::nullopt;
}

inline payload notify(notify_type type)
{
    return payload{payload_type::notify, false, notify_payload{protocol_id::none, {}, type, {}}};
}

inline bytes spi_bytes(uint32_t spi)
{
    bytes out;
    wire_writer(out).u32(spi);
    return out;
}

/// Nonce size we send: 32 bytes, at least half the PRF key size (RFC 7296 §2.10).
inline constexpr size_t our_nonce_size = 32;

} // namespace msecgw::gkm
