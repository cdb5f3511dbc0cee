#pragma once
/// Run totals for --stats-json and the exit summary, summed from the per-lcore counters on the
/// control core (workers never aggregate).

#include <cstdint>
#include <string>
#include <vector>

#include "dataplane/lcore_stats.hh"
#include "port/port.hh"

namespace msecgw::stats {

/// Counters the NIC/PMD kept for a port (ethdev stats): losses before the gateway saw a packet.
struct nic_counters {
    uint64_t imissed = 0;
    uint64_t ierrors = 0;
    uint64_t oerrors = 0;
    uint64_t rx_nombuf = 0;
};

struct port_totals {
    uint16_t port = 0;
    std::string side;
    std::string driver;
    uint64_t rx_pkts = 0, rx_bytes = 0, tx_pkts = 0, tx_bytes = 0;
    nic_counters nic;
};

struct totals {
    std::vector<port_totals> ports;
    std::vector<std::pair<unsigned, dataplane::lcore_stats>> lcores; ///< (lcore id, copy)
    uint64_t rx_pkts = 0, tx_pkts = 0, bypassed = 0, sealed = 0, opened = 0;
    uint64_t fragmented = 0, fragments_out = 0, reassembled = 0, fragments_in = 0;
    uint64_t auth_tagged = 0, auth_control_sent = 0, auth_released = 0, auth_control_used = 0, auth_held = 0;
    std::array<uint64_t, drop_reason_count> drops{};
    uint64_t drops_total = 0;
    double seconds = 0;
};

/// Reads every lcore's counters and every port's ethdev stats.
totals collect(const std::vector<port::port_state>& ports,
               const std::vector<std::pair<unsigned, const dataplane::lcore_stats*>>& lcores,
               double seconds);

std::string to_json(const totals& t);
/// Human summary: packets in/out per port, forwarded, and every non-zero drop reason.
std::string summary(const totals& t);

/// Packets the gateway must account for: received, plus the extra packets fragmentation made,
/// minus those reassembly merged, plus the source-auth control messages it made, minus those it
/// used and the packets verifiers hold now. Equals tx + drops once nothing is in flight.
uint64_t expected_out(const totals& t);

} // namespace msecgw::stats
