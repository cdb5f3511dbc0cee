#pragma once
/// Named reasons for rejecting key-management input. They travel inside msecgw::error: the
/// detail string starts with the reason's name ("truncated: ..."), so logs and tests can match it.

#include <string>
#include <string_view>

#include "common/result.hh"

namespace msecgw::gkm {

enum class reason {
    truncated,             ///< a length runs past the end of the buffer
    bad_length,            ///< a length field is too small or inconsistent with its content
    bad_version,           ///< IKE major version is not 2
    bad_header,            ///< IKE header field invalid (length mismatch, reserved value)
    unsupported_critical,  ///< unknown payload with the critical bit set
    bad_substructure,      ///< proposal/transform/policy/bag framing invalid
    bad_attribute,         ///< data attribute framing invalid
    missing_payload,       ///< a payload the exchange requires is absent
    unexpected_payload,    ///< a payload not allowed here
    integrity,             ///< ICV check failed
    crypto,                ///< an OpenSSL operation failed
    unsupported,           ///< algorithm or group we do not implement
    count_,
};

std::string_view to_string(reason r);

/// Error for rejected input. errc has no protocol class yet (lib/common is shared), so the
/// code is config_bad_value; the reason is the first word of the detail.
inline error make_error(reason r, std::string_view what)
{
    return error{errc::config_bad_value, std::string(to_string(r)) + ": " + std::string(what)};
}

/// True when err was made by make_error(r, ...).
bool has_reason(const error& err, reason r);

} // namespace msecgw::gkm
