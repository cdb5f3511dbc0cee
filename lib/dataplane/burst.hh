#pragma once
// Internal: stages shared by both directions, and the drop list every stage feeds.

#include <rte_mbuf.h>

#include <cstring>

#include "worker.hh"

namespace msecgw::dataplane::detail {

/// Packets leaving the burst; counted when added, freed together at the end of the burst.
class drop_list {
public:
    void add(rte_mbuf* m, drop_reason r, lcore_stats& st)
    {
        ++st.drops[static_cast<std::size_t>(r)];
        if (_n == _pkts.size()) {
            free_all(); // fragments can outnumber a burst
        }
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
    std::array<rte_mbuf*, 2 * max_burst> _pkts;
    uint16_t _n = 0;
};

/// Copies a link-layer header of `len` bytes (14, or 18 with an 802.1Q tag) from `src` to `dst`
/// with fixed-size moves (no memmove call per packet); the two must not overlap, which holds
/// when moving it across the ESP headers (at least 36 bytes).
inline void copy_l2(uint8_t* dst, const uint8_t* src, uint16_t len)
{
    uint64_t head, mid, tail;
    std::memcpy(&head, src, 8);
    std::memcpy(&mid, src + 8, 8);
    std::memcpy(&tail, src + len - 8, 8);
    std::memcpy(dst, &head, 8);
    if (len > 16) {
        std::memcpy(dst + 8, &mid, 8);
    }
    std::memcpy(dst + len - 8, &tail, 8);
}

/// rx accounting and header parsing into lc.scratch; malformed frames leave through `dl`.
/// Returns the number of good packets, compacted to the front; lc.scratch.n_frag counts the IP
/// fragments among them.
uint16_t stage_parse(lcore_ctx& lc, const rx_binding& b, rte_mbuf** pkts, uint16_t n, drop_list& dl);

/// Re-parses packet i (after its headers changed) into lc.scratch slot i; false if it is now
/// malformed (reason in `why`).
bool reparse(lcore_ctx& lc, rte_mbuf* m, uint16_t i, drop_reason& why);

/// Transmits the burst; what the queue does not take after bounded retries is `tx_full`.
void stage_tx(lcore_ctx& lc, const rx_binding& b, rte_mbuf** pkts, uint16_t n, drop_list& dl);

/// Outbound: classify, then BYPASS / PROTECT (ESP seal) / DISCARD. Returns packets to send.
uint16_t outb_process(lcore_ctx& lc, const dp_state& st, const rx_binding& b, rte_mbuf** pkts, uint16_t n,
                      drop_list& dl);

/// Outbound, after sealing: splits every packet marked in lc.scratch.split into outer fragments
/// (RFC 791 / RFC 8200), in order, into lc.scratch.frags; transmits early when that fills up.
/// Returns how many packets are left in lc.scratch.frags to transmit.
uint16_t stage_fragment(lcore_ctx& lc, const rx_binding& b, rte_mbuf** pkts, uint16_t n, drop_list& dl);

/// Inbound, before opening: hands ESP fragments to the lcore's reassembly table and puts every
/// completed datagram back into the burst (parsed) in place of its last fragment. Returns the
/// packets left, compacted to the front.
uint16_t stage_reassemble(lcore_ctx& lc, rte_mbuf** pkts, uint16_t n, drop_list& dl);

/// Abandons stale datagrams of the lcore's reassembly table (a few slots per call), or all of
/// them when `all` (worker exit); their fragments are counted as frag_timeout.
void reasm_expire(lcore_ctx& lc, bool all);

/// The next IV counter of this lcore's lane of `sa`; false (with the reason) when none is reserved.
bool next_counter(sa::out_sa& sa, uint16_t lane, uint64_t& ctr, drop_reason& why);

// ---- source authentication (srcauth_out.cc, srcauth_in.cc; see srcauth_stage.hh)

inline constexpr uint8_t auth_none = 0, auth_data = 1, auth_control = 2;

/// Outbound, after encapsulation and before sealing: tags the jobs esp_encap queued, learns each
/// sender's route and sends its due control messages. untagged[i] = 1 marks packets to drop.
/// Returns true if any packet is untagged.
bool stage_tag(lcore_ctx& lc, const dp_state& st, const rx_binding& b, rte_mbuf** pkts, uint8_t* untagged);

/// Every sender's control messages that are due, and manifests back from the signing thread
/// (srcauth_tick).
void srcauth_send_control(lcore_ctx& lc, const dp_state& st);

/// Worker exit, before srcauth_flush: waits (at most ~1 s) for the manifests the signing thread
/// still has, and sends them, so that the verifiers can settle the packets they cover.
void srcauth_finish_signing(lcore_ctx& lc, const dp_state& st);

/// Inbound, after a verified open of a packet whose ESP next header is 253: checks the header and
/// the sender's binding to the source, strips outer + ESP (keeping the tag) and parses the inner
/// packet (auth_data), or keeps a control message whole (auth_control). Returns keep or a reason.
uint8_t auth_open(lcore_ctx& lc, const rx_binding& b, uint16_t slot, rte_mbuf* m, uint16_t i, const crypto::gcm_op& op,
                  uint16_t payload_len);

/// Inbound, last stage before tx: verifiers decide the tagged packets; released ones are stripped
/// to the inner packet, held ones leave the burst (they come back through srcauth_tick), control
/// messages are consumed. Returns the packets left, compacted.
uint16_t stage_verify(lcore_ctx& lc, const dp_state& st, rte_mbuf** pkts, uint16_t n, drop_list& dl);

/// Once per poll round: senders' scheduled control messages, verifiers' timeouts, and the held
/// packets decided since (released ones go to tx).
void srcauth_tick(lcore_ctx& lc, const dp_state& st);

/// Verifiers' timeouts and the held packets decided since: released ones to tx, the rest dropped.
void srcauth_settle(lcore_ctx& lc);

/// Worker exit: every packet still held times out (dropped as srcauth_timeout, or released with
/// best_effort), so that the run's counters account for every packet.
void srcauth_flush(lcore_ctx& lc);

/// Inbound: ESP open (SAD, replay check, decrypt, strip), classify, policy check, replay update.
uint16_t inb_process(lcore_ctx& lc, const dp_state& st, const rx_binding& b, rte_mbuf** pkts, uint16_t n,
                     drop_list& dl);

} // namespace msecgw::dataplane::detail
