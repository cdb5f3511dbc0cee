#pragma once
/// Worker lcores: run-to-completion loops over bursts (rx -> parse -> classify -> act -> tx).
/// Everything a worker touches is in its `lcore_ctx`, set up by the control core before launch.

#include <array>
#include <atomic>
#include <cstdint>

#include "common/burst.hh"
#include "lcore_stats.hh"
#include "packet/packet.hh"
#include "policy/policy.hh"

struct rte_mbuf;

namespace msecgw::dataplane {

/// One rx queue a worker polls and where its packets go.
struct rx_binding {
    uint16_t rx_port = 0;
    uint16_t rx_queue = 0;
    uint16_t tx_port = 0;
    uint16_t tx_queue = 0;
    uint16_t egress_mtu = 1500;        ///< IP MTU of the tx port
    packet::ipv4_csum csum = packet::ipv4_csum::verify;
    const policy::table* policies = nullptr; ///< direction of this rx port
};

/// Per-burst scratch, indexed like the packet array it belongs to; lives in the lcore context so
/// that a burst neither allocates nor zeroes it.
struct burst_scratch {
    std::array<packet::pkt_meta, max_burst> meta;
    std::array<const uint8_t*, max_burst> data;
    std::array<policy::rule_id, max_burst> rule;
};

struct alignas(64) lcore_ctx {
    unsigned lcore_id = 0;
    uint16_t index = 0;                ///< 0..workers-1
    uint16_t n_bindings = 0;
    std::array<rx_binding, max_ports> bindings{};
    const std::atomic<bool>* stop = nullptr; ///< set by the control core; read once per loop
    lcore_stats stats;
    burst_scratch scratch;
};

/// Processes one received burst of `n` packets from `b` to its egress; every packet ends up
/// transmitted or freed and counted under one drop reason.
void process_burst(lcore_ctx& lc, const rx_binding& b, rte_mbuf** pkts, uint16_t n);

/// The worker main loop (rte_eal_remote_launch entry; `arg` is an lcore_ctx*). Polls until stop
/// is set, then drains: keeps polling until every queue came back empty twice in a row.
int worker_main(void* arg);

} // namespace msecgw::dataplane
