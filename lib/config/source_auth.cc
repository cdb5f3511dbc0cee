// The `source_auth:` block of an SA or a group (docs/configuration.md, docs/source-auth.md).
// Key files are only named and checked readable here; lib/srcauth loads them on the control core.
#include <fstream>
#include <tuple>

#include "sections.hh"

namespace msecgw::config::detail {

namespace {

/// Keys that only one mode reads.
struct mode_keys {
    source_auth_mode mode;
    std::initializer_list<std::string_view> keys;
};
const mode_keys only_for[] = {
    {source_auth_mode::tesla,
     {"interval_ms", "disclosure_delay", "clock_offset_bound_ms", "chain_length", "bootstrap_period_ms"}},
    {source_auth_mode::manifest, {"manifest_packets", "manifest_max_age_ms", "best_effort", "manifest_signer"}},
};

result<std::string> readable_file(const at& a)
{
    auto path = scalar(a);
    if (!path) {
        return path.err();
    }
    if (path->empty() || !std::ifstream(*path).good()) {
        return a.fail(errc::config_bad_value, "cannot read '" + *path + "'");
    }
    return path;
}

result<void> parse_trust(const at& a, source_auth_cfg& sa)
{
    if (!a.node.IsSequence() || a.node.size() == 0) {
        return a.fail(errc::config_bad_value, "expected a non-empty list of {sender: PREFIX, public_key: PEM-FILE}");
    }
    for (std::size_t i = 0; i < a.node.size(); ++i) {
        const at item = a.item(a.node[i], i);
        if (auto r = only_keys(item, {"sender", "public_key"}); !r) {
            return r;
        }
        if (auto r = require(item, {"sender", "public_key"}); !r) {
            return r;
        }
        trust_cfg t;
        t.line = item.line();
        auto p = prefix_at(item.child(item.node["sender"], "sender"));
        if (!p) {
            return p.err();
        }
        t.sender = *p;
        auto f = readable_file(item.child(item.node["public_key"], "public_key"));
        if (!f) {
            return f.err();
        }
        t.public_key = *f;
        for (const auto& other : sa.trust) {
            if (other.sender == t.sender) {
                return item.child(item.node["sender"], "sender")
                    .fail(errc::config_duplicate, "sender " + to_string(t.sender) + " is listed twice");
            }
        }
        sa.trust.push_back(std::move(t));
    }
    return {};
}

result<void> parse_numbers(const at& a, source_auth_cfg& sa)
{
    const std::initializer_list<std::tuple<const char*, uint64_t, uint64_t, uint32_t*>> fields = {
        {"interval_ms", 1, 60'000, &sa.interval_ms},
        {"disclosure_delay", 1, 64, &sa.disclosure_delay},
        {"clock_offset_bound_ms", 0, 60'000, &sa.clock_offset_bound_ms},
        {"chain_length", 3, 10'000'000, &sa.chain_length},
        {"bootstrap_period_ms", 10, 3'600'000, &sa.bootstrap_period_ms},
        {"manifest_packets", 32, 80, &sa.manifest_packets},
        {"manifest_max_age_ms", 1, 60'000, &sa.manifest_max_age_ms},
        {"hold_packets", 1, 4096, &sa.hold_packets},
        {"hold_timeout_ms", 1, 600'000, &sa.hold_timeout_ms}};
    for (const auto& [k, lo, hi, out] : fields) {
        if (!a.node[k]) {
            continue;
        }
        auto v = integer(a.child(a.node[k], k), lo, hi);
        if (!v) {
            return v.err();
        }
        *out = static_cast<uint32_t>(*v);
    }
    if (a.node["best_effort"]) {
        auto b = one_of(a.child(a.node["best_effort"], "best_effort"), {"true", "false"});
        if (!b) {
            return b.err();
        }
        sa.best_effort = *b == "true";
    }
    if (a.node["manifest_signer"]) {
        auto b = one_of(a.child(a.node["manifest_signer"], "manifest_signer"), {"thread", "worker"});
        if (!b) {
            return b.err();
        }
        sa.sign_on_worker = *b == "worker";
    }
    return {};
}

} // namespace

result<std::shared_ptr<source_auth_cfg>> parse_source_auth(const at& a, auth_role role)
{
    if (auto r = only_keys(a, {"mode", "interval_ms", "disclosure_delay", "clock_offset_bound_ms", "chain_length",
                               "bootstrap_period_ms", "manifest_packets", "manifest_max_age_ms", "best_effort",
                               "manifest_signer", "signing_key", "trust", "hold_packets", "hold_timeout_ms"});
        !r) {
        return r.err();
    }
    if (auto r = require(a, {"mode"}); !r) {
        return r.err();
    }
    auto sa = std::make_shared<source_auth_cfg>();
    sa->line = a.line();
    sa->where = a.path;
    auto mode = one_of(a.child(a.node["mode"], "mode"), {"tesla", "manifest", "sign"});
    if (!mode) {
        return mode.err();
    }
    sa->mode = *mode == "tesla" ? source_auth_mode::tesla
               : *mode == "manifest" ? source_auth_mode::manifest : source_auth_mode::sign;
    for (const auto& [m, keys] : only_for) {
        for (std::string_view k : keys) {
            if (m != sa->mode && a.node[std::string(k)]) {
                return a.child(a.node[std::string(k)], std::string(k))
                    .fail(errc::config_bad_value, "only mode " + std::string(to_string(m)) + " reads this key");
            }
        }
    }
    if (auto r = parse_numbers(a, *sa); !r) {
        return r.err();
    }
    if (sa->mode == source_auth_mode::tesla && sa->disclosure_delay >= sa->chain_length - 1) {
        return a.child(a.node["disclosure_delay"], "disclosure_delay")
            .fail(errc::config_bad_value, "must be below chain_length - 1 (" + std::to_string(sa->chain_length - 1) + ")");
    }
    if (a.node["signing_key"]) {
        const at k = a.child(a.node["signing_key"], "signing_key");
        if (role == auth_role::verifier) {
            return k.fail(errc::config_bad_value, "an inbound SA verifies: it takes trust, not a signing key");
        }
        auto f = readable_file(k);
        if (!f) {
            return f.err();
        }
        sa->signing_key = *f;
        sa->signing_key_line = k.line();
    } else if (role == auth_role::sender) {
        return a.fail(errc::config_missing_key, "missing key 'signing_key' (an outbound SA tags with it)");
    }
    if (a.node["trust"]) {
        const at t = a.child(a.node["trust"], "trust");
        if (role == auth_role::sender) {
            return t.fail(errc::config_bad_value, "an outbound SA tags: it takes a signing key, not trust");
        }
        if (auto r = parse_trust(t, *sa); !r) {
            return r.err();
        }
    } else if (role == auth_role::verifier) {
        return a.fail(errc::config_missing_key, "missing key 'trust' (an inbound SA verifies against it)");
    }
    for (const char* k : {"hold_packets", "hold_timeout_ms", "best_effort"}) {
        if (role == auth_role::sender && a.node[k]) {
            return a.child(a.node[k], k).fail(errc::config_bad_value, "only verifiers (inbound) hold packets");
        }
    }
    if (role == auth_role::verifier && a.node["manifest_signer"]) {
        return a.child(a.node["manifest_signer"], "manifest_signer")
            .fail(errc::config_bad_value, "only senders (outbound) sign manifests");
    }
    return sa;
}

void add_source_auth(gateway_cfg& cfg, std::shared_ptr<const source_auth_cfg>& block)
{
    auto numbered = std::make_shared<source_auth_cfg>(*block);
    numbered->slot = static_cast<uint16_t>(cfg.source_auth.size());
    block = numbered;
    cfg.source_auth.push_back(block);
}

} // namespace msecgw::config::detail

namespace msecgw::config {

std::string_view to_string(source_auth_mode m)
{
    switch (m) {
    case source_auth_mode::tesla: return "tesla";
    case source_auth_mode::manifest: return "manifest";
    case source_auth_mode::sign: return "sign";
    }
    return "?";
}

} // namespace msecgw::config
