// msecgw: DPDK multicast security gateway. Main lcore = control plane; every other lcore = worker.
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_pdump.h>
#include <rte_version.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <optional>
#include <thread>

#include "common/log.hh"
#include "config/config.hh"
#include "default_config.hh"
#include "gateway.hh"
#include "metrics/metrics.hh"
#include "msecgw_build_config.hh"
#include "operator.hh"
#include "options.hh"

#include <poll.h>
#include <unistd.h>

namespace {

volatile std::sig_atomic_t g_signal = 0;
volatile std::sig_atomic_t g_reload = 0;

void on_signal(int sig)
{
    g_signal = sig;
}

void on_hup(int)
{
    g_reload = 1;
}

int fail(const std::string& line, int code = 1)
{
    std::fprintf(stderr, "msecgw: %s\n", line.c_str());
    return code;
}

/// Index of the "--" that separates EAL arguments from ours, or argc.
int find_separator(int argc, char** argv)
{
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--") == 0) {
            return i;
        }
    }
    return argc;
}

msecgw::result<msecgw::config::gateway_cfg> load_config(const msecgw::app::options& o)
{
    if (o.config.empty()) {
        return msecgw::config::load_string(msecgw::app::default_config, msecgw::app::default_config_name);
    }
    return msecgw::config::load_file(o.config);
}

bool write_file(const std::string& path, const std::string& text)
{
    std::ofstream f(path, std::ios::trunc);
    f << text;
    return static_cast<bool>(f.flush());
}

/// SIGHUP: re-reads the configuration file and applies its SAs and policies under traffic.
void reload(const msecgw::app::options& opts, msecgw::app::gateway& gw)
{
    if (opts.config.empty()) {
        MSECGW_LOG(WARNING, main, "SIGHUP ignored: running the embedded configuration");
        return;
    }
    auto cfg = msecgw::config::load_file(opts.config);
    auto r = cfg ? gw.reload(std::move(cfg.value())) : msecgw::result<void>(cfg.err());
    if (!r) {
        MSECGW_LOG(ERR, config, "reload refused, keeping the running configuration: %s", r.err().detail.c_str());
        return;
    }
    MSECGW_LOG(NOTICE, config, "configuration reloaded from %s", opts.config.c_str());
    if (!opts.keylog.empty()) {
        if (auto k = gw.write_keylog(opts.keylog); !k) {
            MSECGW_LOG(ERR, main, "%s", k.err().detail.c_str());
        }
    }
}

/// --metrics: the exporter, started after the EAL (its threads inherit the control lcore's CPU).
msecgw::result<std::unique_ptr<msecgw::metrics::exporter>> start_metrics(const std::optional<msecgw::metrics::endpoint>& ep)
{
    if (!ep) {
        return std::unique_ptr<msecgw::metrics::exporter>();
    }
    const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    auto e = msecgw::metrics::exporter::start(*ep, {MSECGW_VERSION, rte_version(), now});
    if (e) {
        MSECGW_LOG(NOTICE, metrics, "metrics on http://%s/metrics", ep->to_string().c_str());
    }
    return e;
}

/// Key management step: drives the key server and members; new group keys go to the workers
/// through the RCU reload (and into --keylog when asked).
void tick_keys(const msecgw::app::options& opts, msecgw::app::gateway& gw, msecgw::control::key_manager* keys)
{
    if (keys == nullptr || !keys->tick(std::chrono::steady_clock::now())) {
        return;
    }
    if (auto r = gw.refresh_group_keys(); !r) {
        MSECGW_LOG(ERR, keys, "group keys not installed, the data plane keeps the previous ones: %s",
                   r.err().detail.c_str());
        return;
    }
    if (!opts.keylog.empty()) {
        if (auto k = gw.write_keylog(opts.keylog); !k) {
            MSECGW_LOG(ERR, main, "%s", k.err().detail.c_str());
        }
    }
}

/// Runs until the duration elapses, a signal arrives or the CLI says quit; the control plane lives here.
void control_loop(const msecgw::app::options& opts, msecgw::app::gateway& gw, msecgw::metrics::exporter* exp,
                  msecgw::app::operator_cli& cli, msecgw::control::key_manager* keys)
{
    using clock = std::chrono::steady_clock;
    const auto t0 = clock::now();
    const auto end = t0 + std::chrono::duration<double>(opts.duration);
    const std::function<msecgw::metrics::sample()> take = [&] {
        const double secs = std::chrono::duration<double>(clock::now() - t0).count();
        msecgw::metrics::sample s{gw.collect(secs), msecgw::metrics::sa_samples(gw.snapshot()), {}, {}};
        msecgw::app::add_key_samples(keys, s);
        return s;
    };
    while (g_signal == 0 && !cli.quit_requested() && (opts.duration <= 0 || clock::now() < end)) {
        gw.tick();
        tick_keys(opts, gw, keys);
        cli.poll();
        if (g_reload != 0) {
            g_reload = 0;
            reload(opts, gw);
        }
        if (exp != nullptr) {
            exp->serve(take);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
}

int run(const msecgw::app::options& opts, msecgw::config::gateway_cfg cfg,
        const std::optional<msecgw::metrics::endpoint>& metrics_ep,
        std::unique_ptr<msecgw::cli::socket_server> cli_server)
{
    using clock = std::chrono::steady_clock;
    auto exp = start_metrics(metrics_ep);
    if (!exp) {
        return fail(exp.err().detail, 2);
    }
    std::unique_ptr<msecgw::control::key_manager> keys;
    if (cfg.key_server || !cfg.members.empty()) {
        auto k = msecgw::control::key_manager::create(cfg, true, clock::now());
        if (!k) {
            return fail(k.err().detail);
        }
        keys = std::move(k.value());
    }
    auto gw = msecgw::app::gateway::create(std::move(cfg), keys.get());
    if (!gw) {
        return fail(gw.err().detail);
    }
    if (!opts.keylog.empty()) {
        if (auto k = (*gw)->write_keylog(opts.keylog); !k) {
            return fail(k.err().detail);
        }
    }
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    std::signal(SIGHUP, on_hup);
    const auto t0 = clock::now();
    if (auto r = (*gw)->launch(); !r) {
        return fail(r.err().detail);
    }
    auto cli = msecgw::app::operator_cli::open(**gw, keys.get(), opts, t0, std::move(cli_server));
    if (!cli) {
        (*gw)->stop_and_wait();
        return fail(cli.err().detail);
    }
    control_loop(opts, **gw, exp->get(), **cli, keys.get());
    (*cli)->flush(); // the answer to `quit` leaves before the drain
    exp->reset();    // scrapes end with the control loop
    (*gw)->stop_and_wait();
    const double secs = std::chrono::duration<double>(clock::now() - t0).count();
    const auto totals = (*gw)->collect(secs);
    std::fputs(msecgw::stats::summary(totals).c_str(), stdout);
    std::fflush(stdout);
    if (!opts.stats_json.empty() && !write_file(opts.stats_json, msecgw::stats::to_json(totals))) {
        return fail("--stats-json " + opts.stats_json + ": cannot write");
    }
    return 0;
}

/// --gcks-only: the configuration's key server alone, on kernel sockets; no EAL, no ports.
int run_key_server(const msecgw::app::options& opts, const msecgw::config::gateway_cfg& cfg,
                   const std::optional<msecgw::metrics::endpoint>& metrics_ep)
{
    using clock = std::chrono::steady_clock;
    if (!cfg.key_server) {
        return fail(cfg.file + ": --gcks-only needs the top-level key 'key_server'", 2);
    }
    rte_openlog_stream(stderr);
    auto keys = msecgw::control::key_manager::create(cfg, false, clock::now());
    if (!keys) {
        return fail(keys.err().detail);
    }
    auto exp = start_metrics(metrics_ep);
    if (!exp) {
        return fail(exp.err().detail, 2);
    }
    // A scrape: the key server's counters (no ports, so every packet counter stays 0).
    const std::function<msecgw::metrics::sample()> take = [&] {
        msecgw::metrics::sample s{};
        msecgw::app::add_key_samples(keys->get(), s);
        return s;
    };
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    const auto end = clock::now() + std::chrono::duration<double>(opts.duration);
    while (g_signal == 0 && (opts.duration <= 0 || clock::now() < end)) {
        (*keys)->tick(clock::now());
        if (*exp) {
            (*exp)->serve(take);
        }
        pollfd p{(*keys)->key_server()->fd(), POLLIN, 0};
        ::poll(&p, 1, 10); // wakes for a datagram, or every 10 ms for retransmissions and rekeys
    }
    const auto& c = (*keys)->key_server()->counters();
    std::printf("key server: %llu registrations, %llu refused (authorization), %llu refused (authentication), "
                "%llu rekey messages, %llu malformed datagrams dropped, %llu ignored, %llu cookies sent, "
                "%llu cookies rejected, %llu IKE_SA_INIT dropped at max_half_open, %llu at max_half_open_per_address, "
                "%llu half-open expired\n",
                static_cast<unsigned long long>(c.registrations), static_cast<unsigned long long>(c.authorization_failed),
                static_cast<unsigned long long>(c.authentication_failed), static_cast<unsigned long long>(c.rekeys_sent),
                static_cast<unsigned long long>(c.malformed), static_cast<unsigned long long>(c.ignored),
                static_cast<unsigned long long>(c.cookies_sent), static_cast<unsigned long long>(c.cookies_rejected),
                static_cast<unsigned long long>(c.half_open_dropped),
                static_cast<unsigned long long>(c.half_open_address_dropped),
                static_cast<unsigned long long>(c.half_open_expired));
    return 0;
}

} // namespace

int main(int argc, char** argv)
{
    // `msecgw --gcks-only ...` takes no EAL arguments; otherwise ours follow EAL's after `--`.
    const bool gcks_only = argc > 1 && std::strcmp(argv[1], "--gcks-only") == 0;
    const int sep = gcks_only ? 0 : find_separator(argc, argv);
    const int app_argc = sep < argc ? argc - sep - 1 : 0;
    auto opts = msecgw::app::parse_options(app_argc, argv + sep + (sep < argc ? 1 : 0));
    if (!opts) {
        return fail(opts.err().detail, 2);
    }
    if (opts->help) {
        std::fputs(msecgw::app::usage(), stdout);
        return 0;
    }
    // Config errors are reported before the EAL starts: one line, file:line: key: reason.
    auto cfg = load_config(*opts);
    if (!cfg) {
        return fail(cfg.err().detail, 2);
    }
    // --metrics errors too: no port, port out of range, address in use.
    std::optional<msecgw::metrics::endpoint> metrics_ep;
    if (!opts->metrics.empty()) {
        auto ep = msecgw::metrics::parse_endpoint(opts->metrics);
        auto r = ep ? msecgw::metrics::check_bindable(*ep) : msecgw::result<void>(ep.err());
        if (!r) {
            return fail(r.err().detail, 2);
        }
        metrics_ep = *ep;
    }
    if (opts->gcks_only) {
        return run_key_server(*opts, cfg.value(), metrics_ep);
    }
    if (opts->interactive && ::isatty(STDIN_FILENO) != 1) {
        return fail("--interactive: stdin is not a terminal (use --cli-socket PATH and msecgw-cli)", 2);
    }
    // --cli-socket too: listening before the EAL starts; requests wait until the control loop runs.
    std::unique_ptr<msecgw::cli::socket_server> cli_server;
    if (!opts->cli_socket.empty()) {
        auto s = msecgw::cli::socket_server::open(opts->cli_socket);
        if (!s) {
            return fail(s.err().detail, 2);
        }
        cli_server = std::move(s.value());
    }
    if (rte_eal_init(sep, argv) < 0) {
        return fail(std::string("EAL init failed: ") + rte_strerror(rte_errno));
    }
    rte_openlog_stream(stderr); // every log line on stderr (EAL's default is stdout and syslog)
    // dpdk-dumpcap / dpdk-pdump (secondary processes) capture through this; needs shared
    // (hugepage) memory: with --no-huge a secondary cannot attach and capture is unavailable.
    if (rte_pdump_init() != 0) {
        MSECGW_LOG(WARNING, main, "packet capture (rte_pdump) unavailable: %s", rte_strerror(rte_errno));
    }
    const int rc = run(*opts, std::move(cfg.value()), metrics_ep, std::move(cli_server));
    rte_pdump_uninit();
    rte_eal_cleanup();
    return rc;
}
