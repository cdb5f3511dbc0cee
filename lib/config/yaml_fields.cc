#include "yaml_fields.hh"

#include <openssl/crypto.h>

#include <algorithm>
#include <charconv>

namespace msecgw::config::detail {


std::string joined(std::initializer_list<std::string_view> keys)
{
    std::string s;
    for (auto k : keys) {
        s += (s.empty() ? "" : ", ") + std::string(k);
    }
    return s;
}

namespace {

int line_of(const YAML::Node& n)
{
    return n.Mark().is_null() ? 1 : n.Mark().line + 1;
}

} // namespace

/// Every key of a mapping must be one of `keys`, and appear once (YAML requires unique keys;
/// yaml-cpp would silently keep the first of two `policies:`).
result<void> only_keys(const at& a, std::initializer_list<std::string_view> keys)
{
    if (!a.node.IsMap()) {
        return a.fail(errc::config_bad_value,
                      a.node.IsNull() ? "empty value, expected a mapping" : "expected a mapping");
    }
    std::vector<std::pair<std::string, int>> seen;
    for (const auto& kv : a.node) {
        if (!kv.first.IsScalar()) {
            return at{a.file, kv.first, a.path}.fail(errc::config_unknown_key, "keys must be plain names");
        }
        const std::string& k = kv.first.Scalar();
        const at here{a.file, kv.first, a.path.empty() ? k : a.path + "." + k};
        if (std::find(keys.begin(), keys.end(), k) == keys.end()) {
            return here.fail(errc::config_unknown_key, "unknown key (expected one of: " + joined(keys) + ")");
        }
        for (const auto& [name, line] : seen) {
            if (name == k) {
                return here.fail(errc::config_duplicate,
                                 "key given twice (first on line " + std::to_string(line) + ")");
            }
        }
        seen.emplace_back(k, line_of(kv.first));
    }
    return {};
}

result<std::string> scalar(const at& a)
{
    if (!a.node.IsScalar()) {
        return a.fail(errc::config_bad_value, a.node.IsNull() ? "empty value" : "expected a scalar value");
    }
    return a.node.Scalar();
}

result<void> require(const at& a, std::initializer_list<const char*> keys)
{
    for (const char* k : keys) {
        if (!a.node[k]) {
            return a.fail(errc::config_missing_key, std::string("missing key '") + k + "'");
        }
    }
    return {};
}

result<std::string> name_at(const at& a)
{
    auto name = scalar(a);
    if (!name) {
        return name.err();
    }
    const bool name_ok = !name->empty() && name->size() <= 32 &&
                         name->find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") ==
                             std::string::npos;
    if (!name_ok) {
        return a.fail(errc::config_bad_value, "expected 1..32 of [A-Za-z0-9_.-]");
    }
    return name;
}

result<uint16_t> region_of(const at& a, const gateway_cfg& cfg)
{
    if (!a.node["region"]) {
        return uint16_t{0};
    }
    const at r = a.child(a.node["region"], "region");
    auto name = name_at(r);
    if (!name) {
        return name.err();
    }
    for (std::size_t i = 0; i < cfg.regions.size(); ++i) {
        if (cfg.regions[i] == *name) {
            return static_cast<uint16_t>(i);
        }
    }
    return r.fail(errc::config_reference, cfg.regions.empty()
                                              ? "region '" + *name + "' is not declared (top-level key 'regions')"
                                              : "region '" + *name + "' is not in 'regions'");
}

result<uint64_t> integer(const at& a, uint64_t lo, uint64_t hi)
{
    auto s = scalar(a);
    if (!s) {
        return s.err();
    }
    const std::string& t = *s;
    uint64_t v = 0;
    const bool hex = t.size() > 2 && t[0] == '0' && (t[1] == 'x' || t[1] == 'X');
    const char* b = t.data() + (hex ? 2 : 0);
    auto [p, ec] = std::from_chars(b, t.data() + t.size(), v, hex ? 16 : 10);
    if (ec != std::errc() || p != t.data() + t.size() || t.empty()) {
        return a.fail(errc::config_bad_value, "expected an integer, got '" + t + "'");
    }
    if (v < lo || v > hi) {
        return a.fail(errc::config_bad_value,
                      "expected " + std::to_string(lo) + ".." + std::to_string(hi) + ", got " + t);
    }
    return v;
}

result<std::string> one_of(const at& a, std::initializer_list<std::string_view> values)
{
    auto s = scalar(a);
    if (!s) {
        return s.err();
    }
    if (std::find(values.begin(), values.end(), *s) == values.end()) {
        return a.fail(errc::config_bad_value, "expected one of: " + joined(values) + ", got '" + *s + "'");
    }
    return s;
}

result<ip_prefix> prefix_at(const at& a)
{
    auto s = scalar(a);
    if (!s) {
        return s.err();
    }
    auto p = parse_prefix(*s);
    if (!p) {
        return a.fail(errc::config_bad_value, p.err().detail);
    }
    return p;
}

/// "N" or "N-M" within lo..hi.
result<u16_range> range_at(const at& a, uint16_t lo, uint16_t hi)
{
    auto s = scalar(a);
    if (!s) {
        return s.err();
    }
    const auto dash = s->find('-');
    auto num = [&](std::string_view t) -> result<uint16_t> {
        unsigned v = 0;
        auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
        if (ec != std::errc() || p != t.data() + t.size() || t.empty() || v < lo || v > hi) {
            return a.fail(errc::config_bad_value, "expected N or N-M with " + std::to_string(lo) + " <= N <= M <= " +
                                                      std::to_string(hi) + ", got '" + *s + "'");
        }
        return static_cast<uint16_t>(v);
    };
    const std::string_view t = *s;
    auto first = num(t.substr(0, dash));
    if (!first) {
        return first.err();
    }
    auto second = dash == std::string::npos ? first : num(t.substr(dash + 1));
    if (!second) {
        return second.err();
    }
    if (*second < *first) {
        return a.fail(errc::config_bad_value, "range '" + *s + "' ends before it starts");
    }
    return u16_range{*first, *second};
}

result<std::vector<uint8_t>> hex_bytes(const at& a)
{
    auto s = scalar(a);
    if (!s) {
        return s.err();
    }
    std::string& t = *s;
    struct wipe_text {
        std::string& t;
        ~wipe_text() { OPENSSL_cleanse(t.data(), t.size()); }
    } wipe{t}; // our copy of the text may be a key: zero it on every path out
    if (t.size() < 2 || t[0] != '0' || (t[1] != 'x' && t[1] != 'X') || t.size() % 2 != 0) {
        return a.fail(errc::config_bad_value, "expected hex bytes written 0x..., an even number of digits");
    }
    std::vector<uint8_t> out;
    out.reserve(t.size() / 2); // no reallocation: it would free a buffer holding key bytes unzeroed
    for (std::size_t i = 2; i < t.size(); i += 2) {
        unsigned v = 0;
        auto [p, ec] = std::from_chars(t.data() + i, t.data() + i + 2, v, 16);
        if (ec != std::errc() || p != t.data() + i + 2) {
            OPENSSL_cleanse(out.data(), out.size());
            return a.fail(errc::config_bad_value, "not a hex digit at position " + std::to_string(i));
        }
        out.push_back(static_cast<uint8_t>(v));
    }
    return out;
}

bool mixes_families(const ip_prefix& a, const ip_prefix& b)
{
    return !a.is_any() && !b.is_any() && a.family != b.family;
}


} // namespace msecgw::config::detail
