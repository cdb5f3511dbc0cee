#pragma once
/// Prometheus metrics on `--metrics ADDR:PORT` (DESIGN.md §5): an HTTP endpoint (prometheus-cpp
/// pull exposer, its own threads) whose every scrape is answered with counters sampled on the
/// control core. Workers are never involved: the control loop reads their plain per-lcore
/// counters (stats::collect) and the SA lanes when a scrape asks, exactly as for --stats-json.
/// No key material is ever part of a sample.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hh"
#include "config/config.hh"
#include "stats/report.hh"

namespace msecgw::dataplane {
struct dp_state;
}

namespace msecgw::metrics {

/// Where the exporter listens: an IPv4 address and a port. (IPv6 is refused: the HTTP server of
/// Debian's prometheus-cpp, civetweb, is built without it.)
struct endpoint {
    std::string addr; ///< numeric, e.g. "127.0.0.1" or "0.0.0.0"
    uint16_t port = 0;
    /// "127.0.0.1:9464" (civetweb's listening_ports syntax).
    std::string to_string() const;
};

/// Parses `ADDR:PORT`: ADDR a numeric IPv4 address, `localhost`, or empty for every IPv4
/// address (":9464"); PORT 1..65535. The error is one line naming --metrics.
result<endpoint> parse_endpoint(std::string_view text);

/// Binds (and releases) the address, so that "address in use" or "cannot assign" is reported
/// before the EAL starts. The exporter binds again in start(): a race can still fail there.
result<void> check_bindable(const endpoint& ep);

/// Counters of one SA, summed over its worker lanes. Names and SPIs only: never key material.
struct sa_sample {
    std::string name;
    uint32_t spi = 0;
    config::direction dir = config::direction::out;
    uint64_t packets = 0; ///< sealed (out) or opened (in)
    uint64_t bytes = 0;   ///< inner (clear) IP bytes of those packets
};

/// Every SA of a snapshot with its counters (control core, the snapshot's owner).
std::vector<sa_sample> sa_samples(const dataplane::dp_state& state);

/// One key-managed group as this gateway's member sees it (no key material).
struct member_sample {
    std::string group;
    bool registered = false;
    uint64_t registrations = 0;
    uint64_t key_changes = 0;
    uint64_t rekeys_accepted = 0;
    uint64_t rekeys_forged = 0;
    uint64_t rekeys_replayed = 0;
    uint64_t rekeys_missed = 0;
    uint64_t reregistrations = 0;
    uint64_t gcks_failovers = 0;  ///< registrations moved to the next key server of member.key_server
};

/// The embedded key server's counters (gkm::gcks_counters) and state.
struct key_server_sample {
    uint64_t registrations = 0;
    uint64_t authorization_failed = 0;
    uint64_t authentication_failed = 0;
    uint64_t invalid_group = 0;
    uint64_t no_proposal_chosen = 0;
    uint64_t malformed = 0;
    uint64_t retransmissions_answered = 0;
    uint64_t rekeys_sent = 0;
    uint64_t periodic_rekeys = 0;
    uint64_t restart_rekeys = 0;
    uint64_t rekeys_failed = 0;
    uint64_t cookies_sent = 0;
    uint64_t cookies_rejected = 0;
    uint64_t half_open_dropped = 0;
    uint64_t half_open_address_dropped = 0;
    uint64_t half_open_expired = 0;
    uint64_t half_open_sessions = 0;
    uint64_t sessions = 0;
    std::vector<std::pair<std::string, uint64_t>> group_members; ///< group name, addresses rekeys go to
    // Several key servers on etcd (always leading without).
    bool leading = true;
    uint64_t leader_takeovers = 0;
    uint64_t leader_step_downs = 0;
    uint64_t etcd_errors = 0;
    uint64_t not_leader_dropped = 0;
    uint64_t etcd_retries_deferred = 0;     ///< election steps put off by the back-off
    uint64_t etcd_consecutive_failures = 0; ///< election steps in a row etcd did not answer
    double etcd_backoff_seconds = 0;        ///< wait before the next step; 0 while etcd answers
    uint64_t ignored = 0;
    uint64_t registrations_with_previous_tek = 0; ///< registrations within registration_overlap_ms of a rekey
};

/// What one scrape reports.
struct sample {
    stats::totals totals;
    std::vector<sa_sample> sas;
    std::vector<member_sample> members;          ///< empty without key management
    std::optional<key_server_sample> key_server; ///< set when this process runs the key server
};

/// Facts fixed for the life of the process.
struct process_info {
    std::string version;             ///< msecgw's
    std::string dpdk_version;        ///< rte_version()
    double start_time_seconds = 0;   ///< Unix time the gateway started
};

/// The HTTP endpoint and its collector. Created and driven on the control core.
class exporter {
public:
    /// Starts serving GET /metrics on `ep`. Call after rte_eal_init: the HTTP threads inherit the
    /// control lcore's CPU affinity and stay off the workers' cores.
    static result<std::unique_ptr<exporter>> start(const endpoint& ep, process_info info);
    /// Stops serving; a scrape still waiting for the control core is answered with msecgw_up 0.
    ~exporter();
    exporter(const exporter&) = delete;
    exporter& operator=(const exporter&) = delete;

    /// Control loop, every few milliseconds: when a scrape waits, calls `take` once and hands the
    /// sample to every waiting scrape. One atomic load when none waits.
    void serve(const std::function<sample()>& take);

    struct impl;

private:
    exporter() = default;
    std::unique_ptr<impl> _impl;
};

} // namespace msecgw::metrics
