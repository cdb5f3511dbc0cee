#include "key_manager.hh"

#include <algorithm>
#include <cstdio>

#include "common/log.hh"

namespace msecgw::control {

namespace {

using clock = key_manager::clock;

/// A member that is not registered and holds no keys starts over this long after it gave up.
constexpr std::chrono::seconds registration_retry{5};

std::string hex32(uint32_t v)
{
    char b[11];
    std::snprintf(b, sizeof b, "0x%08x", v);
    return b;
}

/// RFC 7296 §3.13.1 address range of a prefix (TS_IPV4_ADDR_RANGE / TS_IPV6_ADDR_RANGE); `any`
/// takes the family of `other`.
gkm::traffic_selector selector_of(const config::ip_prefix& p, const config::ip_prefix& other)
{
    const config::ip_family family = p.is_any() ? other.family : p.family;
    const size_t n = family == config::ip_family::v6 ? 16 : 4;
    gkm::traffic_selector ts;
    ts.ts_type = n == 16 ? 8 : 7;
    ts.start_address.assign(n, 0);
    ts.end_address.assign(n, 0xff);
    for (size_t i = 0; i < n && !p.is_any(); ++i) {
        const unsigned bits = p.length > i * 8 ? std::min<unsigned>(8, p.length - unsigned(i * 8)) : 0;
        const uint8_t mask = static_cast<uint8_t>(0xff00u >> bits);
        ts.start_address[i] = p.addr[i] & mask;
        ts.end_address[i] = static_cast<uint8_t>(p.addr[i] | ~mask);
    }
    return ts;
}

result<gkm::endpoint> endpoint_of(const config::udp_endpoint& e)
{
    return gkm::endpoint::parse(e.address, e.port);
}

gkm::certificate_config certificates_of(const config::certificate_cfg& c)
{
    return {c.certificate_file, c.private_key_file, c.ca_file};
}

result<gkm::gcks_config> gcks_config_of(const config::gateway_cfg& cfg)
{
    const config::key_server_cfg& ks = *cfg.key_server;
    gkm::gcks_config c;
    auto listen = endpoint_of(ks.listen);
    if (!listen) {
        return listen.err();
    }
    c.listen = *listen;
    c.identity = ks.identity;
    for (const auto& p : ks.peers) {
        c.peers.push_back({p.identity, gkm::bytes(p.psk.bytes())});
    }
    for (const auto& g : cfg.groups) {
        gkm::group_config gc;
        gc.group_id = g.id;
        gc.members = g.members;
        gc.senders = g.senders;
        gc.source = selector_of(g.src, g.dst);
        gc.destination = selector_of(g.dst, g.src);
        gc.tek_key_bits = g.aead == config::aead_alg::aes_128_gcm ? 128 : 256;
        gc.tek_lifetime_seconds = g.tek_lifetime_seconds;
        gc.rekey_period_seconds = g.rekey_period_seconds;
        gc.registration_overlap_ms = g.registration_overlap_ms;
        gc.sender_id_bits = g.sender_id_bits;
        gc.key_tree = g.key_tree;
        gc.lkh_arity = g.lkh_arity;
        gc.lkh_max_members = g.lkh_max_members;
        gc.rekey_batch_ms = g.rekey_batch_ms;
        gc.rekey_ttl = static_cast<uint8_t>(g.rekey_ttl);
        if (g.rekey_address) {
            auto e = endpoint_of(*g.rekey_address);
            if (!e) {
                return e.err();
            }
            gc.rekey_address = *e;
        }
        if (!g.rekey_interface.empty()) {
            auto e = gkm::endpoint::parse(g.rekey_interface, 0);
            if (!e) {
                return e.err();
            }
            gc.rekey_interface = e->address;
        }
        c.groups.push_back(std::move(gc));
    }
    c.state_path = ks.state_path;
    c.storage_key_path = ks.storage_key_file;
    c.etcd_endpoints = ks.etcd_endpoints;
    c.etcd_prefix = ks.etcd_prefix;
    c.candidate_id = ks.candidate_id;
    c.leader_ttl_seconds = ks.leader_ttl_seconds;
    c.certificates = certificates_of(ks.certificates);
    const auto& a = ks.admission;
    c.admission.half_open_timeout = std::chrono::milliseconds(a.half_open_timeout_ms);
    c.admission.max_half_open = a.max_half_open;
    c.admission.max_half_open_per_address = a.max_half_open_per_address;
    c.admission.cookie_threshold = a.cookie_threshold;
    c.admission.cookie_secret_lifetime = std::chrono::milliseconds(a.cookie_secret_lifetime_ms);
    c.admission.finished_linger = std::chrono::milliseconds(a.finished_linger_ms);
    return c;
}

bool sends_to(const config::gateway_cfg& cfg, const std::string& group)
{
    return std::any_of(cfg.policies.begin(), cfg.policies.end(), [&](const config::policy_cfg& p) {
        return p.group == group && p.dir == config::direction::out;
    });
}

/// The SAs derived from one group at one moment: which TEKs open, which one seals.
struct key_plan {
    std::optional<uint32_t> out_spi;
    std::optional<uint32_t> sender_id;
    uint8_t sender_id_bits = 0;
    std::vector<uint32_t> in_spis; ///< newest first
    bool operator==(const key_plan&) const = default;
};

std::string in_sa_name(const std::string& group, uint32_t spi)
{
    return group + "." + hex32(spi) + ".in";
}

std::string out_sa_name(const std::string& group, uint32_t spi, uint32_t sender_id)
{
    return group + "." + hex32(spi) + ".out.sid" + std::to_string(sender_id);
}

config::sa_cfg sa_of(const config::group_cfg& g, const gkm::tek& t, config::direction dir)
{
    config::sa_cfg s;
    s.dir = dir;
    s.spi = t.spi;
    s.aead = t.key_bits == 256 ? config::aead_alg::aes_256_gcm : config::aead_alg::aes_128_gcm;
    std::vector<uint8_t> keymat;
    keymat.reserve(t.key.size() + t.salt.size()); // one buffer, never reallocated: no stray key copy
    keymat.insert(keymat.end(), t.key.view().begin(), t.key.view().end());
    keymat.insert(keymat.end(), t.salt.view().begin(), t.salt.view().end());
    s.key = config::secret_bytes(std::move(keymat));
    s.group = g.name;
    s.source_auth = g.source_auth; // the group's source authentication applies to every SA of it
    s.region = g.region;           // in the SAD of the region whose key server keyed it
    if (dir == config::direction::in) {
        s.dst = g.dst;
        s.replay_window = g.replay_window;
    }
    return s;
}

} // namespace

struct key_manager::member_rt {
    config::group_cfg group;
    bool sender = false;
    std::unique_ptr<gkm::group_member> gm;
    std::chrono::milliseconds activation{0};   ///< of the member entry of the group's region
    std::chrono::milliseconds deactivation{0};
    std::map<uint32_t, clock::time_point> arrived; ///< TEK SPI -> when this gateway got it
    key_plan plan;
    gkm::member_state last_state = gkm::member_state::idle;
    std::optional<clock::time_point> retry_at;
    uint64_t registrations = 0;
    uint64_t key_changes = 0;

    const gkm::tek* tek(uint32_t spi) const
    {
        const gkm::group_membership* ms = gm->membership();
        if (ms == nullptr) {
            return nullptr;
        }
        auto it = std::find_if(ms->teks.begin(), ms->teks.end(), [&](const gkm::tek& t) { return t.spi == spi; });
        return it == ms->teks.end() ? nullptr : &*it;
    }
};

result<std::unique_ptr<key_manager>> key_manager::create(const config::gateway_cfg& cfg, bool member_role,
                                                         clock::time_point now)
{
    std::unique_ptr<key_manager> km(new key_manager());
    km->_groups = cfg.groups;
    if (cfg.key_server) {
        auto c = gcks_config_of(cfg);
        if (!c) {
            return error{c.err().code, cfg.file + ":" + std::to_string(cfg.key_server->line) + ": key_server: " +
                                           c.err().detail};
        }
        auto s = gkm::gcks::create(std::move(c.value()));
        if (!s) {
            return error{s.err().code, cfg.file + ":" + std::to_string(cfg.key_server->line) + ": key_server: " +
                                           s.err().detail};
        }
        km->_gcks = std::move(s.value());
        MSECGW_LOG(NOTICE, keys, "key server %s listening on %s for %zu group(s)", cfg.key_server->identity.c_str(),
                   km->_gcks->local().to_string().c_str(), cfg.groups.size());
        if (!cfg.key_server->etcd_endpoints.empty()) {
            MSECGW_LOG(NOTICE, keys, "key server: state in etcd (%zu endpoint(s), prefix %s), %s",
                       cfg.key_server->etcd_endpoints.size(), cfg.key_server->etcd_prefix.c_str(),
                       km->_gcks->leading() ? "leading" : "standing by");
        }
    }
    if (!member_role || cfg.members.empty()) {
        return km;
    }
    for (const auto& g : cfg.groups) {
        const bool named = std::any_of(cfg.policies.begin(), cfg.policies.end(),
                                       [&](const config::policy_cfg& p) { return p.group == g.name; });
        const config::member_cfg* mc = cfg.member_for(g.region);
        if (!named || mc == nullptr) {
            continue; // a group only the key server serves (a policy naming it needs a member: config)
        }
        auto where = [&](const error& e) {
            return error{e.code, cfg.file + ":" + std::to_string(mc->line) + ": member: " + e.detail};
        };
        auto m = std::make_unique<member_rt>();
        m->group = g;
        m->sender = sends_to(cfg, g.name);
        m->activation = std::chrono::milliseconds(mc->activation_delay_ms);
        m->deactivation = std::chrono::milliseconds(mc->deactivation_delay_ms);
        gkm::member_config c;
        auto local = gkm::endpoint::parse(mc->local_address, 0);
        if (!local) {
            return where(local.err());
        }
        c.local = *local;
        for (const auto& ks : mc->key_servers) {
            auto e = endpoint_of(ks);
            if (!e) {
                return where(e.err());
            }
            c.key_servers.push_back(*e);
        }
        c.gcks = c.key_servers.front();
        c.identity = mc->identity;
        c.psk = gkm::bytes(mc->psk.bytes());
        c.certificates = certificates_of(mc->certificates);
        c.gcks_identity = mc->key_server_identity;
        c.group_id = g.id;
        c.sender = m->sender;
        c.group = static_cast<gkm::dh_group>(mc->dh_group);
        auto gm = gkm::group_member::create(std::move(c));
        if (!gm) {
            return where(gm.err());
        }
        m->gm = std::move(gm.value());
        m->gm->start(now);
        const std::string region = cfg.regions.empty() ? "" : " in region " + cfg.regions[g.region];
        MSECGW_LOG(INFO, keys, "group %s (id %u%s): registering with key server %s as %s%s", g.name.c_str(), g.id,
                   region.c_str(), m->gm->key_server().to_string().c_str(), mc->identity.c_str(),
                   m->sender ? ", sender" : "");
        km->_members.push_back(std::move(m));
    }
    return km;
}

key_manager::~key_manager()
{
    if (_gcks) {
        _gcks->resign();  // a clean stop: a standby key server takes over without waiting for the lease
    }
}

void key_manager::tick_member(member_rt& m, clock::time_point now)
{
    m.gm->tick(now);
    const gkm::member_state st = m.gm->state();
    const gkm::group_membership* ms = m.gm->membership();
    if (st != m.last_state) {
        if (st == gkm::member_state::registered) {
            ++m.registrations;
            MSECGW_LOG(NOTICE, keys, "group %s: registered (TEK SPI %s%s)", m.group.name.c_str(),
                       hex32(ms->teks.front().spi).c_str(),
                       ms->sender_id ? (", Sender-ID " + std::to_string(*ms->sender_id) + "/" +
                                        std::to_string(ms->sender_id_bits) + " bits").c_str()
                                     : "");
        } else if (st == gkm::member_state::rejected || st == gkm::member_state::timed_out ||
                   st == gkm::member_state::failed) {
            MSECGW_LOG(ERR, keys, "group %s: registration %s: %s%s", m.group.name.c_str(),
                       std::string(gkm::to_string(st)).c_str(), m.gm->last_error().c_str(),
                       ms != nullptr ? " (keeping the keys it holds)" : "");
        }
        m.last_state = st;
    }
    // The member retries on its own while it holds keys (recovery); a first registration that
    // failed is started again here.
    if (ms == nullptr && (st == gkm::member_state::rejected || st == gkm::member_state::timed_out ||
                          st == gkm::member_state::failed)) {
        if (!m.retry_at) {
            m.retry_at = now + registration_retry;
        } else if (now >= *m.retry_at) {
            m.retry_at.reset();
            m.gm->start(now);
        }
    }
    key_plan next;
    if (ms != nullptr && !ms->teks.empty()) {
        for (const auto& t : ms->teks) {
            m.arrived.try_emplace(t.spi, now);
        }
        std::erase_if(m.arrived, [&](const auto& kv) { return m.tek(kv.first) == nullptr; });
        // Inbound: the newest TEK at once; an older one until its successor has been sending
        // (activation delay) for the deactivation delay.
        next.in_spis.push_back(ms->teks.front().spi);
        for (size_t i = 1; i < ms->teks.size(); ++i) {
            if (now < m.arrived[ms->teks[i - 1].spi] + m.activation + m.deactivation) {
                next.in_spis.push_back(ms->teks[i].spi);
            }
        }
        // Outbound: the newest TEK that every member has had time to install; when none has had
        // that time yet, the oldest held (a registration just after a rekey gets the replaced TEK
        // too, and a member that applied two rekeys at once still holds the one it sent under);
        // a registration with one TEK has only that one.
        if (m.sender && ms->sender_id) {
            next.out_spi = ms->teks.back().spi;
            for (const auto& t : ms->teks) {
                if (now >= m.arrived[t.spi] + m.activation) {
                    next.out_spi = t.spi;
                    break;
                }
            }
            next.sender_id = ms->sender_id;
            next.sender_id_bits = ms->sender_id_bits;
        }
    }
    if (next != m.plan) {
        if (next.out_spi && next.out_spi != m.plan.out_spi) {
            MSECGW_LOG(INFO, keys, "group %s: sending with TEK SPI %s", m.group.name.c_str(), hex32(*next.out_spi).c_str());
        }
        if (!next.in_spis.empty() && (m.plan.in_spis.empty() || next.in_spis.front() != m.plan.in_spis.front())) {
            MSECGW_LOG(INFO, keys, "group %s: opening TEK SPI %s", m.group.name.c_str(), hex32(next.in_spis.front()).c_str());
        }
        m.plan = std::move(next);
        ++m.key_changes;
    }
}

/// The key server's tick, and its log: leadership changes, etcd failures and back-off (once per
/// back-off step, then every 20th failure at the bound), recovery, and every value it issued.
void key_manager::tick_key_server(clock::time_point now)
{
    const bool was = _gcks->leading();
    const uint64_t failures_before = _gcks->etcd_consecutive_failures();
    const auto backoff_before = _gcks->etcd_backoff();
    _gcks->tick(now);
    const uint64_t failures = _gcks->etcd_consecutive_failures();
    if (_gcks->leading() != was) {
        if (_gcks->leading()) {
            MSECGW_LOG(NOTICE, keys, "key server: leading the key servers on etcd (state loaded from etcd)");
        } else {
            MSECGW_LOG(WARNING, keys, "key server: standing by, registrations are not answered: %s",
                       _gcks->cluster_error().c_str());
        }
    }
    if (failures > failures_before && (_gcks->etcd_backoff() != backoff_before || failures % 20 == 1)) {
        MSECGW_LOG(ERR, keys, "key server: etcd does not answer (%llu failures in a row), no new registrations, "
                   "next try in %lld ms: %s", static_cast<unsigned long long>(failures),
                   static_cast<long long>(_gcks->etcd_backoff().count()), _gcks->cluster_error().c_str());
    } else if (failures == 0 && failures_before != 0) {
        MSECGW_LOG(NOTICE, keys, "key server: etcd answers again after %llu failures in a row (%s)",
                   static_cast<unsigned long long>(failures_before), _gcks->leading() ? "leading" : "standing by");
    }
    // The audit log of issued values: with the monotonic clock, so that runs of several key
    // servers on one machine can be ordered (tests check that nothing was issued twice).
    for (const gkm::issued_value& v : _gcks->take_issued()) {
        const double at = std::chrono::duration<double>(v.at.time_since_epoch()).count();
        const std::string what(gkm::to_string(v.what));
        if (v.what == gkm::issued_value::kind::tek_spi) {
            MSECGW_LOG(INFO, keys, "key server: issued %s %s group %u at %.6f", what.c_str(), hex32(v.first).c_str(),
                       v.group_id, at);
        } else {
            MSECGW_LOG(INFO, keys, "key server: issued %s %u..%u group %u at %.6f", what.c_str(), v.first,
                       v.first + v.count - 1, v.group_id, at);
        }
    }
}

bool key_manager::tick(clock::time_point now)
{
    if (_gcks) {
        tick_key_server(now);
    }
    bool changed = false;
    for (auto& m : _members) {
        const uint64_t before = m->key_changes;
        tick_member(*m, now);
        changed |= m->key_changes != before;
    }
    return changed;
}

config::gateway_cfg strip_group_sas(const config::gateway_cfg& cfg)
{
    config::gateway_cfg out = cfg;
    std::erase_if(out.sas, [](const config::sa_cfg& s) { return !s.group.empty(); });
    std::erase_if(out.policies, [](const config::policy_cfg& p) { return p.twin; });
    for (auto& p : out.policies) {
        if (!p.group.empty()) {
            p.sa.clear();
        }
    }
    return out;
}

config::gateway_cfg key_manager::expand(const config::gateway_cfg& cfg) const
{
    config::gateway_cfg out = strip_group_sas(cfg);
    std::map<std::string, std::pair<std::string, std::vector<std::string>>> names; // group -> out SA, in SAs
    for (const auto& m : _members) {
        auto& [out_name, in_names] = names[m->group.name];
        for (uint32_t spi : m->plan.in_spis) {
            const gkm::tek* t = m->tek(spi);
            if (t == nullptr) {
                continue;
            }
            config::sa_cfg s = sa_of(m->group, *t, config::direction::in);
            s.name = in_sa_name(m->group.name, spi);
            in_names.push_back(s.name);
            out.sas.push_back(std::move(s));
        }
        const gkm::tek* t = m->plan.out_spi ? m->tek(*m->plan.out_spi) : nullptr;
        if (t != nullptr) {
            config::sa_cfg s = sa_of(m->group, *t, config::direction::out);
            s.sender_id = *m->plan.sender_id;
            s.sender_id_bits = m->plan.sender_id_bits;
            s.name = out_sa_name(m->group.name, t->spi, s.sender_id);
            out_name = s.name;
            out.sas.push_back(std::move(s));
        }
    }
    std::vector<config::policy_cfg> policies;
    for (auto& p : out.policies) {
        auto it = names.find(p.group);
        if (p.group.empty() || it == names.end()) {
            policies.push_back(std::move(p)); // a group this gateway is no member of keeps no SA
            continue;
        }
        const auto& [out_name, in_names] = it->second;
        if (p.dir == config::direction::out) {
            p.sa = out_name;
            policies.push_back(std::move(p));
            continue;
        }
        for (size_t i = 0; i < std::max<size_t>(in_names.size(), 1); ++i) {
            config::policy_cfg copy = p;
            copy.sa = in_names.empty() ? std::string() : in_names[i];
            copy.twin = i > 0;
            policies.push_back(std::move(copy));
        }
    }
    out.policies = std::move(policies);
    return out;
}

result<void> key_manager::rekey(std::string_view group)
{
    auto g = std::find_if(_groups.begin(), _groups.end(), [&](const config::group_cfg& x) { return x.name == group; });
    if (g == _groups.end()) {
        return error{errc::config_reference, "no group named '" + std::string(group) + "'"};
    }
    if (!_gcks) {
        return error{errc::unsupported, "this gateway runs no key server (key_server in the configuration); "
                                        "rekey group " + std::string(group) + " on its key server"};
    }
    if (auto r = _gcks->rekey(g->id); !r) {
        return r;
    }
    MSECGW_LOG(NOTICE, keys, "group %s: rekey sent (TEK SPI %s)", g->name.c_str(),
               hex32(_gcks->status(g->id)->tek_spi).c_str());
    return {};
}

std::optional<gkm::group_status> key_manager::key_server_group(std::string_view group) const
{
    auto g = std::find_if(_groups.begin(), _groups.end(), [&](const config::group_cfg& x) { return x.name == group; });
    if (!_gcks || g == _groups.end()) {
        return std::nullopt;
    }
    return _gcks->status(g->id);
}

std::vector<member_status> key_manager::members() const
{
    std::vector<member_status> out;
    for (const auto& m : _members) {
        member_status s;
        s.group = m->group.name;
        s.group_id = m->group.id;
        s.key_server = m->gm->key_server().to_string();
        s.state = m->gm->state();
        s.sender = m->sender;
        s.sender_id = m->plan.sender_id;
        s.sender_id_bits = m->plan.sender_id_bits;
        s.out_spi = m->plan.out_spi;
        s.in_spis = m->plan.in_spis;
        s.registrations = m->registrations;
        s.key_changes = m->key_changes;
        s.counters = m->gm->counters();
        s.last_error = m->gm->last_error();
        out.push_back(std::move(s));
    }
    return out;
}

} // namespace msecgw::control
