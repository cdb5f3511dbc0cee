#include "sections.hh"

namespace msecgw::config::detail {

namespace {

constexpr uint8_t proto_sctp = 132;

result<uint8_t> parse_proto(const at& a)
{
    auto s = scalar(a);
    if (!s) {
        return s.err();
    }
    static const std::pair<std::string_view, uint8_t> names[] = {
        {"udp", 17}, {"tcp", 6}, {"sctp", proto_sctp}, {"esp", 50}, {"icmp", 1}, {"icmpv6", 58}};
    for (const auto& [n, v] : names) {
        if (*s == n) {
            return v;
        }
    }
    auto v = integer(a, 0, 255);
    if (!v) {
        return a.fail(errc::config_bad_value,
                      "expected udp, tcp, sctp, esp, icmp, icmpv6, any or 0..255, got '" + *s + "'");
    }
    return static_cast<uint8_t>(*v);
}

result<void> parse_match(const at& a, policy_cfg& p)
{
    for (const char* k : {"src", "dst"}) {
        if (a.node[k]) {
            auto v = prefix_at(a.child(a.node[k], k));
            if (!v) {
                return v.err();
            }
            (std::string_view(k) == "src" ? p.src : p.dst) = *v;
        }
    }
    if (mixes_families(p.src, p.dst)) {
        return a.child(a.node["dst"], "dst").fail(errc::config_bad_value, "src and dst mix IPv4 and IPv6");
    }
    if (a.node["proto"] && a.node["proto"].Scalar() != "any") {
        auto v = parse_proto(a.child(a.node["proto"], "proto"));
        if (!v) {
            return v.err();
        }
        p.proto = *v;
    }
    const bool has_ports = p.proto && (*p.proto == 17 || *p.proto == 6 || *p.proto == proto_sctp);
    for (const char* k : {"sport", "dport"}) {
        if (!a.node[k]) {
            continue;
        }
        const at f = a.child(a.node[k], k);
        if (!has_ports) {
            return f.fail(errc::config_bad_value, "ports need proto udp, tcp or sctp");
        }
        auto r = range_at(f, 0, 65535);
        if (!r) {
            return r.err();
        }
        (std::string_view(k) == "sport" ? p.sport : p.dport) = *r;
    }
    if (a.node["vlan"]) {
        const at f = a.child(a.node["vlan"], "vlan");
        if (a.node["vlan"].IsScalar() && a.node["vlan"].Scalar() == "none") {
            p.vlan = {vlan_untagged, vlan_untagged};
        } else {
            auto r = range_at(f, 0, 4095);
            if (!r) {
                return f.fail(errc::config_bad_value, "expected a VLAN id 0..4095, a range N-M, or none");
            }
            p.vlan = *r;
        }
    }
    return {};
}

result<void> parse_action(const at& a, const gateway_cfg& cfg, policy_cfg& p)
{
    auto act = one_of(a.child(a.node["action"], "action"), {"protect", "bypass", "discard"});
    if (!act) {
        return act.err();
    }
    p.action = *act == "protect" ? policy_action::protect : *act == "bypass" ? policy_action::bypass
                                                                             : policy_action::discard;
    if (p.action != policy_action::protect) {
        for (const char* k : {"sa", "group"}) {
            if (a.node[k]) {
                return a.child(a.node[k], k).fail(errc::config_bad_value, std::string("only protect policies name ") +
                                                                              (std::string_view(k) == "sa" ? "an SA" : "a group"));
            }
        }
        return {};
    }
    if (a.node["sa"] && a.node["group"]) {
        return a.child(a.node["group"], "group")
            .fail(errc::config_bad_value, "name an SA or a group, not both (a group's SAs come from its key server)");
    }
    if (a.node["group"]) {
        const at f = a.child(a.node["group"], "group");
        auto name = scalar(f);
        if (!name) {
            return name.err();
        }
        const group_cfg* g = cfg.find_group(*name);
        if (g == nullptr) {
            return f.fail(errc::config_reference, "no group named '" + *name + "' (top-level key 'groups')");
        }
        if (mixes_families(p.dst, g->dst) || mixes_families(p.src, g->dst)) {
            return f.fail(errc::config_bad_value, "group '" + *name + "' is " + to_string(g->dst) +
                                                      ": its SAs cannot carry the other IP version");
        }
        if (p.region != g->region) {
            return f.fail(errc::config_reference, "group '" + *name + "' is in region '" + cfg.regions[g->region] +
                                                      "' (its key server's SAs live there), this policy in region '" +
                                                      cfg.regions[p.region] + "'");
        }
        p.group = *name;
        return {};
    }
    if (!a.node["sa"]) {
        return a.fail(errc::config_missing_key, "missing key 'sa' or 'group' (protect needs keys)");
    }
    const at f = a.child(a.node["sa"], "sa");
    auto name = scalar(f);
    if (!name) {
        return name.err();
    }
    const sa_cfg* sa = cfg.find_sa(*name);
    if (sa == nullptr) {
        return f.fail(errc::config_reference, "no SA named '" + *name + "'");
    }
    if (sa->dir != p.dir) {
        return f.fail(errc::config_reference, "SA '" + *name + "' is dir: " + std::string(to_string(sa->dir)) +
                                                  ", this policy is dir: " + std::string(to_string(p.dir)));
    }
    if (sa->region != p.region) {
        return f.fail(errc::config_reference, "SA '" + *name + "' is in region '" + cfg.regions[sa->region] +
                                                  "', this policy in region '" + cfg.regions[p.region] + "'");
    }
    p.sa = *name;
    return {};
}

result<policy_cfg> parse_policy(const at& a, const gateway_cfg& cfg)
{
    if (auto r = only_keys(a, {"dir", "src", "dst", "proto", "sport", "dport", "vlan", "action", "sa", "group",
                               "region"}); !r) {
        return r.err();
    }
    for (const char* k : {"dir", "action"}) {
        if (!a.node[k]) {
            return a.fail(errc::config_missing_key, std::string("missing key '") + k + "'");
        }
    }
    policy_cfg p;
    p.line = a.line();
    auto dir = one_of(a.child(a.node["dir"], "dir"), {"out", "in"});
    if (!dir) {
        return dir.err();
    }
    p.dir = *dir == "out" ? direction::out : direction::in;
    auto region = region_of(a, cfg);
    if (!region) {
        return region.err();
    }
    p.region = *region;
    if (auto r = parse_match(a, p); !r) {
        return r.err();
    }
    if (auto r = parse_action(a, cfg, p); !r) {
        return r.err();
    }
    return p;
}

} // namespace

result<void> parse_policies(const at& a, gateway_cfg& cfg)
{
    if (a.node.IsNull()) {
        return {}; // `policies:` with every entry commented out
    }
    if (!a.node.IsSequence()) {
        return a.fail(errc::config_bad_value, "expected a list of policies");
    }
    for (std::size_t i = 0; i < a.node.size(); ++i) {
        auto p = parse_policy(a.item(a.node[i], i), cfg);
        if (!p) {
            return p.err();
        }
        cfg.policies.push_back(std::move(p.value()));
    }
    return {};
}

} // namespace msecgw::config::detail
