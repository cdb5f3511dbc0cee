// Outbound stages: classify -> (bypass | ESP encapsulate) -> source-authentication tag -> seal
// the whole burst at once; the
// ESP packets over the egress MTU are marked for stage_fragment (fragment.cc).
#include <rte_mbuf.h>

#include <cstring>

#include "burst.hh"
#include "esp/esp.hh"
#include "srcauth_stage.hh"

namespace msecgw::dataplane::detail {

namespace {

constexpr uint32_t max_ip_len = 0xffff;

/// Builds the ESP tunnel packet around packet i in place (RFC 5374 address preservation) and
/// queues its GCM operation; the L2 header (with its VLAN tag) moves to the new front.
/// `snd`: the SA's source-authentication sender, or null: the tag goes between the ESP IV and
/// the inner packet (a signature trailer after it), ESP next header 253 (docs/wire-format.md).
bool esp_encap(lcore_ctx& lc, const rx_binding& b, sa::out_sa& sa, uint32_t sa_index, const auth_sender* snd,
               rte_mbuf* m, uint16_t i, uint16_t& nops, drop_reason& why)
{
    burst_scratch& s = lc.scratch;
    const packet::pkt_meta& meta = s.meta[i];
    const uint16_t ah = snd ? snd->header_len() : 0;
    const uint16_t at = snd ? snd->trailer_len() : 0;
    const esp::outb_layout lay = esp::layout_for(meta.family, static_cast<uint16_t>(ah + meta.ip_len + at));
    const auto head_len = static_cast<uint16_t>(lay.head_len + ah);
    const auto tail_len = static_cast<uint16_t>(lay.tail_len + at);
    const uint32_t frame_len = uint32_t{meta.l3_off} + meta.ip_len;
    if (lay.outer_total > max_ip_len) {
        why = drop_reason::mtu_exceeded;
        return false;
    }
    if (m->nb_segs != 1 || rte_pktmbuf_headroom(m) < head_len ||
        rte_pktmbuf_tailroom(m) + (m->data_len - frame_len) < tail_len) {
        why = drop_reason::no_room;
        return false;
    }
    uint64_t ctr = 0;
    if (!next_counter(sa, lc.index, ctr, why)) {
        return false;
    }
    // Room was checked above and the mbuf has one segment: grow it at both ends in one update
    // (dropping any Ethernet padding) instead of trim + prepend + append.
    uint8_t* old_front = rte_pktmbuf_mtod(m, uint8_t*);
    uint8_t* front = old_front - head_len;
    const auto new_len = static_cast<uint16_t>(frame_len + head_len + tail_len);
    m->data_off = static_cast<uint16_t>(m->data_off - head_len);
    m->data_len = new_len;
    m->pkt_len = new_len;
    copy_l2(front, old_front, meta.l3_off);
    uint8_t* outer = front + meta.l3_off;
    uint8_t* inner = outer + head_len;
    uint8_t* tail = inner + meta.ip_len + at;
    if (meta.family == 4) {
        esp::write_outer_v4(outer, inner, lay.outer_total, lc.ip_id++, b.tx_ipv4_cksum);
    } else {
        esp::write_outer_v6(outer, inner, lay.outer_total);
    }
    uint8_t* esph = outer + lay.outer_len;
    esp::write_esp_header(esph, sa.spi, static_cast<uint32_t>(ctr + 1), sa.iv(lc.index, ctr));
    const uint8_t inner_nh = meta.family == 4 ? esp::next_header_ipv4 : esp::next_header_ipv6;
    esp::write_trailer(tail, lay.pad_len, snd ? srcauth::wire::esp_next_header : inner_nh);
    s.ops[nops] = crypto::gcm_op{&sa.key, inner - ah, lay.cipher_len, esph + esp::esp_hdr_len, esph,
                                 tail + lay.pad_len + 2};
    if (snd != nullptr) {
        const uint16_t k = s.n_jobs++;
        lc.auth->jobs[k] = srcauth::tag_job{inner - ah, meta.ip_len, inner_nh};
        lc.auth->job_slot[k] = sa.auth_slot;
        s.job_sa[k] = static_cast<uint16_t>(sa_index);
        s.job_pkt[k] = i;
    }
    s.op_pkt[nops++] = i;
    m->l2_len = meta.l3_off;
    m->l3_len = lay.outer_len;
    if (b.tx_ipv4_cksum && meta.family == 4) {
        m->ol_flags |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM;
    }
    s.split[i] = lay.outer_total > b.egress_mtu; // fragmented after sealing
    s.n_split = static_cast<uint16_t>(s.n_split + s.split[i]);
    sa::out_lane& lane = sa.lanes[lc.index];
    ++lane.pkts;
    lane.bytes += meta.ip_len;
    return true;
}

/// Seals every queued op in one ipsec-mb burst; packets whose op failed are dropped.
/// Packets marked in `untagged` (source authentication could not tag them) are dropped unsealed.
uint16_t stage_seal(lcore_ctx& lc, rte_mbuf** pkts, uint16_t n, uint16_t nops, const uint8_t* untagged, drop_list& dl)
{
    burst_scratch& s = lc.scratch;
    std::array<uint8_t, max_burst> failed{}; // 0: sent; else 1 + the drop reason
    if (untagged != nullptr) {
        uint16_t kept = 0;
        for (uint16_t k = 0; k < nops; ++k) {
            const uint16_t i = s.op_pkt[k];
            if (untagged[i]) {
                failed[i] = 1 + static_cast<uint8_t>(drop_reason::srcauth_tag_failed);
                continue;
            }
            s.ops[kept] = s.ops[k];
            s.op_pkt[kept++] = i;
        }
        nops = kept;
    }
    const uint32_t sealed = nops == 0 ? 0 : crypto::seal_burst(*lc.engine, {s.ops.data(), nops}, {s.ok.data(), nops});
    lc.stats.sealed += sealed;
    if (sealed == nops && untagged == nullptr) {
        return n;
    }
    for (uint16_t k = 0; k < nops; ++k) {
        if (s.ok[k] == 0) {
            failed[s.op_pkt[k]] = 1 + static_cast<uint8_t>(drop_reason::crypto_failed);
        }
    }
    uint16_t good = 0;
    for (uint16_t i = 0; i < n; ++i) {
        if (failed[i]) {
            s.n_split = static_cast<uint16_t>(s.n_split - s.split[i]);
            dl.add(pkts[i], static_cast<drop_reason>(failed[i] - 1), lc.stats);
        } else {
            s.split[good] = s.split[i];
            pkts[good++] = pkts[i];
        }
    }
    return good;
}

/// What the outbound policy of one rule says, resolved once per run of packets with that rule
/// (bursts are mostly a few flows of a few rules).
struct rule_target {
    policy::rule_id id = policy::no_match;
    config::policy_action action = config::policy_action::discard;
    sa::out_sa* sa = nullptr; ///< PROTECT: the SA, or nullptr when it cannot seal now (see why)
    uint32_t sa_index = no_sa;
    const auth_sender* snd = nullptr; ///< the SA's source-authentication sender, if it tags
    drop_reason why = drop_reason::policy_no_match;
};

rule_target resolve(const lcore_ctx& lc, const dp_state& st, const region_tables& rt, policy::rule_id id)
{
    rule_target t;
    t.id = id;
    if (id == policy::no_match) {
        return t;
    }
    t.action = rt.out_policies->rule(id).action;
    t.why = drop_reason::policy_discard;
    if (t.action == config::policy_action::protect) {
        if (rt.out_rule_sa[id] == no_sa) {
            t.why = drop_reason::no_group_key;
            return t;
        }
        t.sa_index = rt.out_rule_sa[id];
        sa::out_sa& sa = *st.out_sas[t.sa_index];
        const bool expired = sa.expired.load(std::memory_order_relaxed) != 0;
        t.why = expired ? drop_reason::sa_expired : drop_reason::sa_not_ready;
        t.sa = expired || sa.stopped.load(std::memory_order_relaxed) != 0 ? nullptr : &sa;
        if (t.sa != nullptr && sa.auth_slot != sa::no_auth_slot) {
            t.snd = lc.auth->senders[sa.auth_slot].get();
            if (t.snd == nullptr) {
                t.why = drop_reason::srcauth_tag_failed; // the block has no signing key
                t.sa = nullptr;
            }
        }
    }
    return t;
}

} // namespace

bool next_counter(sa::out_sa& sa, uint16_t lane, uint64_t& ctr, drop_reason& why)
{
    sa::out_lane& l = sa.lanes[lane];
    if (l.ctr == l.end) {
        const uint64_t end = l.next_end.load(std::memory_order_acquire);
        if (end == 0) {
            why = sa.budget_spent.load(std::memory_order_relaxed) ? drop_reason::sa_expired
                  : l.exhausted.load(std::memory_order_relaxed)   ? drop_reason::sa_exhausted
                                                                  : drop_reason::iv_block_pending;
            return false;
        }
        l.ctr = l.next_start.load(std::memory_order_relaxed);
        l.end = end;
        l.next_end.store(0, std::memory_order_release); // the control core may refill now
    }
    ctr = l.ctr++;
    return true;
}

uint16_t outb_process(lcore_ctx& lc, const dp_state& st, const rx_binding& b, rte_mbuf** pkts, uint16_t n,
                      drop_list& dl)
{
    burst_scratch& s = lc.scratch;
    const region_tables& rt = st.regions[b.out_region];
    lc.flows.classify(*rt.out_policies, s.meta.data(), s.data.data(), n, s.rule.data());
    s.n_split = 0;
    s.n_jobs = 0;
    uint16_t good = 0, nops = 0;
    rule_target t; // the no-match target, as resolve(st, policy::no_match) makes it
    for (uint16_t i = 0; i < n; ++i) {
        rte_mbuf* m = pkts[i];
        if (s.rule[i] != t.id) {
            t = resolve(lc, st, rt, s.rule[i]);
        }
        if (good != i) {
            s.meta[good] = s.meta[i]; // slot `good` is free: a dropped packet leaves it free again
        }
        drop_reason why = t.why;
        if (t.action == config::policy_action::bypass) {
            if (s.meta[good].ip_len > b.egress_mtu) {
                dl.add(m, drop_reason::mtu_exceeded, lc.stats);
                continue;
            }
            ++lc.stats.bypassed;
            s.split[good] = 0;
            pkts[good++] = m;
            continue;
        }
        if (t.sa != nullptr) {
            if (esp_encap(lc, b, *t.sa, t.sa_index, t.snd, m, good, nops, why)) {
                pkts[good++] = m;
                continue;
            }
        }
        dl.add(m, why, lc.stats);
    }
    std::array<uint8_t, max_burst> untagged{};
    const bool any_untagged = s.n_jobs != 0 && stage_tag(lc, st, b, pkts, untagged.data());
    return stage_seal(lc, pkts, good, nops, any_untagged ? untagged.data() : nullptr, dl);
}

} // namespace msecgw::dataplane::detail
