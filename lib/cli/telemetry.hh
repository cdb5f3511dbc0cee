#pragma once
/// DPDK telemetry commands under /msecgw/ (dpdk-telemetry.py, or any client of the telemetry
/// socket). Callbacks run on DPDK's telemetry thread: they only read a snapshot that the control
/// loop refreshes (refresh(), under a mutex), never worker data. No key material: SAs by name,
/// direction, SPI and counters.
///   /msecgw/info            version, uptime, workers, SA and policy counts
///   /msecgw/stats           run totals (--stats-json's top-level numbers)
///   /msecgw/drops           every drop reason and its count
///   /msecgw/port[,ID]       port ids, or one port's counters
///   /msecgw/lcore[,ID]      worker lcore ids, or one worker's counters
///   /msecgw/sa[,NAME]       SA names, or one SA's parameters and counters

#include <chrono>
#include <memory>
#include <string>

#include "commands.hh"

namespace msecgw::cli {

class telemetry {
public:
    /// Registers the commands (once per process: DPDK cannot unregister them; they answer
    /// "not running" after this object is gone). Call after rte_eal_init.
    static result<std::unique_ptr<telemetry>> start(std::string version);
    ~telemetry();
    telemetry(const telemetry&) = delete;
    telemetry& operator=(const telemetry&) = delete;

    /// Control loop: takes a new snapshot when the last is older than `period`.
    void refresh(backend& b, std::chrono::milliseconds period = std::chrono::milliseconds(100));

    struct state;

private:
    telemetry() = default;
    std::chrono::steady_clock::time_point _last{};
};

} // namespace msecgw::cli
