#include "operator.hh"

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

result<std::unique_ptr<operator_cli>> operator_cli::open(gateway& gw, const options& opts,
                                                         std::chrono::steady_clock::time_point t0,
                                                         std::unique_ptr<cli::socket_server> server)
{
    std::unique_ptr<operator_cli> o(new operator_cli(gw, opts, t0));
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
