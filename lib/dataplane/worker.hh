#pragma once
/// Worker lcores: run-to-completion loops over bursts. Outbound (clear port):
/// rx -> parse -> classify -> seal (ESP) or bypass -> fragment (over the MTU) -> tx.
/// Inbound (protected port): rx -> parse -> reassemble (ESP fragments) -> open (SAD, replay
/// check, decrypt, strip) -> classify -> replay update -> tx.
/// Boundary (protected port of region X paired with one of region Y): inbound under X's
/// tables, then outbound under Y's on the same burst, in place (docs/regions.md).
/// Everything a worker touches is in its `lcore_ctx`, set up by the control core before launch.

#include <array>
#include <atomic>
#include <cstdint>

#include "common/burst.hh"
#include "crypto/crypto.hh"
#include "dp_state.hh"
#include "frag/reasm.hh"
#include "lcore_stats.hh"
#include "packet/packet.hh"
#include "policy/flow_cache.hh"
#include "policy/policy.hh"
#include "replay/replay.hh"

struct rte_mbuf;
struct rte_mempool;
struct rte_rcu_qsbr;

namespace msecgw::dataplane {

struct srcauth_lcore;

/// What a binding does with what it receives: clear -> protected (seal), protected -> clear
/// (open), or protected -> protected across two key regions (open with the rx region's SA, seal
/// with the tx region's, in one pass on this lcore).
enum class path : uint8_t { outbound, inbound, boundary };

/// One rx queue a worker polls and where its packets go.
struct rx_binding {
    uint16_t rx_port = 0;
    uint16_t rx_queue = 0;
    uint16_t tx_port = 0;
    uint16_t tx_queue = 0;
    uint16_t egress_mtu = 1500;        ///< IP MTU of the tx port
    path role = path::outbound;
    uint16_t in_region = 0;            ///< inbound/boundary: region whose SAD and in policies open rx
    uint16_t out_region = 0;           ///< outbound/boundary: region whose out policies and SAs seal tx
    packet::ipv4_csum csum = packet::ipv4_csum::verify;
    bool tx_ipv4_cksum = false;        ///< the tx port computes outer IPv4 checksums
};

/// Per-burst scratch, indexed like the packet array it belongs to; lives in the lcore context so
/// that a burst neither allocates nor zeroes it.
inline constexpr uint16_t max_tx_frags = 4 * max_burst; ///< fragments queued before a tx flush

struct burst_scratch {
    std::array<packet::pkt_meta, max_burst> meta;
    std::array<const uint8_t*, max_burst> data;
    std::array<policy::rule_id, max_burst> rule;
    std::array<uint32_t, max_burst> sa;         ///< inbound: index into dp_state::in_sas, or no_sa
    std::array<uint32_t, max_burst> seq;        ///< inbound: ESP sequence number
    std::array<crypto::gcm_op, max_burst> ops;
    std::array<uint16_t, max_burst> op_pkt;     ///< packet index of each op
    std::array<uint8_t, max_burst> ok;
    std::array<uint8_t, max_burst> split;       ///< outbound: the ESP packet exceeds the egress MTU
    uint16_t n_split = 0;                       ///< how many of the burst do
    uint16_t n_frag = 0;                        ///< inbound: IP fragments among the parsed burst
    std::array<uint8_t, max_burst> auth;        ///< inbound: auth_none / auth_data / auth_control
    std::array<uint16_t, max_burst> job_sa;     ///< outbound: index into dp_state::out_sas of tag job k
    std::array<uint16_t, max_burst> job_pkt;    ///< outbound: packet index of tag job k
    uint16_t n_jobs = 0;                        ///< outbound: source-authentication tag jobs queued
    std::array<rte_mbuf*, max_tx_frags> frags;  ///< outbound: the burst after fragmentation
};

struct alignas(64) lcore_ctx {
    unsigned lcore_id = 0;
    uint16_t index = 0;                ///< 0..workers-1: RCU thread id and SA lane
    uint16_t n_bindings = 0;
    uint16_t ip_id = 0;                ///< outer IPv4 identification
    uint32_t frag_id = 0;              ///< outer IPv6 fragment identification (low 24 bits)
    uint32_t idle_sleep_us = 0;        ///< sleep after an empty poll round (0: busy poll)
    std::array<rx_binding, max_ports> bindings{};
    const std::atomic<bool>* stop = nullptr;                ///< read once per loop
    const std::atomic<const dp_state*>* state = nullptr;    ///< read once per loop (RCU)
    rte_rcu_qsbr* qsbr = nullptr;
    crypto::engine* engine = nullptr;  ///< this lcore's ipsec-mb manager
    replay::replay_table* replay = nullptr; ///< this lcore's (SA, source) windows
    rte_mempool* pool = nullptr;       ///< where outer fragments get their mbufs
    frag::reasm_table* reasm = nullptr; ///< this lcore's inbound reassembly slots
    srcauth_lcore* auth = nullptr;     ///< source-authentication senders and verifiers (null: none configured)
    lcore_stats stats;
    burst_scratch scratch;
    policy::flow_cache flows;          ///< classification results of recent flows
};

/// Processes one received burst of `n` packets from `b` under snapshot `st`; every packet ends up
/// transmitted or freed and counted under one drop reason.
void process_burst(lcore_ctx& lc, const dp_state& st, const rx_binding& b, rte_mbuf** pkts, uint16_t n);

/// The worker main loop (rte_eal_remote_launch entry; `arg` is an lcore_ctx*). Polls until stop
/// is set, then drains: keeps polling until every queue came back empty twice in a row. Reports a
/// quiescent state to RCU after every round.
int worker_main(void* arg);

} // namespace msecgw::dataplane
