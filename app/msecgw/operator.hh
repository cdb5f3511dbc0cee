#pragma once
// The operator interfaces served by the control loop: the CLI engine over --cli-socket and
// --interactive, and the /msecgw/ telemetry snapshot. Control core only.

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "cli/commands.hh"
#include "cli/prompt.hh"
#include "cli/server.hh"
#include "cli/telemetry.hh"
#include "gateway.hh"
#include "metrics/metrics.hh"
#include "options.hh"

namespace msecgw::app {

/// The CLI's view of the running gateway.
class cli_backend final : public cli::backend {
public:
    cli_backend(gateway& gw, control::key_manager* keys, const options& opts, std::chrono::steady_clock::time_point t0)
        : _gw(gw), _keys(keys), _opts(opts), _t0(t0) {}
    stats::totals totals() override;
    const config::gateway_cfg& running() const override { return _gw.config(); }
    std::vector<cli::sa_counters> sas() override;
    result<void> apply(config::gateway_cfg cfg) override;
    void quit() override { _quit = true; }
    std::vector<cli::group_info> groups() const override;
    result<void> rekey(const std::string& group) override;
    bool quit_requested() const { return _quit; }

private:
    gateway& _gw;
    control::key_manager* _keys; ///< null without key management
    const options& _opts;
    std::chrono::steady_clock::time_point _t0;
    bool _quit = false;
};

/// The key server's and the members' counters for a Prometheus scrape (no key material).
void add_key_samples(const control::key_manager* keys, metrics::sample& s);

/// Engine, socket server and prompt, as the options ask; telemetry always.
class operator_cli {
public:
    /// `server`: the --cli-socket listener, opened before the EAL (or null).
    static result<std::unique_ptr<operator_cli>> open(gateway& gw, control::key_manager* keys, const options& opts,
                                                      std::chrono::steady_clock::time_point t0,
                                                      std::unique_ptr<cli::socket_server> server);
    /// Serves what is ready; never blocks.
    void poll();
    bool quit_requested() const { return _backend.quit_requested(); }
    /// Lets pending replies (to `quit`) leave before the process exits.
    void flush();

private:
    operator_cli(gateway& gw, control::key_manager* keys, const options& opts, std::chrono::steady_clock::time_point t0)
        : _backend(gw, keys, opts, t0), _engine(_backend) {}
    cli_backend _backend;
    cli::engine _engine;
    std::unique_ptr<cli::socket_server> _server;
    std::unique_ptr<cli::prompt> _prompt;
    std::unique_ptr<cli::telemetry> _telemetry;
};

} // namespace msecgw::app
