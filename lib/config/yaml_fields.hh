#pragma once
// Internal: typed reads of YAML nodes that fail with one line naming file:line: key path.

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "config.hh"

namespace msecgw::config::detail {

/// Where a value sits: file, 1-based line, key path; formats the one-line error
/// `file:line: key.path: what`. Holds the node by value (a YAML::Node is a handle).
struct at {
    const std::string& file;
    const YAML::Node node; // const: operator[] must never insert keys
    std::string path;
    int key_line = 0;      ///< 1-based line of the key, for values whose own mark is unusable

    /// 1-based line of the value; an empty value (`side:`) is marked at the next token, so use its key's.
    int line() const
    {
        if (key_line > 0 && (node.IsNull() || node.Mark().is_null())) {
            return key_line;
        }
        return node.Mark().is_null() ? 1 : node.Mark().line + 1;
    }
    error fail(errc code, const std::string& what) const
    {
        return error{code, file + ":" + std::to_string(line()) + ": " + (path.empty() ? "(top)" : path) + ": " + what};
    }
    /// The value `n` of this mapping's `key`.
    at child(const YAML::Node& n, const std::string& key) const
    {
        return at{file, n, path.empty() ? key : path + "." + key, line_of_key(key)};
    }
    at item(const YAML::Node& n, std::size_t i) const { return at{file, n, path + "[" + std::to_string(i) + "]"}; }

private:
    int line_of_key(const std::string& key) const
    {
        if (node.IsMap()) {
            for (const auto& kv : node) {
                if (kv.first.IsScalar() && kv.first.Scalar() == key && !kv.first.Mark().is_null()) {
                    return kv.first.Mark().line + 1;
                }
            }
        }
        return 0;
    }
};

std::string joined(std::initializer_list<std::string_view> keys);
/// Every key of the mapping must be one of `keys` (else config_unknown_key naming the key).
result<void> only_keys(const at& a, std::initializer_list<std::string_view> keys);
result<std::string> scalar(const at& a);
/// Every key in `keys` must be present (else config_missing_key naming the first one missing).
result<void> require(const at& a, std::initializer_list<const char*> keys);
/// A name things refer to (SAs, groups): 1..32 of [A-Za-z0-9_.-].
result<std::string> name_at(const at& a);
/// The optional `region` key of mapping `a`: the index of a name in cfg.regions; absent = 0.
result<uint16_t> region_of(const at& a, const gateway_cfg& cfg);
/// Decimal or 0x-hex integer within lo..hi.
result<uint64_t> integer(const at& a, uint64_t lo, uint64_t hi);
result<std::string> one_of(const at& a, std::initializer_list<std::string_view> values);
result<ip_prefix> prefix_at(const at& a);
/// "N" or "N-M" within lo..hi.
result<u16_range> range_at(const at& a, uint16_t lo, uint16_t hi);
/// 0x-prefixed hex; the value is never echoed in errors (it may be a key).
result<std::vector<uint8_t>> hex_bytes(const at& a);
bool mixes_families(const ip_prefix& a, const ip_prefix& b);

} // namespace msecgw::config::detail
