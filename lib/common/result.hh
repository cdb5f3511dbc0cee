#pragma once
/// Expected-style results for the control plane (config, ports, key management).
/// Nothing here is used on a worker lcore.

#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace msecgw {

/// Closed set of error classes; the detail string says what and where.
enum class errc {
    config_syntax,    ///< YAML does not parse
    config_unknown_key,
    config_missing_key,
    config_bad_value,
    config_reference, ///< names something that does not exist (SA, port)
    config_duplicate,
    io,               ///< file cannot be read or written
    dpdk,             ///< a DPDK call failed
    unsupported,      ///< the device or build cannot do what was asked
};

std::string_view to_string(errc e);

struct error {
    errc code;
    std::string detail; ///< one line, e.g. "c.yaml:12: policies[3].sa: no SA named 'x'"
};

/// A value or an error. Minimal stand-in for C++23 std::expected.
template <class T>
class [[nodiscard]] result {
public:
    result(T value) : _v(std::in_place_index<0>, std::move(value)) {}
    result(error err) : _v(std::in_place_index<1>, std::move(err)) {}

    bool ok() const { return _v.index() == 0; }
    explicit operator bool() const { return ok(); }
    T& value() & { return std::get<0>(_v); }
    const T& value() const& { return std::get<0>(_v); }
    T&& value() && { return std::get<0>(std::move(_v)); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    T& operator*() { return value(); }
    const error& err() const { return std::get<1>(_v); }

private:
    std::variant<T, error> _v;
};

/// result<void>: success or an error.
template <>
class [[nodiscard]] result<void> {
public:
    result() = default;
    result(error err) : _err(std::move(err)), _failed(true) {}
    bool ok() const { return !_failed; }
    explicit operator bool() const { return ok(); }
    const error& err() const { return _err; }

private:
    error _err{};
    bool _failed = false;
};

} // namespace msecgw
