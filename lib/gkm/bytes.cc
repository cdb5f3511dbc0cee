#include "bytes.hh"

#include <openssl/crypto.h>

#include "errors.hh"

namespace msecgw::gkm {

secret& secret::operator=(secret&& other) noexcept
{
    if (this != &other) {
        wipe();
        _data = std::move(other._data);
        other._data.clear();
    }
    return *this;
}

void secret::wipe()
{
    if (!_data.empty()) {
        OPENSSL_cleanse(_data.data(), _data.size());
    }
}

bool equal_constant_time(byte_view a, byte_view b)
{
    return a.size() == b.size() && (a.empty() || CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0);
}

std::string to_hex(byte_view data)
{
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(2 * data.size());
    for (uint8_t b : data) {
        out.push_back(digits[b >> 4]);
        out.push_back(digits[b & 0xf]);
    }
    return out;
}

bytes from_hex(std::string_view hex)
{
    bytes out;
    int high = -1;
    for (char c : hex) {
        int v;
        if (c >= '0' && c <= '9') {
            v = c - '0';
        } else if (c >= 'a' && c <= 'f') {
            v = c - 'a' + 10;
        } else if (c >= 'A' && c <= 'F') {
            v = c - 'A' + 10;
        } else if (c == ' ' || c == '\n' || c == '\t') {
            continue;
        } else {
            return {};
        }
        if (high < 0) {
            high = v;
        } else {
            out.push_back(static_cast<uint8_t>(high << 4 | v));
            high = -1;
        }
    }
    return high < 0 ? out : bytes{};
}

std::string_view to_string(reason r)
{
    switch (r) {
    case reason::truncated: return "truncated";
    case reason::bad_length: return "bad_length";
    case reason::bad_version: return "bad_version";
    case reason::bad_header: return "bad_header";
    case reason::unsupported_critical: return "unsupported_critical";
    case reason::bad_substructure: return "bad_substructure";
    case reason::bad_attribute: return "bad_attribute";
    case reason::missing_payload: return "missing_payload";
    case reason::unexpected_payload: return "unexpected_payload";
    case reason::integrity: return "integrity";
    case reason::crypto: return "crypto";
    case reason::unsupported: return "unsupported";
    case reason::count_: break;
    }
    return "unknown";
}

bool has_reason(const error& err, reason r)
{
    std::string_view name = to_string(r);
    return err.detail.size() > name.size() && err.detail.compare(0, name.size(), name) == 0 &&
           err.detail[name.size()] == ':';
}

} // namespace msecgw::gkm
