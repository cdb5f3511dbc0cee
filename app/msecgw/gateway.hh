#pragma once
// One running gateway: mempool, ports, policy tables and worker contexts, owned together so that
// shutdown frees everything in the right order.

#include <atomic>
#include <memory>
#include <vector>

#include "common/result.hh"
#include "config/config.hh"
#include "control/key_manager.hh"
#include "control/sa_manager.hh"
#include "crypto/crypto.hh"
#include "replay/replay.hh"
#include "dataplane/srcauth_stage.hh"
#include "dataplane/worker.hh"
#include "policy/policy.hh"
#include "port/port.hh"
#include "stats/report.hh"

struct rte_mempool;

namespace msecgw::app {

class gateway {
public:
    /// Brings up ports and tables for `cfg` on the EAL's worker lcores (every lcore but the main).
    /// With `keys`, the groups' SAs come from it (key_manager::expand) at start and on every
    /// reload; it must outlive the gateway.
    static result<std::unique_ptr<gateway>> create(config::gateway_cfg cfg, const control::key_manager* keys = nullptr);
    ~gateway();
    gateway(const gateway&) = delete;
    gateway& operator=(const gateway&) = delete;

    /// Launches the workers; returns at once.
    result<void> launch();
    /// Asks workers to stop, waits until they drained and returned.
    void stop_and_wait();
    /// Current totals (safe while running).
    stats::totals collect(double seconds) const;
    /// Control-plane housekeeping: IV block refills. Call every few milliseconds.
    void tick() { _sas->tick(); }
    /// Applies a new configuration's SAs and policies under traffic (RCU, make-before-break),
    /// with the groups' current SAs (key manager). Ports must not change.
    result<void> reload(config::gateway_cfg cfg);
    /// Applies the key manager's current group SAs to the running configuration.
    result<void> refresh_group_keys() { return reload(_cfg); }
    /// Writes Wireshark esp_sa lines for every SA to `path` (mode 0600).
    result<void> write_keylog(const std::string& path) const;

    /// The SAs and policies workers use now (control core only: a reload replaces it).
    const dataplane::dp_state& snapshot() const { return _sas->current(); }
    const std::vector<port::port_state>& ports() const { return _ports; }
    /// The configuration running now (the last one create() or reload() accepted).
    const config::gateway_cfg& config() const { return _cfg; }
    std::size_t worker_count() const { return _workers.size(); }

private:
    gateway() = default;
    result<void> start_ports();
    result<void> start_workers();
    void bind_workers();

    config::gateway_cfg _cfg; ///< expanded: with the groups' SAs
    const control::key_manager* _keys = nullptr;
    rte_mempool* _pool = nullptr;
    uint16_t _nb_queues = 1;
    std::vector<port::port_state> _ports;
    std::unique_ptr<control::sa_manager> _sas;
    std::vector<std::unique_ptr<dataplane::lcore_ctx>> _workers;
    std::vector<std::unique_ptr<crypto::engine>> _engines;       ///< one per worker
    std::vector<std::unique_ptr<replay::replay_table>> _replay;  ///< one per worker
    std::vector<std::unique_ptr<frag::reasm_table>> _reasm;      ///< one per worker
    std::vector<std::unique_ptr<dataplane::srcauth_lcore>> _auth; ///< one per worker, with source_auth
    std::unique_ptr<dataplane::manifest_signer> _signer;          ///< with manifests signed off the workers
    std::atomic<bool> _stop{false};
    bool _launched = false;
};

} // namespace msecgw::app
