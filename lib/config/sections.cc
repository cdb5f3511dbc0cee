#include <set>

#include "sections.hh"

namespace msecgw::config::detail {

namespace {

std::size_t key_bytes(aead_alg a)
{
    return a == aead_alg::aes_128_gcm ? 16 : 32;
}

result<void> parse_sa_key(const at& a, sa_cfg& s)
{
    auto bytes = hex_bytes(a);
    if (!bytes) {
        return bytes.err();
    }
    secret_bytes key(std::move(bytes.value())); // zeroed on every path out
    const std::size_t want = key_bytes(s.aead) + 4;
    if (key.size() != want) {
        // Sizes only: never the value.
        return a.fail(errc::config_bad_value, "expected " + std::to_string(want) + " bytes (" +
                                                  std::to_string(key_bytes(s.aead)) + "-byte key + 4-byte salt) for " +
                                                  std::string(to_string(s.aead)) + ", got " +
                                                  std::to_string(key.size()));
    }
    s.key = std::move(key);
    return {};
}

/// dir, spi and aead (the key length depends on aead).
result<void> parse_sa_params(const at& a, sa_cfg& s)
{
    auto dir = one_of(a.child(a.node["dir"], "dir"), {"out", "in"});
    if (!dir) {
        return dir.err();
    }
    s.dir = *dir == "out" ? direction::out : direction::in;
    auto spi = integer(a.child(a.node["spi"], "spi"), 256, 0xffffffffu);
    if (!spi) {
        return spi.err();
    }
    s.spi = static_cast<uint32_t>(*spi);
    auto alg = one_of(a.child(a.node["aead"], "aead"), {"aes-128-gcm", "aes-256-gcm"});
    if (!alg) {
        return alg.err();
    }
    s.aead = *alg == "aes-128-gcm" ? aead_alg::aes_128_gcm : aead_alg::aes_256_gcm;
    return {};
}

/// Optional dst/src SAD selectors (`any` is the same as leaving the key out) and replay window.
result<void> parse_sa_match(const at& a, sa_cfg& s)
{
    for (const char* k : {"dst", "src"}) {
        if (a.node[k]) {
            auto p = prefix_at(a.child(a.node[k], k));
            if (!p) {
                return p.err();
            }
            if (!p->is_any()) {
                (std::string_view(k) == "dst" ? s.dst : s.src) = *p;
            }
        }
    }
    if (s.dst && s.src && mixes_families(*s.dst, *s.src)) {
        return a.child(a.node["src"], "src").fail(errc::config_bad_value, "src and dst mix IPv4 and IPv6");
    }
    if (a.node["replay_window"]) {
        const at w = a.child(a.node["replay_window"], "replay_window");
        if (s.dir == direction::out) {
            return w.fail(errc::config_bad_value, "only inbound SAs (dir: in) have a replay window");
        }
        auto v = integer(w, 0, 65536);
        if (!v) {
            return v.err();
        }
        s.replay_window = static_cast<uint32_t>(*v);
    }
    return {};
}

/// lifetime: {soft_packets, hard_packets, soft_bytes, hard_bytes, soft_seconds, hard_seconds}
result<void> parse_sa_lifetime(const at& a, sa_cfg& s)
{
    if (auto r = only_keys(a, {"soft_packets", "hard_packets", "soft_bytes", "hard_bytes", "soft_seconds",
                               "hard_seconds"});
        !r) {
        return r;
    }
    struct field {
        const char* key;
        uint64_t* out;
    } fields[] = {{"soft_packets", &s.soft.packets}, {"hard_packets", &s.hard.packets},
                  {"soft_bytes", &s.soft.bytes},     {"hard_bytes", &s.hard.bytes},
                  {"soft_seconds", &s.soft.seconds}, {"hard_seconds", &s.hard.seconds}};
    for (const auto& f : fields) {
        if (a.node[f.key]) {
            auto v = integer(a.child(a.node[f.key], f.key), 1, UINT64_MAX);
            if (!v) {
                return v.err();
            }
            *f.out = *v;
        }
    }
    const std::pair<uint64_t, uint64_t> pairs[] = {{s.soft.packets, s.hard.packets},
                                                   {s.soft.bytes, s.hard.bytes},
                                                   {s.soft.seconds, s.hard.seconds}};
    for (const auto& [soft, hard] : pairs) {
        if (soft != 0 && hard != 0 && soft > hard) {
            return a.fail(errc::config_bad_value, "a soft limit must not exceed its hard limit");
        }
    }
    return {};
}

/// sender_id_bits (0..16) and sender_id (< 2^sender_id_bits): outbound SAs only, the id needs its width.
result<void> parse_sa_sender_id(const at& a, sa_cfg& s)
{
    for (const char* k : {"sender_id_bits", "sender_id"}) {
        if (a.node[k] && s.dir == direction::in) {
            return a.child(a.node[k], k).fail(errc::config_bad_value, "only outbound SAs (dir: out) have a "
                                                                      "Sender-ID: it is the sender's part of the IV");
        }
    }
    if (a.node["sender_id_bits"]) {
        auto bits = integer(a.child(a.node["sender_id_bits"], "sender_id_bits"), 0, max_sender_id_bits);
        if (!bits) {
            return bits.err();
        }
        s.sender_id_bits = static_cast<uint8_t>(*bits);
    }
    if (!a.node["sender_id"]) {
        return {};
    }
    if (!a.node["sender_id_bits"]) {
        return a.fail(errc::config_missing_key, "missing key 'sender_id_bits' (sender_id needs its width in the IV)");
    }
    const at id_at = a.child(a.node["sender_id"], "sender_id");
    auto id = integer(id_at, 0, (uint64_t{1} << max_sender_id_bits) - 1);
    if (!id) {
        return id.err();
    }
    const uint64_t ids = uint64_t{1} << s.sender_id_bits;
    if (*id >= ids) {
        const char* const none = s.sender_id_bits == 0 ? " (0 bits = no Sender-ID)" : "";
        return id_at.fail(errc::config_bad_value, "expected 0.." + std::to_string(ids - 1) +
                                                      " to fit in sender_id_bits " + std::to_string(s.sender_id_bits) +
                                                      none + ", got " + id_at.node.Scalar());
    }
    s.sender_id = static_cast<uint32_t>(*id);
    return {};
}

result<sa_cfg> parse_sa(const at& a)
{
    if (auto r = only_keys(a, {"name", "dir", "spi", "aead", "key", "dst", "src", "replay_window", "lifetime",
                               "sender_id", "sender_id_bits", "source_auth", "region"});
        !r) {
        return r.err();
    }
    if (auto r = require(a, {"name", "dir", "spi", "aead", "key"}); !r) {
        return r.err();
    }
    sa_cfg s;
    s.line = a.line();
    auto name = name_at(a.child(a.node["name"], "name"));
    if (!name) {
        return name.err();
    }
    s.name = std::move(name.value());
    if (auto r = parse_sa_params(a, s); !r) {
        return r.err();
    }
    if (auto r = parse_sa_key(a.child(a.node["key"], "key"), s); !r) {
        return r.err();
    }
    if (auto r = parse_sa_match(a, s); !r) {
        return r.err();
    }
    if (a.node["lifetime"]) {
        if (auto r = parse_sa_lifetime(a.child(a.node["lifetime"], "lifetime"), s); !r) {
            return r.err();
        }
    }
    if (auto r = parse_sa_sender_id(a, s); !r) {
        return r.err();
    }
    if (a.node["source_auth"]) {
        auto sa = parse_source_auth(a.child(a.node["source_auth"], "source_auth"),
                                    s.dir == direction::out ? auth_role::sender : auth_role::verifier);
        if (!sa) {
            return sa.err();
        }
        s.source_auth = std::move(sa.value());
    }
    return s;
}

} // namespace

result<void> parse_sas(const at& a, gateway_cfg& cfg)
{
    if (a.node.IsNull()) {
        return {}; // `sas:` with every entry commented out
    }
    if (!a.node.IsSequence()) {
        return a.fail(errc::config_bad_value, "expected a list of SAs");
    }
    for (std::size_t i = 0; i < a.node.size(); ++i) {
        const at item = a.item(a.node[i], i);
        auto s = parse_sa(item);
        if (!s) {
            return s.err();
        }
        auto region = region_of(item, cfg);
        if (!region) {
            return region.err();
        }
        s->region = *region;
        if (cfg.find_sa(s->name) != nullptr) {
            return item.child(a.node[i]["name"], "name").fail(errc::config_duplicate,
                                                             "SA name '" + s->name + "' is used twice");
        }
        if (s->source_auth) {
            add_source_auth(cfg, s->source_auth);
        }
        cfg.sas.push_back(std::move(s.value()));
    }
    return {};
}

} // namespace msecgw::config::detail
