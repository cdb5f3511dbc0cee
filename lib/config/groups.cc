// The key-management sections: groups, key_server (the embedded GCKS) and member (this gateway
// as a group member). Errors name file:line: key.path like every other section.
#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <set>
#include <tuple>

#include "sections.hh"

namespace msecgw::config::detail {

namespace {

/// "a.b.c.d:port" or "a.b.c.d" (port keeps its default).
result<udp_endpoint> endpoint_at(const at& a, udp_endpoint e)
{
    auto text = scalar(a);
    if (!text) {
        return text.err();
    }
    std::string host = *text;
    if (const auto colon = text->rfind(':'); colon != std::string::npos) {
        host = text->substr(0, colon);
        const std::string port = text->substr(colon + 1);
        unsigned v = 0;
        auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), v);
        if (ec != std::errc() || end != port.data() + port.size() || port.empty() || v > 65535) {
            return a.fail(errc::config_bad_value, "expected IPv4-ADDRESS[:PORT] with a port 0..65535, got '" + *text + "'");
        }
        e.port = static_cast<uint16_t>(v);
    }
    in_addr addr{};
    if (::inet_pton(AF_INET, host.c_str(), &addr) != 1) {
        return a.fail(errc::config_bad_value, "expected IPv4-ADDRESS[:PORT] (key management runs over IPv4), got '" +
                                                  *text + "'");
    }
    e.address = host;
    return e;
}

/// A list of names (identities): [a, b] or a single scalar.
result<std::vector<std::string>> names_at(const at& a)
{
    std::vector<std::string> out;
    if (a.node.IsScalar()) {
        out.push_back(a.node.Scalar());
        return out;
    }
    if (!a.node.IsSequence()) {
        return a.fail(errc::config_bad_value, "expected a list of identities");
    }
    for (std::size_t i = 0; i < a.node.size(); ++i) {
        auto s = scalar(a.item(a.node[i], i));
        if (!s) {
            return s.err();
        }
        out.push_back(std::move(s.value()));
    }
    return out;
}

/// Optional integer key `k` of mapping `a` into `*out`.
template <class T>
result<void> optional_integer(const at& a, const char* k, uint64_t lo, uint64_t hi, T* out)
{
    if (!a.node[k]) {
        return {};
    }
    auto v = integer(a.child(a.node[k], k), lo, hi);
    if (!v) {
        return v.err();
    }
    *out = static_cast<T>(*v);
    return {};
}

result<secret_bytes> psk_at(const at& a)
{
    auto bytes = hex_bytes(a);
    if (!bytes) {
        return bytes.err();
    }
    secret_bytes psk(std::move(bytes.value()));
    if (psk.size() < 16) {
        // Sizes only: never the value.
        return a.fail(errc::config_bad_value, "a pre-shared key needs at least 16 bytes, got " + std::to_string(psk.size()));
    }
    return psk;
}

/// certificate_file, private_key_file, ca_file (paths; the first two together).
result<void> parse_certificates(const at& a, certificate_cfg& c)
{
    for (const char* k : {"certificate_file", "private_key_file", "ca_file"}) {
        if (a.node[k]) {
            auto v = scalar(a.child(a.node[k], k));
            if (!v || v->empty()) {
                return v ? a.child(a.node[k], k).fail(errc::config_bad_value, "expected a path") : v.err();
            }
            const std::string_view key(k);
            (key == "certificate_file" ? c.certificate_file : key == "private_key_file" ? c.private_key_file : c.ca_file) = *v;
        }
    }
    if (c.certificate_file.empty() != c.private_key_file.empty()) {
        return a.fail(errc::config_missing_key, "certificate_file and private_key_file go together");
    }
    return {};
}

result<group_cfg> parse_group(const at& a, const gateway_cfg& cfg)
{
    if (auto r = only_keys(a, {"name", "id", "src", "dst", "aead", "tek_lifetime_seconds", "rekey_period_seconds",
                               "registration_overlap_ms", "sender_id_bits", "members", "senders", "replay_window", "key_tree", "lkh_arity",
                               "lkh_max_members", "rekey_batch_ms", "rekey_address", "rekey_ttl", "rekey_interface",
                               "source_auth", "region"});
        !r) {
        return r.err();
    }
    if (auto r = require(a, {"name", "id", "dst"}); !r) {
        return r.err();
    }
    group_cfg g;
    g.line = a.line();
    auto name = name_at(a.child(a.node["name"], "name"));
    if (!name) {
        return name.err();
    }
    g.name = std::move(name.value());
    auto region = region_of(a, cfg);
    if (!region) {
        return region.err();
    }
    g.region = *region;
    for (const char* k : {"src", "dst"}) {
        if (a.node[k]) {
            auto p = prefix_at(a.child(a.node[k], k));
            if (!p) {
                return p.err();
            }
            (std::string_view(k) == "src" ? g.src : g.dst) = *p;
        }
    }
    if (g.dst.is_any()) {
        return a.child(a.node["dst"], "dst").fail(errc::config_bad_value, "a group needs its destination prefix");
    }
    if (mixes_families(g.src, g.dst)) {
        return a.child(a.node["src"], "src").fail(errc::config_bad_value, "src and dst mix IPv4 and IPv6");
    }
    if (a.node["aead"]) {
        auto alg = one_of(a.child(a.node["aead"], "aead"), {"aes-128-gcm", "aes-256-gcm"});
        if (!alg) {
            return alg.err();
        }
        g.aead = *alg == "aes-128-gcm" ? aead_alg::aes_128_gcm : aead_alg::aes_256_gcm;
    }
    const std::initializer_list<std::tuple<const char*, uint64_t, uint64_t, uint32_t*>> u32s = {
        {"id", 1, UINT32_MAX, &g.id},
        {"tek_lifetime_seconds", 10, 86400 * 7, &g.tek_lifetime_seconds},
        {"rekey_period_seconds", 0, 86400 * 7, &g.rekey_period_seconds},
        {"registration_overlap_ms", 0, 3'600'000, &g.registration_overlap_ms},
        {"replay_window", 0, 65536, &g.replay_window},
        {"lkh_arity", 2, 16, &g.lkh_arity},
        {"lkh_max_members", 2, 1u << 24, &g.lkh_max_members},
        {"rekey_batch_ms", 0, 10'000, &g.rekey_batch_ms},
        {"rekey_ttl", 1, 255, &g.rekey_ttl}};
    for (const auto& [k, lo, hi, out] : u32s) {
        if (auto r = optional_integer(a, k, lo, hi, out); !r) {
            return r.err();
        }
    }
    if (g.rekey_period_seconds != 0 && g.rekey_period_seconds >= g.tek_lifetime_seconds) {
        return a.child(a.node["rekey_period_seconds"], "rekey_period_seconds")
            .fail(errc::config_bad_value, "must be below tek_lifetime_seconds (" + std::to_string(g.tek_lifetime_seconds) +
                                              "), or members see their key expire before the next one");
    }
    if (auto r = optional_integer(a, "sender_id_bits", 1, max_sender_id_bits, &g.sender_id_bits); !r) {
        return r.err();
    }
    if (a.node["key_tree"]) {
        auto on = one_of(a.child(a.node["key_tree"], "key_tree"), {"true", "false"});
        if (!on) {
            return on.err();
        }
        g.key_tree = *on == "true";
    }
    if (a.node["rekey_address"]) {
        const at where = a.child(a.node["rekey_address"], "rekey_address");
        auto e = endpoint_at(where, udp_endpoint{"", 848});
        if (!e) {
            return e.err();
        }
        in_addr addr{};
        ::inet_pton(AF_INET, e->address.c_str(), &addr);
        if (!IN_MULTICAST(ntohl(addr.s_addr)) || e->port == 0) {
            return where.fail(errc::config_bad_value, "expected an IPv4 multicast group and a port, got '" + e->address +
                                                          ":" + std::to_string(e->port) + "'");
        }
        g.rekey_address = *e;
    }
    if (a.node["rekey_interface"]) {
        auto e = endpoint_at(a.child(a.node["rekey_interface"], "rekey_interface"), udp_endpoint{});
        if (!e) {
            return e.err();
        }
        g.rekey_interface = e->address;
    }
    for (const char* k : {"members", "senders"}) {
        if (a.node[k]) {
            auto v = names_at(a.child(a.node[k], k));
            if (!v) {
                return v.err();
            }
            (std::string_view(k) == "members" ? g.members : g.senders) = std::move(v.value());
        }
    }
    for (const auto& s : g.senders) {
        if (std::find(g.members.begin(), g.members.end(), s) == g.members.end()) {
            return a.child(a.node["senders"], "senders")
                .fail(errc::config_reference, "sender '" + s + "' is not in members (a sender is a member too)");
        }
    }
    if (a.node["source_auth"]) {
        auto sa = parse_source_auth(a.child(a.node["source_auth"], "source_auth"), auth_role::group);
        if (!sa) {
            return sa.err();
        }
        g.source_auth = std::move(sa.value());
    }
    return g;
}

result<admission_cfg> parse_admission(const at& a)
{
    if (auto r = only_keys(a, {"half_open_timeout_ms", "max_half_open", "max_half_open_per_address", "cookie_threshold",
                               "cookie_secret_lifetime_ms", "finished_linger_ms"});
        !r) {
        return r.err();
    }
    admission_cfg ad;
    const std::initializer_list<std::tuple<const char*, uint64_t, uint64_t, uint32_t*>> fields = {
        {"half_open_timeout_ms", 100, 3'600'000, &ad.half_open_timeout_ms},
        {"max_half_open", 1, 1u << 24, &ad.max_half_open},
        {"max_half_open_per_address", 1, 1u << 24, &ad.max_half_open_per_address},
        {"cookie_threshold", 0, 1u << 24, &ad.cookie_threshold},
        {"cookie_secret_lifetime_ms", 1000, 86'400'000, &ad.cookie_secret_lifetime_ms},
        {"finished_linger_ms", 0, 3'600'000, &ad.finished_linger_ms}};
    for (const auto& [k, lo, hi, out] : fields) {
        if (auto r = optional_integer(a, k, lo, hi, out); !r) {
            return r.err();
        }
    }
    return ad;
}

result<void> parse_peers(const at& a, key_server_cfg& ks)
{
    if (!a.node.IsSequence()) {
        return a.fail(errc::config_bad_value, "expected a list of {identity, psk}");
    }
    std::set<std::string> seen;
    for (std::size_t i = 0; i < a.node.size(); ++i) {
        const at item = a.item(a.node[i], i);
        if (auto r = only_keys(item, {"identity", "psk"}); !r) {
            return r;
        }
        if (auto r = require(item, {"identity", "psk"}); !r) {
            return r;
        }
        psk_peer_cfg p;
        p.line = item.line();
        auto id = scalar(item.child(item.node["identity"], "identity"));
        if (!id) {
            return id.err();
        }
        if (!seen.insert(*id).second) {
            return item.child(item.node["identity"], "identity")
                .fail(errc::config_duplicate, "identity '" + *id + "' is listed twice");
        }
        p.identity = *id;
        auto psk = psk_at(item.child(item.node["psk"], "psk"));
        if (!psk) {
            return psk.err();
        }
        p.psk = std::move(psk.value());
        ks.peers.push_back(std::move(p));
    }
    return {};
}

} // namespace

result<void> parse_groups(const at& a, gateway_cfg& cfg)
{
    if (a.node.IsNull()) {
        return {};
    }
    if (!a.node.IsSequence()) {
        return a.fail(errc::config_bad_value, "expected a list of groups");
    }
    for (std::size_t i = 0; i < a.node.size(); ++i) {
        const at item = a.item(a.node[i], i);
        auto g = parse_group(item, cfg);
        if (!g) {
            return g.err();
        }
        for (const auto& other : cfg.groups) {
            if (other.name == g->name) {
                return item.child(a.node[i]["name"], "name").fail(errc::config_duplicate,
                                                                 "group name '" + g->name + "' is used twice");
            }
            if (other.id == g->id) {
                return item.child(a.node[i]["id"], "id").fail(errc::config_duplicate,
                                                             "group id " + std::to_string(g->id) + " is used twice");
            }
        }
        if (g->source_auth) {
            add_source_auth(cfg, g->source_auth);
        }
        cfg.groups.push_back(std::move(g.value()));
    }
    return {};
}

result<void> parse_key_server(const at& a, gateway_cfg& cfg)
{
    if (auto r = only_keys(a, {"listen", "identity", "peers", "state_path", "storage_key_file", "admission",
                               "certificate_file", "private_key_file", "ca_file", "etcd_endpoints", "etcd_prefix",
                               "candidate_id", "leader_ttl_seconds"});
        !r) {
        return r;
    }
    key_server_cfg ks;
    ks.line = a.line();
    if (a.node["listen"]) {
        auto e = endpoint_at(a.child(a.node["listen"], "listen"), ks.listen);
        if (!e) {
            return e.err();
        }
        ks.listen = *e;
    }
    for (const char* k : {"identity", "state_path", "storage_key_file", "etcd_prefix", "candidate_id"}) {
        if (a.node[k]) {
            auto v = scalar(a.child(a.node[k], k));
            if (!v || v->empty()) {
                return v ? a.child(a.node[k], k).fail(errc::config_bad_value, "expected a non-empty value") : v.err();
            }
            const std::string_view key(k);
            (key == "identity"       ? ks.identity
             : key == "state_path"   ? ks.state_path
             : key == "etcd_prefix"  ? ks.etcd_prefix
             : key == "candidate_id" ? ks.candidate_id
                                     : ks.storage_key_file) = *v;
        }
    }
    if (a.node["etcd_endpoints"]) {
        // URLs, not identities, but the same shape: a list or one scalar.
        auto eps = names_at(a.child(a.node["etcd_endpoints"], "etcd_endpoints"));
        if (!eps) {
            return eps.err();
        }
        ks.etcd_endpoints = std::move(*eps);
        if (ks.etcd_endpoints.empty() || !ks.state_path.empty()) {
            return a.child(a.node["etcd_endpoints"], "etcd_endpoints")
                .fail(errc::config_bad_value, "one or more http://HOST:PORT, and no state_path (the state lives in etcd)");
        }
    }
    if (auto r = optional_integer(a, "leader_ttl_seconds", 2, 3600, &ks.leader_ttl_seconds); !r) {
        return r;
    }
    if ((!ks.state_path.empty() || !ks.etcd_endpoints.empty()) && ks.storage_key_file.empty()) {
        return a.fail(errc::config_missing_key,
                      "missing key 'storage_key_file' (state_path or etcd_endpoints keep keys wrapped under it)");
    }
    if (a.node["peers"]) {
        if (auto r = parse_peers(a.child(a.node["peers"], "peers"), ks); !r) {
            return r;
        }
    }
    if (a.node["admission"]) {
        auto ad = parse_admission(a.child(a.node["admission"], "admission"));
        if (!ad) {
            return ad.err();
        }
        ks.admission = *ad;
    }
    if (auto r = parse_certificates(a, ks.certificates); !r) {
        return r;
    }
    if (cfg.groups.empty()) {
        return a.fail(errc::config_missing_key, "a key server needs groups (top-level key 'groups')");
    }
    for (const auto& g : cfg.groups) {
        if (!ks.certificates.ca_file.empty()) {
            continue; // members may prove their identity with a certificate instead of a peers entry
        }
        for (const auto& m : g.members) {
            const bool known = std::any_of(ks.peers.begin(), ks.peers.end(),
                                           [&](const psk_peer_cfg& p) { return p.identity == m; });
            if (!known) {
                return error{errc::config_reference, cfg.file + ":" + std::to_string(g.line) + ": groups: group '" +
                                                         g.name + "': member '" + m + "' has no entry in key_server.peers"};
            }
        }
    }
    cfg.key_server = std::move(ks);
    return {};
}

result<member_cfg> parse_member_entry(const at& a, const gateway_cfg& cfg)
{
    if (auto r = only_keys(a, {"identity", "psk", "key_server", "key_server_identity", "local_address", "dh_group",
                               "activation_delay_ms", "deactivation_delay_ms", "certificate_file", "private_key_file",
                               "ca_file", "region"});
        !r) {
        return r.err();
    }
    if (auto r = require(a, {"identity", "key_server"}); !r) {
        return r.err();
    }
    if (!a.node["psk"] && !a.node["certificate_file"]) {
        return a.fail(errc::config_missing_key, "missing key 'psk' (or certificate_file and private_key_file)");
    }
    member_cfg m;
    m.line = a.line();
    if (a.node["region"]) {
        auto region = region_of(a, cfg);
        if (!region) {
            return region.err();
        }
        m.region = *region;
    }
    for (const char* k : {"identity", "key_server_identity"}) {
        if (a.node[k]) {
            auto v = scalar(a.child(a.node[k], k));
            if (!v || v->empty()) {
                return v ? a.child(a.node[k], k).fail(errc::config_bad_value, "expected a non-empty value") : v.err();
            }
            (std::string_view(k) == "identity" ? m.identity : m.key_server_identity) = *v;
        }
    }
    if (a.node["psk"]) {
        auto psk = psk_at(a.child(a.node["psk"], "psk"));
        if (!psk) {
            return psk.err();
        }
        m.psk = std::move(psk.value());
    }
    if (auto r = parse_certificates(a, m.certificates); !r) {
        return r.err();
    }
    // One key server, or a list tried in order (several key servers on etcd).
    const at servers = a.child(a.node["key_server"], "key_server");
    for (std::size_t i = 0; i < (servers.node.IsSequence() ? servers.node.size() : 1); ++i) {
        auto ks = servers.node.IsSequence() ? endpoint_at(servers.item(servers.node[i], i), m.key_server)
                                            : endpoint_at(servers, m.key_server);
        if (!ks) {
            return ks.err();
        }
        m.key_servers.push_back(*ks);
    }
    if (m.key_servers.empty()) {
        return servers.fail(errc::config_bad_value, "expected IPv4-ADDRESS[:PORT] or a list of them");
    }
    m.key_server = m.key_servers.front();
    if (a.node["local_address"]) {
        auto e = endpoint_at(a.child(a.node["local_address"], "local_address"), udp_endpoint{"0.0.0.0", 0});
        if (!e) {
            return e.err();
        }
        if (e->port != 0) {
            return a.child(a.node["local_address"], "local_address")
                .fail(errc::config_bad_value, "an address only: the kernel picks the member's port");
        }
        m.local_address = e->address;
    }
    if (a.node["dh_group"]) {
        auto g = one_of(a.child(a.node["dh_group"], "dh_group"), {"19", "31"});
        if (!g) {
            return g.err();
        }
        m.dh_group = static_cast<uint8_t>(std::stoi(*g));
    }
    if (auto r = optional_integer(a, "activation_delay_ms", 0, 600'000, &m.activation_delay_ms); !r) {
        return r.err();
    }
    if (auto r = optional_integer(a, "deactivation_delay_ms", 0, 3'600'000, &m.deactivation_delay_ms); !r) {
        return r.err();
    }
    return m;
}

result<void> parse_member(const at& a, gateway_cfg& cfg)
{
    // One mapping (every region), or a list of them, each for its own region (a boundary gateway
    // registers with the key server of each region it is in).
    const bool list = a.node.IsSequence();
    if (list && a.node.size() == 0) {
        return a.fail(errc::config_bad_value, "expected a member mapping or a non-empty list of them");
    }
    for (std::size_t i = 0; i < (list ? a.node.size() : 1); ++i) {
        const at item = list ? a.item(a.node[i], i) : a;
        if (!item.node.IsMap()) {
            return item.fail(errc::config_bad_value, "expected a mapping (identity, psk, key_server, ...)");
        }
        auto m = parse_member_entry(item, cfg);
        if (!m) {
            return m.err();
        }
        for (const auto& other : cfg.members) {
            if (other.region == m->region) {
                const std::string which = m->region ? "region '" + cfg.regions[*m->region] + "'" : "every region (no 'region')";
                return (m->region ? item.child(item.node["region"], "region") : item)
                    .fail(errc::config_duplicate, "a second member entry for " + which + " (the first is on line " +
                                                      std::to_string(other.line) + ")");
            }
        }
        cfg.members.push_back(std::move(m.value()));
    }
    return {};
}

} // namespace msecgw::config::detail
