#include "config.hh"

#include <arpa/inet.h>
#include <openssl/crypto.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/parser.h>

#include "sections.hh"
#include "yaml_fields.hh"

namespace msecgw::config {

using detail::at;

secret_bytes::~secret_bytes()
{
    OPENSSL_cleanse(_bytes.data(), _bytes.size());
}

secret_bytes& secret_bytes::operator=(const secret_bytes& other)
{
    if (this != &other) {
        OPENSSL_cleanse(_bytes.data(), _bytes.size());
        _bytes = other._bytes;
    }
    return *this;
}

secret_bytes& secret_bytes::operator=(secret_bytes&& other) noexcept
{
    if (this != &other) {
        OPENSSL_cleanse(_bytes.data(), _bytes.size());
        _bytes = std::move(other._bytes);
    }
    return *this;
}

std::string_view to_string(port_side s) { return s == port_side::clear ? "clear" : "protected"; }
std::string_view to_string(direction d) { return d == direction::out ? "out" : "in"; }
std::string_view to_string(aead_alg a) { return a == aead_alg::aes_128_gcm ? "aes-128-gcm" : "aes-256-gcm"; }

std::string_view to_string(policy_action a)
{
    switch (a) {
    case policy_action::protect: return "protect";
    case policy_action::bypass: return "bypass";
    case policy_action::discard: return "discard";
    }
    return "?";
}

std::string to_string(const ip_prefix& p)
{
    if (p.is_any()) {
        return "any";
    }
    char buf[INET6_ADDRSTRLEN];
    inet_ntop(p.family == ip_family::v4 ? AF_INET : AF_INET6, p.addr.data(), buf, sizeof buf);
    return std::string(buf) + "/" + std::to_string(p.length);
}

namespace {

/// "'text' what" (built by appending: GCC 12 warns falsely on operator+ chains here).
std::string quoted(std::string_view text, std::string_view what)
{
    std::string s;
    s.reserve(text.size() + what.size() + 3);
    s.append(1, '\'').append(text).append("' ").append(what);
    return s;
}

} // namespace

result<ip_prefix> parse_prefix(std::string_view text)
{
    ip_prefix p;
    if (text == "any") {
        return p;
    }
    const auto slash = text.find('/');
    const std::string addr(text.substr(0, slash));
    if (inet_pton(AF_INET, addr.c_str(), p.addr.data()) == 1) {
        p.family = ip_family::v4;
    } else if (inet_pton(AF_INET6, addr.c_str(), p.addr.data()) == 1) {
        p.family = ip_family::v6;
    } else {
        return error{errc::config_bad_value, quoted(text, "is not an address or prefix")};
    }
    const unsigned max_len = p.family == ip_family::v4 ? 32 : 128;
    unsigned len = max_len;
    if (slash != std::string_view::npos) {
        const auto l = text.substr(slash + 1);
        auto [ptr, ec] = std::from_chars(l.data(), l.data() + l.size(), len);
        if (ec != std::errc() || ptr != l.data() + l.size() || l.empty() || len > max_len) {
            return error{errc::config_bad_value, quoted(text, "prefix length must be 0.." + std::to_string(max_len))};
        }
    }
    p.length = static_cast<uint8_t>(len);
    for (unsigned bit = len; bit < max_len; ++bit) {
        if (p.addr[bit / 8] & (0x80 >> (bit % 8))) {
            return error{errc::config_bad_value, quoted(text, "has host bits set beyond /" + std::to_string(len))};
        }
    }
    return p;
}

bool policy_cfg::applies_to(ip_family f) const
{
    return (src.is_any() || src.family == f) && (dst.is_any() || dst.family == f);
}

const group_cfg* gateway_cfg::find_group(std::string_view name) const
{
    for (const auto& g : groups) {
        if (g.name == name) {
            return &g;
        }
    }
    return nullptr;
}

const member_cfg* gateway_cfg::member_for(uint16_t region) const
{
    const member_cfg* every = nullptr;
    for (const auto& m : members) {
        if (m.region == region) {
            return &m;
        }
        if (!m.region) {
            every = &m;
        }
    }
    return every;
}

const sa_cfg* gateway_cfg::find_sa(std::string_view name) const
{
    for (const auto& s : sas) {
        if (s.name == name) {
            return &s;
        }
    }
    return nullptr;
}

namespace {

result<port_cfg> parse_port(const at& a, const gateway_cfg& cfg)
{
    if (auto r = detail::only_keys(a, {"port", "side", "mtu", "region"}); !r) {
        return r.err();
    }
    port_cfg p;
    p.line = a.line();
    auto region = detail::region_of(a, cfg);
    if (!region) {
        return region.err();
    }
    p.region = *region;
    for (const char* req : {"port", "side"}) {
        if (!a.node[req]) {
            return a.fail(errc::config_missing_key, std::string("missing key '") + req + "'");
        }
    }
    auto id = detail::integer(a.child(a.node["port"], "port"), 0, 1023);
    if (!id) {
        return id.err();
    }
    p.port = static_cast<uint16_t>(*id);
    auto side = detail::one_of(a.child(a.node["side"], "side"), {"clear", "protected"});
    if (!side) {
        return side.err();
    }
    p.side = *side == "clear" ? port_side::clear : port_side::protected_side;
    if (a.node["mtu"]) {
        auto mtu = detail::integer(a.child(a.node["mtu"], "mtu"), 576, 9000);
        if (!mtu) {
            return mtu.err();
        }
        p.mtu = static_cast<uint16_t>(*mtu);
    }
    return p;
}

} // namespace

result<void> detail::parse_ports(const at& a, gateway_cfg& cfg)
{
    if (!a.node.IsSequence() || a.node.size() == 0) {
        return a.fail(errc::config_bad_value, "expected a non-empty list of ports");
    }
    std::set<uint16_t> seen;
    std::vector<port_side> sides;
    for (std::size_t i = 0; i < a.node.size(); ++i) {
        auto p = parse_port(a.item(a.node[i], i), cfg);
        if (!p) {
            return p.err();
        }
        if (!seen.insert(p->port).second) {
            return a.item(a.node[i], i).child(a.node[i]["port"], "port").fail(
                errc::config_duplicate, "port " + std::to_string(p->port) + " is listed twice");
        }
        sides.push_back(p->side);
        cfg.ports.push_back(*p);
    }
    std::string why;
    const auto pairs = port_pairs(sides, why);
    if (pairs.empty()) {
        return a.fail(errc::config_bad_value, why);
    }
    for (const auto& [x, y] : pairs) {
        const port_cfg& px = cfg.ports[x];
        const port_cfg& py = cfg.ports[y];
        if (px.side == py.side && px.region == py.region) {
            return a.item(a.node[y], y).fail(errc::config_bad_value,
                                             "protected ports " + std::to_string(px.port) + " and " +
                                                 std::to_string(py.port) +
                                                 " pair (boundary) but are in the same region: give them two regions");
        }
    }
    return {};
}

/// Top-level `regions`: a list of names, each once.
result<void> detail::parse_regions(const at& a, gateway_cfg& cfg)
{
    if (!a.node.IsSequence() || a.node.size() == 0) {
        return a.fail(errc::config_bad_value, "expected a non-empty list of region names");
    }
    for (std::size_t i = 0; i < a.node.size(); ++i) {
        auto name = detail::name_at(a.item(a.node[i], i));
        if (!name) {
            return name.err();
        }
        if (std::find(cfg.regions.begin(), cfg.regions.end(), *name) != cfg.regions.end()) {
            return a.item(a.node[i], i).fail(errc::config_duplicate, "region '" + *name + "' is listed twice");
        }
        cfg.regions.push_back(*name);
    }
    return {};
}

std::vector<std::pair<std::size_t, std::size_t>> port_pairs(const std::vector<port_side>& sides, std::string& why)
{
    std::vector<std::size_t> clear, prot;
    for (std::size_t i = 0; i < sides.size(); ++i) {
        (sides[i] == port_side::clear ? clear : prot).push_back(i);
    }
    if (clear.size() > prot.size() || (prot.size() - clear.size()) % 2 != 0) {
        why = std::to_string(clear.size()) + " clear and " + std::to_string(prot.size()) +
              " protected ports: each clear port pairs with a protected one in order, the protected ports left "
              "over pair in twos (boundary), so the counts must be equal or differ by an even number";
        return {};
    }
    std::vector<std::pair<std::size_t, std::size_t>> pairs;
    for (std::size_t k = 0; k < clear.size(); ++k) {
        pairs.emplace_back(clear[k], prot[k]);
    }
    for (std::size_t k = clear.size(); k + 1 < prot.size(); k += 2) {
        pairs.emplace_back(prot[k], prot[k + 1]);
    }
    if (pairs.empty()) {
        why = "need at least one pair of ports";
    }
    return pairs;
}

} // namespace msecgw::config

namespace msecgw::config {

namespace {

result<void> parse_reassembly(const detail::at& a, reassembly_cfg& r)
{
    if (auto k = detail::only_keys(a, {"timeout_ms", "max_datagrams"}); !k) {
        return k.err();
    }
    if (a.node["timeout_ms"]) {
        auto v = detail::integer(a.child(a.node["timeout_ms"], "timeout_ms"), 10, 60000);
        if (!v) {
            return v.err();
        }
        r.timeout_ms = static_cast<uint32_t>(*v);
    }
    if (a.node["max_datagrams"]) {
        auto v = detail::integer(a.child(a.node["max_datagrams"], "max_datagrams"), 4, 1u << 20);
        if (!v) {
            return v.err();
        }
        r.max_datagrams = static_cast<uint32_t>(*v);
    }
    return {};
}

/// Policies that name a group need this gateway to be a member of the group's region (the keys come
/// from that region's key server), and must be in that region themselves.
result<void> check_group_policies(const gateway_cfg& cfg)
{
    for (const auto& p : cfg.policies) {
        const group_cfg* g = p.group.empty() ? nullptr : cfg.find_group(p.group);
        if (g == nullptr || cfg.member_for(g->region) != nullptr) {
            continue;
        }
        const std::string where = cfg.file + ":" + std::to_string(p.line) + ": policies: group '" + p.group + "' needs ";
        if (cfg.members.empty()) {
            return error{errc::config_missing_key, where + "the top-level key 'member' (who this gateway is to the "
                                                           "key server)"};
        }
        return error{errc::config_missing_key, where + "a 'member' entry for its region '" + cfg.regions[g->region] +
                                                   "' (or one without 'region', for every region)"};
    }
    return {};
}

result<void> parse_root(const detail::at& root, gateway_cfg& cfg)
{
    if (auto r = detail::only_keys(root, {"state_dir", "drivers_cfg", "regions", "ports", "sas", "policies",
                                          "reassembly", "idle_sleep_us", "groups", "key_server", "member"});
        !r) {
        return r.err();
    }
    if (root.node["reassembly"]) {
        if (auto r = parse_reassembly(root.child(root.node["reassembly"], "reassembly"), cfg.reassembly); !r) {
            return r;
        }
    }
    if (root.node["idle_sleep_us"]) {
        auto v = detail::integer(root.child(root.node["idle_sleep_us"], "idle_sleep_us"), 0, 100000);
        if (!v) {
            return v.err();
        }
        cfg.idle_sleep_us = static_cast<uint32_t>(*v);
    }
    for (const char* k : {"state_dir", "drivers_cfg"}) {
        if (root.node[k]) {
            auto v = detail::scalar(root.child(root.node[k], k));
            if (!v || v->empty()) {
                return v ? root.child(root.node[k], k).fail(errc::config_bad_value, "expected a path") : v.err();
            }
            (std::string_view(k) == "state_dir" ? cfg.state_dir : cfg.drivers_cfg) = *v;
        }
    }
    // Regions first: groups, member entries, ports, SAs and policies name them.
    if (root.node["regions"]) {
        if (auto r = detail::parse_regions(root.child(root.node["regions"], "regions"), cfg); !r) {
            return r;
        }
    }
    if (root.node["groups"]) {
        if (auto r = detail::parse_groups(root.child(root.node["groups"], "groups"), cfg); !r) {
            return r;
        }
    }
    if (root.node["key_server"]) {
        if (auto r = detail::parse_key_server(root.child(root.node["key_server"], "key_server"), cfg); !r) {
            return r;
        }
    }
    if (root.node["member"]) {
        if (auto r = detail::parse_member(root.child(root.node["member"], "member"), cfg); !r) {
            return r;
        }
    }
    // A key server alone (msecgw --gcks-only) needs no ports; a gateway does.
    if (!root.node["ports"]) {
        return cfg.key_server ? result<void>{} : root.fail(errc::config_missing_key, "missing key 'ports'");
    }
    if (auto r = detail::parse_ports(root.child(root.node["ports"], "ports"), cfg); !r) {
        return r;
    }
    if (root.node["sas"]) {
        if (auto r = detail::parse_sas(root.child(root.node["sas"], "sas"), cfg); !r) {
            return r;
        }
    }
    if (root.node["policies"]) {
        if (auto r = detail::parse_policies(root.child(root.node["policies"], "policies"), cfg); !r) {
            return r;
        }
    }
    return check_group_policies(cfg);
}

/// The root of each document of a YAML stream, as parser events: whether it is null, and where.
class root_probe : public YAML::EventHandler {
public:
    bool null_root = true;
    YAML::Mark mark = YAML::Mark::null_mark();

    void OnDocumentStart(const YAML::Mark&) override {}
    void OnDocumentEnd() override {}
    void OnNull(const YAML::Mark& m, YAML::anchor_t) override { root(m, true); }
    void OnAlias(const YAML::Mark& m, YAML::anchor_t) override { root(m, false); }
    void OnScalar(const YAML::Mark& m, const std::string&, YAML::anchor_t, const std::string&) override
    {
        root(m, false);
    }
    void OnSequenceStart(const YAML::Mark& m, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override
    {
        root(m, false);
    }
    void OnSequenceEnd() override {}
    void OnMapStart(const YAML::Mark& m, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override
    {
        root(m, false);
    }
    void OnMapEnd() override {}

private:
    void root(const YAML::Mark& m, bool null)
    {
        if (!_seen) {
            _seen = true;
            null_root = null;
            mark = m;
        }
    }
    bool _seen = false;
};

/// Where a second, non-empty document of `text` starts, if there is one (a stray trailing '---'
/// is harmless; a second document is not). Walks the documents with YAML::Parser instead of
/// YAML::LoadAll: yaml-cpp 0.7's LoadAll loops forever, allocating, when a document's root is a
/// token the parser does not consume (text as short as ", x\n {"; yaml-cpp issue #1040, fixed by
/// its PR #1319); here a null root that does not move the parser on ends the walk.
std::optional<YAML::Mark> second_document(const std::string& text)
{
    std::istringstream in(text);
    YAML::Parser parser(in);
    int last_null_pos = -1;
    for (int i = 0;; ++i) {
        root_probe doc;
        if (!parser.HandleNextDocument(doc)) {
            return std::nullopt;
        }
        if (i > 0 && !doc.null_root) {
            return doc.mark;
        }
        if (doc.null_root) {
            if (doc.mark.pos == last_null_pos) {
                return std::nullopt; // no progress: every later "document" is this same token
            }
            last_null_pos = doc.mark.pos;
        }
    }
}

} // namespace

result<gateway_cfg> load_string(std::string_view yaml, std::string_view name)
{
    gateway_cfg cfg;
    cfg.file = std::string(name);
    try {
        const std::string text(yaml);
        if (auto second = second_document(text)) {
            return error{errc::config_syntax, cfg.file + ":" + std::to_string(second->line + 1) +
                                                  ": (yaml): a second YAML document after '---': the configuration is "
                                                  "one document"};
        }
        const YAML::Node doc = YAML::Load(text); // the first document only
        if (!doc.IsDefined() || doc.IsNull()) {
            return error{errc::config_missing_key, cfg.file + ":1: (top): the configuration is empty"};
        }
        if (auto r = parse_root(detail::at{cfg.file, doc, ""}, cfg); !r) {
            return r.err();
        }
    } catch (const YAML::Exception& e) {
        const int line = e.mark.is_null() ? 1 : e.mark.line + 1;
        return error{errc::config_syntax, cfg.file + ":" + std::to_string(line) + ": (yaml): " + e.msg};
    }
    return cfg;
}

result<gateway_cfg> load_file(const std::string& path)
{
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) {
        return error{errc::io, path + ":0: (file): cannot read: is a directory"};
    }
    errno = 0;
    std::ifstream f(path, std::ios::binary);
    if (!f) {
        const int e = errno;
        return error{errc::io, path + ":0: (file): cannot read: " + (e != 0 ? std::strerror(e) : "cannot open")};
    }
    std::ostringstream text;
    text << f.rdbuf();
    if (f.bad()) {
        return error{errc::io, path + ":0: (file): read error"};
    }
    return load_string(text.str(), path);
}

} // namespace msecgw::config
