#include "worker.hh"

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_rcu_qsbr.h>

#include "burst.hh"
#include "srcauth_stage.hh"

namespace msecgw::dataplane {

namespace detail {

namespace {

constexpr int tx_retries = 64; ///< empty tx_burst calls tolerated before tx_full drops

packet::ipv4_csum csum_mode(const rx_binding& b, const rte_mbuf* m, bool& bad)
{
    bad = false;
    if (b.csum == packet::ipv4_csum::verify) {
        return packet::ipv4_csum::verify;
    }
    const uint64_t st = m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK;
    bad = st == RTE_MBUF_F_RX_IP_CKSUM_BAD;
    return st == RTE_MBUF_F_RX_IP_CKSUM_GOOD ? packet::ipv4_csum::trusted : packet::ipv4_csum::verify;
}

} // namespace

uint16_t stage_parse(lcore_ctx& lc, const rx_binding& b, rte_mbuf** pkts, uint16_t n, drop_list& dl)
{
    burst_scratch& s = lc.scratch;
    uint16_t good = 0;
    uint16_t frags = 0;
    uint64_t bytes = 0;
    for (uint16_t i = 0; i < n; ++i) {
        rte_mbuf* m = pkts[i];
        bytes += m->pkt_len;
        const auto* data = rte_pktmbuf_mtod(m, const uint8_t*);
        bool nic_bad = false;
        const packet::ipv4_csum mode = csum_mode(b, m, nic_bad);
        drop_reason why = drop_reason::frame_truncated;
        if (!packet::parse_frame(data, m->data_len, mode, s.meta[good], why)) {
            dl.add(m, why, lc.stats);
            continue;
        }
        if (nic_bad && s.meta[good].family == 4) {
            dl.add(m, drop_reason::ip_bad_checksum, lc.stats);
            continue;
        }
        frags = static_cast<uint16_t>(frags + s.meta[good].fragment);
        s.data[good] = data;
        pkts[good++] = m;
    }
    s.n_frag = frags;
    lc.stats.rx_pkts[b.rx_port] += n;
    lc.stats.rx_bytes[b.rx_port] += bytes;
    return good;
}

bool reparse(lcore_ctx& lc, rte_mbuf* m, uint16_t i, drop_reason& why)
{
    const auto* data = rte_pktmbuf_mtod(m, const uint8_t*);
    lc.scratch.data[i] = data;
    return packet::parse_frame(data, m->data_len, packet::ipv4_csum::verify, lc.scratch.meta[i], why);
}

void stage_tx(lcore_ctx& lc, const rx_binding& b, rte_mbuf** pkts, uint16_t n, drop_list& dl)
{
    uint64_t bytes = 0;
    for (uint16_t i = 0; i < n; ++i) {
        bytes += pkts[i]->pkt_len;
    }
    uint16_t sent = 0;
    for (int empty = 0; sent < n && empty < tx_retries;) {
        const uint16_t k = rte_eth_tx_burst(b.tx_port, b.tx_queue, pkts + sent, n - sent);
        sent += k;
        empty = k == 0 ? empty + 1 : 0;
    }
    for (uint16_t i = sent; i < n; ++i) {
        bytes -= pkts[i]->pkt_len;
        dl.add(pkts[i], drop_reason::tx_full, lc.stats);
    }
    lc.stats.tx_pkts[b.tx_port] += sent;
    lc.stats.tx_bytes[b.tx_port] += bytes;
}

} // namespace detail

namespace {

constexpr int drain_max_polls = 4096; ///< bound on the drain after stop, for endless sources

/// Polls every binding once under one snapshot; returns the number of packets received.
uint32_t poll_once(lcore_ctx& lc, rte_mbuf** pkts)
{
    const uint64_t start = rte_rdtsc();
    const dp_state* st = lc.state->load(std::memory_order_acquire);
    uint32_t total = 0;
    for (uint16_t i = 0; i < lc.n_bindings; ++i) {
        const rx_binding& b = lc.bindings[i];
        const uint16_t n = rte_eth_rx_burst(b.rx_port, b.rx_queue, pkts, rx_burst);
        if (n == 0) {
            ++lc.stats.idle_polls;
            continue;
        }
        ++lc.stats.busy_polls;
        if (lc.auth != nullptr) {
            // Source authentication's clock: the burst's arrival time, read after rx, so never
            // before a packet in it was sent (an earlier reading would judge TESLA safety too late,
            // and refuse a packet of an interval that began after it as not begun yet).
            lc.auth->now_ns = realtime_ns();
        }
        process_burst(lc, *st, b, pkts, n);
        total += n;
    }
    detail::reasm_expire(lc, false);
    if (lc.auth != nullptr) {
        if (total == 0) {
            lc.auth->now_ns = realtime_ns(); // an idle round: no burst has read the clock
        }
        detail::srcauth_tick(lc, *st); // control messages due, held packets decided
    }
    rte_rcu_qsbr_quiescent(lc.qsbr, lc.index);
    (total != 0 ? lc.stats.busy_cycles : lc.stats.idle_cycles) += rte_rdtsc() - start;
    return total;
}

} // namespace

void process_burst(lcore_ctx& lc, const dp_state& st, const rx_binding& b, rte_mbuf** pkts, uint16_t n)
{
    detail::drop_list dl;
    n = detail::stage_parse(lc, b, pkts, n, dl);
    rte_mbuf** tx = pkts;
    if (b.role != path::outbound) {
        if (lc.scratch.n_frag != 0) {
            n = detail::stage_reassemble(lc, pkts, n, dl);
        }
        n = detail::inb_process(lc, st, b, pkts, n, dl);
    }
    // Boundary: the opened burst (inner packets, parsed, in the same mbufs whose headroom the
    // stripped outer headers left) goes straight on to the tx region's seal.
    if (b.role != path::inbound) {
        n = detail::outb_process(lc, st, b, pkts, n, dl);
        if (lc.scratch.n_split != 0) {
            n = detail::stage_fragment(lc, b, pkts, n, dl);
            tx = lc.scratch.frags.data();
        }
    }
    detail::stage_tx(lc, b, tx, n, dl);
    dl.free_all();
}

int worker_main(void* arg)
{
    auto& lc = *static_cast<lcore_ctx*>(arg);
    std::array<rte_mbuf*, max_burst> pkts;
    rte_rcu_qsbr_thread_online(lc.qsbr, lc.index);
    while (!lc.stop->load(std::memory_order_relaxed)) {
        // Opt-in (gateways sharing cores): the quiescent state is reported before the sleep.
        if (poll_once(lc, pkts.data()) == 0 && lc.idle_sleep_us != 0) {
            rte_delay_us_sleep(lc.idle_sleep_us);
        }
    }
    for (int quiet = 0, polls = 0; quiet < 2 && polls < drain_max_polls; ++polls) {
        quiet = poll_once(lc, pkts.data()) == 0 ? quiet + 1 : 0;
    }
    detail::reasm_expire(lc, true); // incomplete datagrams never complete now
    if (lc.auth != nullptr) {
        detail::srcauth_finish_signing(lc, *lc.state->load(std::memory_order_acquire));
        detail::srcauth_flush(lc); // held packets never get their key or manifest now
    }
    rte_rcu_qsbr_thread_offline(lc.qsbr, lc.index);
    return 0;
}

} // namespace msecgw::dataplane
