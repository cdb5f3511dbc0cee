#include "worker.hh"

#include <rte_ethdev.h>
#include <rte_mbuf.h>

namespace msecgw::dataplane {

namespace {

constexpr int tx_retries = 64;        ///< empty tx_burst calls tolerated before tx_full drops
constexpr int drain_max_polls = 4096; ///< bound on the drain after stop, for endless sources

/// Packets leaving the burst; counted when added, freed together at the end of the burst.
class drop_list {
public:
    void add(rte_mbuf* m, drop_reason r, lcore_stats& st)
    {
        ++st.drops[static_cast<std::size_t>(r)];
        _pkts[_n++] = m;
    }
    void free_all()
    {
        if (_n != 0) {
            rte_pktmbuf_free_bulk(_pkts.data(), _n);
            _n = 0;
        }
    }

private:
    std::array<rte_mbuf*, max_burst> _pkts;
    uint16_t _n = 0;
};

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

/// rx accounting and header parsing; malformed frames leave through the drop list.
uint16_t stage_parse(lcore_ctx& lc, const rx_binding& b, rte_mbuf** pkts, uint16_t n,
                     burst_scratch& s, drop_list& dl)
{
    uint16_t good = 0;
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
        s.data[good] = data;
        pkts[good++] = m;
    }
    lc.stats.rx_pkts[b.rx_port] += n;
    lc.stats.rx_bytes[b.rx_port] += bytes;
    return good;
}

/// Applies each packet's policy: BYPASS stays in the burst, everything else is dropped with its
/// reason. (PROTECT needs an SA on the data plane; until one is installed it is `sa_not_ready`.)
uint16_t stage_act(lcore_ctx& lc, const rx_binding& b, rte_mbuf** pkts, uint16_t n,
                   const burst_scratch& s, drop_list& dl)
{
    uint16_t good = 0;
    for (uint16_t i = 0; i < n; ++i) {
        const policy::rule_id id = s.rule[i];
        if (id == policy::no_match) {
            dl.add(pkts[i], drop_reason::policy_no_match, lc.stats);
            continue;
        }
        switch (b.policies->rule(id).action) {
        case config::policy_action::bypass:
            if (s.meta[i].ip_len > b.egress_mtu) {
                dl.add(pkts[i], drop_reason::mtu_exceeded, lc.stats);
                continue;
            }
            pkts[good++] = pkts[i];
            break;
        case config::policy_action::discard:
            dl.add(pkts[i], drop_reason::policy_discard, lc.stats);
            break;
        case config::policy_action::protect:
            dl.add(pkts[i], drop_reason::sa_not_ready, lc.stats);
            break;
        }
    }
    lc.stats.bypassed += good;
    return good;
}

/// Transmits the burst; what the queue does not take after bounded retries is `tx_full`.
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

/// Polls every binding once; returns the number of packets received.
uint32_t poll_once(lcore_ctx& lc, rte_mbuf** pkts)
{
    uint32_t total = 0;
    for (uint16_t i = 0; i < lc.n_bindings; ++i) {
        const rx_binding& b = lc.bindings[i];
        const uint16_t n = rte_eth_rx_burst(b.rx_port, b.rx_queue, pkts, rx_burst);
        if (n == 0) {
            ++lc.stats.idle_polls;
            continue;
        }
        ++lc.stats.busy_polls;
        process_burst(lc, b, pkts, n);
        total += n;
    }
    return total;
}

} // namespace

void process_burst(lcore_ctx& lc, const rx_binding& b, rte_mbuf** pkts, uint16_t n)
{
    burst_scratch& s = lc.scratch;
    drop_list dl;
    n = stage_parse(lc, b, pkts, n, s, dl);
    b.policies->classify(s.meta.data(), s.data.data(), n, s.rule.data());
    n = stage_act(lc, b, pkts, n, s, dl);
    stage_tx(lc, b, pkts, n, dl);
    dl.free_all();
}

int worker_main(void* arg)
{
    auto& lc = *static_cast<lcore_ctx*>(arg);
    std::array<rte_mbuf*, max_burst> pkts;
    while (!lc.stop->load(std::memory_order_relaxed)) {
        poll_once(lc, pkts.data());
    }
    for (int quiet = 0, polls = 0; quiet < 2 && polls < drain_max_polls; ++polls) {
        quiet = poll_once(lc, pkts.data()) == 0 ? quiet + 1 : 0;
    }
    return 0;
}

} // namespace msecgw::dataplane
