// add/del sa and policy: a modified copy of the running configuration. New entries are written as
// a small YAML document and read by the configuration loader, so the CLI accepts exactly what the
// file accepts, with the same checks and messages (and, like them, never echoes key material).
#include <charconv>
#include <set>

#include "commands.hh"
#include "text.hh"

namespace msecgw::cli {

namespace {

/// A YAML double-quoted scalar holding `v` verbatim.
result<std::string> quoted(const std::string& what, const std::string& k, const std::string& v)
{
    std::string out = "\"";
    for (const char c : v) {
        if (static_cast<unsigned char>(c) < 0x20) {
            return error{errc::config_bad_value, what + ": " + k + ": control characters are not allowed"};
        }
        if (c == '"' || c == '\\') {
            out += '\\';
        }
        out += c;
    }
    return out + "\"";
}

/// KEY=VALUE words -> one YAML flow mapping, keys checked against `allowed`.
result<std::string> flow_map(const std::string& what, const std::vector<std::string>& kv,
                             const std::set<std::string>& allowed, std::map<std::string, std::string>* seen)
{
    std::string out = "{";
    for (const auto& w : kv) {
        const auto eq = w.find('=');
        if (eq == std::string::npos || eq == 0) {
            return error{errc::config_bad_value, what + ": expected KEY=VALUE, got '" + shown(w) + "'"};
        }
        const std::string k = w.substr(0, eq);
        if (!allowed.contains(k)) {
            std::string keys;
            for (const auto& a : allowed) {
                keys += (keys.empty() ? "" : ", ") + a;
            }
            return error{errc::config_unknown_key, what + ": unknown key '" + shown(k) + "' (expected one of " + keys + ")"};
        }
        if (seen->contains(k)) {
            return error{errc::config_duplicate, what + ": " + k + " given twice"};
        }
        auto q = quoted(what, k, w.substr(eq + 1));
        if (!q) {
            return q.err();
        }
        (*seen)[k] = w.substr(eq + 1);
        out += (out.size() > 1 ? ", " : "") + k + ": " + *q;
    }
    return out + "}";
}

/// The regions and ports of the running configuration: the mini document must pass the port
/// checks (a boundary pair in two regions) and may name the regions (`region=`).
std::string layout_yaml(const config::gateway_cfg& c)
{
    std::string out;
    if (!c.regions.empty()) {
        out = "regions: [";
        for (std::size_t i = 0; i < c.regions.size(); ++i) {
            out += (i == 0 ? "\"" : ", \"") + c.regions[i] + "\"";
        }
        out += "]\n";
    }
    out += "ports:\n";
    for (const auto& p : c.ports) {
        out += "  - {port: " + std::to_string(p.port) + ", side: " + std::string(config::to_string(p.side)) +
               ", mtu: " + std::to_string(p.mtu);
        if (!c.regions.empty()) {
            out += ", region: \"" + c.regions.at(p.region) + "\"";
        }
        out += "}\n";
    }
    return out;
}

/// "add sa:4: sas[0].spi: expected …" -> "add sa: spi: expected …".
error reworded(const std::string& what, const std::string& section, error e)
{
    const std::string marker = ": " + section + "[0]";
    if (const auto at = e.detail.find(marker); at != std::string::npos) {
        std::string rest = e.detail.substr(at + marker.size());
        if (!rest.empty() && rest[0] == '.') {
            rest = rest.substr(1);
        } else if (rest.rfind(": ", 0) == 0) {
            rest = rest.substr(2);
        }
        e.detail = what + ": " + rest;
    } else if (e.detail.rfind(what, 0) != 0) {
        e.detail = what + ": " + e.detail;
    }
    return e;
}

result<std::size_t> parse_index(const std::string& what, const std::string& text, std::size_t limit)
{
    std::size_t v = 0;
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || p != text.data() + text.size()) {
        return error{errc::config_bad_value, what + ": expected a policy number (see show policy), got '" + shown(text) + "'"};
    }
    if (v >= limit) {
        return error{errc::config_reference, what + ": no policy " + shown(text) + " (there are " + std::to_string(limit) +
                                                 "; see show policy)"};
    }
    return v;
}

} // namespace

result<config::gateway_cfg> with_sa_added(const config::gateway_cfg& running, const std::vector<std::string>& kv)
{
    const std::string what = "add sa";
    std::map<std::string, std::string> seen;
    auto m = flow_map(what, kv,
                      {"name", "dir", "spi", "aead", "key", "dst", "src", "replay_window", "sender_id",
                       "sender_id_bits", "region"},
                      &seen);
    if (!m) {
        return m.err();
    }
    const std::string doc = "state_dir: x\n" + layout_yaml(running) + "sas:\n  - " + *m + "\n";
    auto parsed = config::load_string(doc, what);
    if (!parsed) {
        return reworded(what, "sas", parsed.err());
    }
    config::sa_cfg& sa = parsed->sas.at(0);
    if (running.find_sa(sa.name) != nullptr) {
        return error{errc::config_duplicate, what + ": name: an SA named '" + sa.name + "' exists (del sa first)"};
    }
    config::gateway_cfg next = running;
    next.sas.push_back(std::move(sa));
    return next;
}

result<config::gateway_cfg> with_sa_deleted(const config::gateway_cfg& running, const std::string& name)
{
    const std::string what = "del sa " + shown(name);
    const config::sa_cfg* sa = running.find_sa(name);
    if (sa == nullptr) {
        return error{errc::config_reference, what + ": no SA named '" + shown(name) + "' (see show sa)"};
    }
    if (!sa->group.empty()) {
        return error{errc::unsupported, what + ": it carries group " + sa->group +
                                            "'s keys from the key server, which replaces it at its next rekey "
                                            "(rekey group " + sa->group + " on the key server)"};
    }
    for (std::size_t i = 0; i < running.policies.size(); ++i) {
        if (running.policies[i].sa == name) {
            return error{errc::config_reference, what + ": policy " + std::to_string(i) +
                                                     " still names it (del policy " + std::to_string(i) +
                                                     " or add one for another SA first)"};
        }
    }
    config::gateway_cfg next = running;
    std::erase_if(next.sas, [&](const config::sa_cfg& s) { return s.name == name; });
    return next;
}

result<config::gateway_cfg> with_policy_added(const config::gateway_cfg& running, const std::vector<std::string>& kv)
{
    const std::string what = "add policy";
    std::size_t at = running.policies.size(); // default: after every policy
    std::vector<std::string> rest;
    bool have_at = false;
    for (const auto& w : kv) {
        if (w.rfind("at=", 0) != 0) {
            rest.push_back(w);
            continue;
        }
        if (have_at) {
            return error{errc::config_duplicate, what + ": at given twice"};
        }
        auto i = parse_index(what + ": at", w.substr(3), running.policies.size() + 1);
        if (!i) {
            return i.err();
        }
        at = *i;
        have_at = true;
    }
    std::map<std::string, std::string> seen;
    auto m = flow_map(what, rest, {"dir", "src", "dst", "proto", "sport", "dport", "vlan", "action", "sa", "region"},
                      &seen);
    if (!m) {
        return m.err();
    }
    // The loader checks that a protect policy names an SA of its direction: give it a stand-in
    // with the running SA's name and direction (no key of the running SA is written anywhere).
    std::string sas;
    if (auto it = seen.find("sa"); it != seen.end()) {
        const config::sa_cfg* sa = running.find_sa(it->second);
        if (sa == nullptr) {
            return error{errc::config_reference, what + ": sa: no SA named '" + shown(it->second) + "' (see show sa)"};
        }
        sas = "sas:\n  - {name: \"" + sa->name + "\", dir: " + std::string(config::to_string(sa->dir)) +
              ", spi: 256, aead: aes-128-gcm, key: \"0x" + std::string(40, '0') + "\"";
        if (!running.regions.empty()) {
            sas += ", region: \"" + running.regions.at(sa->region) + "\"";
        }
        sas += "}\n";
    }
    const std::string doc = "state_dir: x\n" + layout_yaml(running) + sas + "policies:\n  - " + *m + "\n";
    auto parsed = config::load_string(doc, what);
    if (!parsed) {
        return reworded(what, "policies", parsed.err());
    }
    config::gateway_cfg next = running;
    next.policies.insert(next.policies.begin() + static_cast<std::ptrdiff_t>(at), parsed->policies.at(0));
    return next;
}

result<config::gateway_cfg> with_policy_deleted(const config::gateway_cfg& running, const std::string& index)
{
    auto i = parse_index("del policy", index, running.policies.size());
    if (!i) {
        return i.err();
    }
    if (running.policies[*i].twin) {
        return error{errc::unsupported, "del policy " + index + ": a copy the gateway keeps while two keys of group " +
                                            running.policies[*i].group + " overlap; delete policy " +
                                            std::to_string(*i - 1) + " (or the first one above it) instead"};
    }
    config::gateway_cfg next = running;
    next.policies.erase(next.policies.begin() + static_cast<std::ptrdiff_t>(*i));
    return next;
}

} // namespace msecgw::cli
