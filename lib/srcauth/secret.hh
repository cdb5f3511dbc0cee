#pragma once
/// Key material of lib/srcauth in types that wipe themselves (OPENSSL_cleanse) on destruction.
/// Neither type has an output operator: keys are never printed.

#include <openssl/crypto.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

namespace msecgw::srcauth {

/// A fixed-size key held by value (TESLA chain keys are 16 bytes).
template <size_t N>
struct secret_key {
    std::array<uint8_t, N> bytes{};

    secret_key() = default;
    secret_key(const secret_key&) = default;
    secret_key& operator=(const secret_key&) = default;
    ~secret_key() { OPENSSL_cleanse(bytes.data(), N); }

    const uint8_t* data() const { return bytes.data(); }
    uint8_t* data() { return bytes.data(); }
    std::span<const uint8_t, N> view() const { return std::span<const uint8_t, N>(bytes); }
};

/// A heap array of T allocated once (at creation, control core) and wiped when destroyed.
template <class T>
class secret_array {
public:
    secret_array() = default;
    explicit secret_array(size_t n) : _p(new T[n]()), _n(n) {}
    secret_array(secret_array&& o) noexcept : _p(std::move(o._p)), _n(o._n) { o._n = 0; }
    secret_array& operator=(secret_array&& o) noexcept
    {
        wipe();
        _p = std::move(o._p);
        _n = o._n;
        o._n = 0;
        return *this;
    }
    ~secret_array() { wipe(); }

    T& operator[](size_t i) { return _p[i]; }
    const T& operator[](size_t i) const { return _p[i]; }
    size_t size() const { return _n; }

private:
    void wipe()
    {
        if (_p) {
            OPENSSL_cleanse(_p.get(), _n * sizeof(T));
        }
    }
    std::unique_ptr<T[]> _p;
    size_t _n = 0;
};

} // namespace msecgw::srcauth
