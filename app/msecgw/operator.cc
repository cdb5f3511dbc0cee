#include "operator.hh"

#include <algorithm>

#include "common/log.hh"
#include "msecgw_build_config.hh"

namespace msecgw::app {

namespace {

template <class Sa>
cli::sa_counters counters_of(const Sa& sa, config::direction dir)
{
    cli::sa_counters c{sa.uid, sa.name, dir, 0, 0, "active"};
    for (const auto& lane : sa.lanes) {
        c.packets += lane.pkts;
        c.bytes += lane.bytes;
    }
    if (sa.expired.load(std::memory_order_relaxed) != 0) {
        c.state = "expired";
    }
    return c;
}

} // namespace

stats::totals cli_backend::totals()
{
    return _gw.collect(std::chrono::duration<double>(std::chrono::steady_clock::now() - _t0).count());
}

std::vector<cli::sa_counters> cli_backend::sas()
{
    std::vector<cli::sa_counters> out;
    const auto& st = _gw.snapshot();
    for (const auto& sa : st.out_sas) {
        auto c = counters_of(*sa, config::direction::out);
        if (sa->stopped.load(std::memory_order_relaxed) != 0) {
            c.state = "stopped";
        } else if (sa->budget_spent.load(std::memory_order_relaxed) != 0) {
            c.state = "expired";
        }
        out.push_back(std::move(c));
    }
    for (const auto& sa : st.in_sas) {
        out.push_back(counters_of(*sa, config::direction::in));
    }
    return out;
}

result<void> cli_backend::apply(config::gateway_cfg cfg)
{
    cfg.file = _gw.config().file; // messages keep naming the running configuration
    if (auto r = _gw.reload(std::move(cfg)); !r) {
        return r;
    }
    MSECGW_LOG(NOTICE, config, "configuration changed from the CLI (not written to %s)", _gw.config().file.c_str());
    if (!_opts.keylog.empty()) {
        if (auto k = _gw.write_keylog(_opts.keylog); !k) {
            MSECGW_LOG(ERR, main, "%s", k.err().detail.c_str());
        }
    }
    return {};
}

std::vector<cli::group_info> cli_backend::groups() const
{
    std::vector<cli::group_info> out;
    if (_keys == nullptr) {
        return out;
    }
    const auto members = _keys->members();
    for (const auto& g : _keys->groups()) {
        cli::group_info i;
        i.name = g.name;
        i.id = g.id;
        const auto& regions = running().regions;
        i.region = g.region < regions.size() ? regions[g.region] : "";
        auto m = std::find_if(members.begin(), members.end(), [&](const auto& x) { return x.group == g.name; });
        if (m != members.end()) {
            i.member_state = std::string(gkm::to_string(m->state));
            i.member_key_server = m->key_server;
            i.sender_id = m->sender_id;
            i.sender_id_bits = m->sender_id_bits;
            i.out_spi = m->out_spi;
            i.in_spis = m->in_spis;
            i.rekeys_accepted = m->counters.rekeys_accepted;
            i.rekeys_rejected = m->counters.rekeys_forged + m->counters.rekeys_replayed;
            i.reregistrations = m->counters.reregistrations;
        }
        if (auto s = _keys->key_server_group(g.name)) {
            i.key_server = true;
            i.server_tek_spi = s->tek_spi;
            i.server_members = s->members;
        }
        if (m != members.end() || i.key_server) {
            out.push_back(std::move(i));
        }
    }
    return out;
}

void add_key_samples(const control::key_manager* keys, metrics::sample& s)
{
    if (keys == nullptr) {
        return;
    }
    for (const auto& m : keys->members()) {
        s.members.push_back({m.group, m.state == gkm::member_state::registered || !m.in_spis.empty(), m.registrations,
                             m.key_changes, m.counters.rekeys_accepted, m.counters.rekeys_forged,
                             m.counters.rekeys_replayed, m.counters.rekeys_missed, m.counters.reregistrations,
                             m.counters.gcks_failovers});
    }
    const gkm::gcks* ks = keys->key_server();
    if (ks == nullptr) {
        return;
    }
    const gkm::gcks_counters& c = ks->counters();
    metrics::key_server_sample k{c.registrations, c.authorization_failed, c.authentication_failed, c.invalid_group,
                                 c.no_proposal_chosen, c.malformed, c.retransmissions_answered, c.rekeys_sent,
                                 c.periodic_rekeys, c.restart_rekeys, c.rekeys_failed, c.cookies_sent, c.cookies_rejected,
                                 c.half_open_dropped, c.half_open_address_dropped, c.half_open_expired, ks->half_open_sessions(), ks->sessions(), {},
                                 ks->leading(), c.leader_takeovers, c.leader_step_downs, c.etcd_errors,
                                 c.not_leader_dropped, c.etcd_retries_deferred, ks->etcd_consecutive_failures(),
                                 std::chrono::duration<double>(ks->etcd_backoff()).count(), c.ignored,
                                 c.registrations_with_previous_tek};
    for (const auto& g : keys->groups()) {
        if (auto st = keys->key_server_group(g.name)) {
            k.group_members.emplace_back(g.name, st->members);
        }
    }
    s.key_server = std::move(k);
}

result<void> cli_backend::rekey(const std::string& group)
{
    if (_keys == nullptr) {
        return error{errc::unsupported, "no key server for group " + group};
    }
    return _keys->rekey(group);
}

result<std::unique_ptr<operator_cli>> operator_cli::open(gateway& gw, control::key_manager* keys, const options& opts,
                                                         std::chrono::steady_clock::time_point t0,
                                                         std::unique_ptr<cli::socket_server> server)
{
    std::unique_ptr<operator_cli> o(new operator_cli(gw, keys, opts, t0));
    o->_server = std::move(server);
    if (o->_server) {
        MSECGW_LOG(NOTICE, cli, "CLI on unix socket %s", opts.cli_socket.c_str());
    }
    auto t = cli::telemetry::start(MSECGW_VERSION);
    if (!t) {
        return t.err();
    }
    o->_telemetry = std::move(t.value());
    if (opts.interactive) {
        auto p = cli::prompt::open(o->_engine);
        if (!p) {
            return p.err();
        }
        o->_prompt = std::move(p.value());
    }
    return o;
}

void operator_cli::poll()
{
    _telemetry->refresh(_backend);
    if (_server) {
        _server->poll(_engine);
    }
    if (_prompt) {
        _prompt->poll();
        if (_prompt->closed()) {
            _prompt.reset(); // EOF on stdin: the gateway keeps running, the socket keeps serving
        }
    }
}

void operator_cli::flush()
{
    if (_server) {
        _server->flush(std::chrono::milliseconds(500));
    }
    _prompt.reset();
}

} // namespace msecgw::app
