#pragma once
/// Byte buffers for key management: plain `bytes` for wire data and `secret` for key material,
/// which is wiped (OPENSSL_cleanse) whenever it is destroyed or overwritten.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace msecgw::gkm {

using bytes = std::vector<uint8_t>;
using byte_view = std::span<const uint8_t>;

/// Key material. Never logged; copies are explicit (`clone`) so a stray copy is visible in review.
class secret {
public:
    secret() = default;
    explicit secret(size_t size) : _data(size, 0) {}
    explicit secret(byte_view data) : _data(data.begin(), data.end()) {}
    ~secret() { wipe(); }
    secret(secret&& other) noexcept : _data(std::move(other._data)) { other._data.clear(); }
    secret& operator=(secret&& other) noexcept;
    secret(const secret&) = delete;
    secret& operator=(const secret&) = delete;

    secret clone() const { return secret(view()); }
    byte_view view() const { return {_data.data(), _data.size()}; }
    std::span<uint8_t> mutable_view() { return {_data.data(), _data.size()}; }
    const uint8_t* data() const { return _data.data(); }
    size_t size() const { return _data.size(); }
    bool empty() const { return _data.empty(); }
    /// The first n bytes and the rest, as new secrets (key ‖ salt splits).
    secret first(size_t n) const { return secret(view().first(n)); }
    secret after(size_t n) const { return secret(view().subspan(n)); }

private:
    void wipe();
    std::vector<uint8_t> _data;
};

/// Constant-time equality of two equal-length buffers (false when lengths differ).
bool equal_constant_time(byte_view a, byte_view b);

/// Lower-case hex, for test vectors and the operator keylog only.
std::string to_hex(byte_view data);
/// Parses hex (whitespace ignored); empty result on a bad digit or odd length.
bytes from_hex(std::string_view hex);

inline byte_view as_bytes(std::string_view s)
{
    return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

} // namespace msecgw::gkm
