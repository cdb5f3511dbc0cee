// Inbound stages: ESP prepare (SAD, replay check) -> open the whole burst -> finalize (trailer,
// RFC 5374 address check, RFC 6040 ECN, strip) -> classify -> policy check + replay update.
#include <rte_mbuf.h>

#include <cstring>

#include "burst.hh"
#include "esp/esp.hh"
#include "srcauth/wire.hh"

namespace msecgw::dataplane::detail {

namespace {

constexpr uint8_t keep = 0xff; ///< verdict of a packet that stays in the burst

const uint8_t* src_addr(const uint8_t* ip, uint8_t family) { return ip + (family == 4 ? 12 : 8); }
const uint8_t* dst_addr(const uint8_t* ip, uint8_t family) { return ip + (family == 4 ? 16 : 24); }

uint8_t outer_ecn(const uint8_t* ip, uint8_t family)
{
    return family == 4 ? (ip[1] & 3) : ((ip[1] >> 4) & 3);
}

/// Moves packet i's burst state to slot j (j < i).
void move_slot(burst_scratch& s, rte_mbuf** pkts, uint16_t i, uint16_t j)
{
    pkts[j] = pkts[i];
    s.meta[j] = s.meta[i];
    s.data[j] = s.data[i];
    s.sa[j] = s.sa[i];
    s.seq[j] = s.seq[i];
    s.auth[j] = s.auth[i];
}

/// Drops every packet whose verdict is a reason; compacts the rest to the front. The packets
/// before the first drop stay where they are (in the usual burst: all of them).
uint16_t compact(lcore_ctx& lc, rte_mbuf** pkts, uint16_t n, const uint8_t* verdict, drop_list& dl)
{
    uint16_t i = 0;
    while (i < n && verdict[i] == keep) {
        ++i;
    }
    uint16_t good = i;
    for (; i < n; ++i) {
        if (verdict[i] != keep) {
            dl.add(pkts[i], static_cast<drop_reason>(verdict[i]), lc.stats);
            continue;
        }
        move_slot(lc.scratch, pkts, i, good++);
    }
    return good;
}

/// The replay window of (SA, source) for an IP header of `family` (outer before decryption, inner
/// after: RFC 5374 address preservation makes their sources equal).
replay::replay_key replay_key_of(const sa::in_sa& sa, const uint8_t* ip, uint8_t family)
{
    return family == 4 ? replay::replay_key::v4(sa.uid, src_addr(ip, 4)) : replay::replay_key::v6(sa.uid, src_addr(ip, 6));
}

/// Why no SA of the rx region `rt` takes this ESP packet: an SA of another region of this
/// gateway would (a packet replayed or leaked across a region boundary), or none at all.
drop_reason sad_miss(const dp_state& st, const region_tables& rt, uint32_t spi, uint8_t family, const uint8_t* ip)
{
    for (const region_tables& other : st.regions) {
        if (&other != &rt && other.sad.lookup(spi, family, dst_addr(ip, family), src_addr(ip, family)) != sa::sad::not_found) {
            return drop_reason::esp_wrong_region;
        }
    }
    return drop_reason::esp_no_sa;
}

/// SAD lookup (in the rx port's region) and replay pre-check for one ESP packet; queues its GCM op.
uint8_t esp_prepare(lcore_ctx& lc, const dp_state& st, const region_tables& rt, uint16_t i, uint16_t& nops)
{
    burst_scratch& s = lc.scratch;
    const packet::pkt_meta& meta = s.meta[i];
    uint8_t* ip = const_cast<uint8_t*>(s.data[i]) + meta.l3_off;
    esp::inb_header h{};
    if (meta.fragment || !esp::read_inb_header(ip, meta.l3_hdr_len, meta.ip_len, h)) {
        return static_cast<uint8_t>(drop_reason::esp_malformed);
    }
    const uint32_t idx = rt.sad.lookup(h.spi, meta.family, dst_addr(ip, meta.family), src_addr(ip, meta.family));
    if (idx == sa::sad::not_found) {
        return static_cast<uint8_t>(sad_miss(st, rt, h.spi, meta.family, ip));
    }
    const sa::in_sa& sa = *st.in_sas[idx];
    if (sa.expired.load(std::memory_order_relaxed)) {
        return static_cast<uint8_t>(drop_reason::sa_expired);
    }
    if (sa.replay_window != 0) {
        const replay::verdict v = lc.replay->check(replay_key_of(sa, ip, meta.family), h.seq);
        if (v != replay::verdict::ok) {
            return static_cast<uint8_t>(v == replay::verdict::replayed ? drop_reason::replay : drop_reason::replay_too_old);
        }
    }
    s.sa[i] = idx;
    s.seq[i] = h.seq;
    uint8_t* esph = ip + h.esp_off;
    uint8_t* payload = esph + esp::esp_hdr_len + esp::iv_len;
    s.ops[nops] = crypto::gcm_op{&sa.key, payload, h.cipher_len, esph + esp::esp_hdr_len, esph, payload + h.cipher_len};
    s.op_pkt[nops++] = i;
    return keep;
}

/// After a verified open: trailer, address preservation, ECN, then strip to L2 + inner packet.
/// A source-authentication tag (next header 253) goes to auth_open; an SA with source_auth
/// accepts nothing else.
uint8_t esp_finalize(lcore_ctx& lc, const dp_state& st, const rx_binding& b, rte_mbuf* m, uint16_t i,
                     const crypto::gcm_op& op)
{
    burst_scratch& s = lc.scratch;
    const uint16_t slot = st.in_sas[s.sa[i]]->auth_slot;
    uint8_t nh = 0;
    const uint16_t payload_len = esp::check_padding(op.data, static_cast<uint16_t>(op.len), nh);
    if (payload_len == 0) {
        return static_cast<uint8_t>(drop_reason::esp_bad_trailer);
    }
    if (nh == srcauth::wire::esp_next_header) {
        return auth_open(lc, b, slot, m, i, op, payload_len);
    }
    if (slot != sa::no_auth_slot) {
        return static_cast<uint8_t>(drop_reason::srcauth_missing);
    }
    const packet::pkt_meta outer_meta = s.meta[i];
    const uint16_t inner_len = esp::check_trailer(op.data, static_cast<uint16_t>(op.len));
    if (inner_len == 0) {
        return static_cast<uint8_t>(drop_reason::esp_bad_trailer);
    }
    uint8_t* front = rte_pktmbuf_mtod(m, uint8_t*);
    const uint8_t* outer = front + outer_meta.l3_off;
    if (!esp::addresses_preserved(outer, op.data, outer_meta.family)) {
        return static_cast<uint8_t>(drop_reason::outer_inner_mismatch);
    }
    if (!esp::ecn_decapsulate(op.data, outer_meta.family, outer_ecn(outer, outer_meta.family))) {
        return static_cast<uint8_t>(drop_reason::ecn_drop);
    }
    // Strip: the L2 header moves up to the inner packet (no reparse of what we know: the inner
    // IP header alone is parsed, for classification and the policy check).
    const auto cut = static_cast<uint16_t>(op.data - outer);
    uint8_t* inner_front = front + cut;
    copy_l2(inner_front, front, outer_meta.l3_off);
    rte_pktmbuf_adj(m, cut);
    const auto frame_len = static_cast<uint16_t>(outer_meta.l3_off + inner_len);
    rte_pktmbuf_trim(m, static_cast<uint16_t>(m->data_len - frame_len));
    s.data[i] = inner_front;
    drop_reason why = drop_reason::ip_truncated;
    if (!packet::parse_ip(inner_front, frame_len, outer_meta.l3_off, outer_meta.vlan, packet::ipv4_csum::verify,
                          s.meta[i], why)) {
        return static_cast<uint8_t>(why);
    }
    return keep;
}

/// RFC 4301 §5.2: the decrypted packet must be allowed by a protect policy of the SA that opened
/// it. The first matching rule decides, as everywhere; it may name this SA, or be the twin (same
/// selectors) of a rule that does: that is how receivers hold the old and the new SA of one group
/// at once (make-before-break) without letting an SA carry traffic an earlier rule gives elsewhere.
bool inner_allowed(const region_tables& rt, policy::rule_id first, uint32_t sa)
{
    if (first == policy::no_match) {
        return false;
    }
    if (rt.in_rule_sa[first] == sa) {
        return true;
    }
    const config::policy_cfg& f = rt.in_policies->rule(first);
    for (policy::rule_id id : rt.in_sa_rules[sa]) {
        if (policy::same_selectors(rt.in_policies->rule(id), f)) {
            return true;
        }
    }
    return false;
}

/// Decides packet i after classification: clear packets by their policy, decrypted ones must
/// match a PROTECT policy naming their SA, and only then move the replay window.
uint8_t inb_decide(lcore_ctx& lc, const dp_state& st, const region_tables& rt, const rx_binding& b, uint16_t i)
{
    burst_scratch& s = lc.scratch;
    const policy::rule_id id = s.rule[i];
    const auto action = id == policy::no_match ? config::policy_action::discard : rt.in_policies->rule(id).action;
    if (s.sa[i] == no_sa) {
        if (action == config::policy_action::bypass) {
            if (s.meta[i].ip_len > b.egress_mtu) {
                return static_cast<uint8_t>(drop_reason::mtu_exceeded);
            }
            ++lc.stats.bypassed;
            return keep;
        }
        const drop_reason r = id == policy::no_match                         ? drop_reason::policy_no_match
                              : action == config::policy_action::discard      ? drop_reason::policy_discard
                                                                              : drop_reason::clear_on_protected;
        return static_cast<uint8_t>(r);
    }
    // A source-authentication control message has no inner packet: no policy to match, only
    // the replay window of its (SA, outer source).
    if (s.auth[i] != auth_control && !inner_allowed(rt, id, s.sa[i])) {
        return static_cast<uint8_t>(drop_reason::inner_policy_mismatch);
    }
    const sa::in_sa& sa = *st.in_sas[s.sa[i]];
    if (sa.replay_window != 0) {
        const uint8_t* inner = s.data[i] + s.meta[i].l3_off; // control message: the outer header
        replay::replay_window* w = lc.replay->find_or_insert(replay_key_of(sa, inner, s.meta[i].family), sa.replay_window);
        if (w == nullptr) {
            return static_cast<uint8_t>(drop_reason::replay_table_full);
        }
        const replay::verdict v = w->update(s.seq[i]);
        if (v != replay::verdict::ok) {
            return static_cast<uint8_t>(v == replay::verdict::replayed ? drop_reason::replay : drop_reason::replay_too_old);
        }
    }
    if (s.auth[i] != auth_control && s.meta[i].ip_len > b.egress_mtu) {
        return static_cast<uint8_t>(drop_reason::mtu_exceeded);
    }
    lc.stats.opened += s.auth[i] != auth_control;
    return keep;
}

/// Per-SA opened packets/bytes of a run of packets on one SA, added to the SA's lane of this
/// lcore once per run instead of once per packet.
class sa_tally {
public:
    sa_tally(lcore_ctx& lc, const dp_state& st) : _lc(lc), _st(st) {}
    ~sa_tally() { flush(); }
    sa_tally(const sa_tally&) = delete;
    sa_tally& operator=(const sa_tally&) = delete;

    void add(uint32_t sa, uint16_t inner_len)
    {
        if (sa != _sa) {
            flush();
            _sa = sa;
        }
        ++_pkts;
        _bytes += inner_len;
    }

private:
    void flush()
    {
        if (_pkts != 0) {
            sa::in_lane& lane = _st.in_sas[_sa]->lanes[_lc.index];
            lane.pkts += _pkts;
            lane.bytes += _bytes;
            _pkts = 0;
            _bytes = 0;
        }
    }

    lcore_ctx& _lc;
    const dp_state& _st;
    uint32_t _sa = no_sa;
    uint32_t _pkts = 0;
    uint64_t _bytes = 0;
};

} // namespace

uint16_t inb_process(lcore_ctx& lc, const dp_state& st, const rx_binding& b, rte_mbuf** pkts, uint16_t n,
                     drop_list& dl)
{
    burst_scratch& s = lc.scratch;
    const region_tables& rt = st.regions[b.in_region];
    std::array<uint8_t, max_burst> verdict;
    uint16_t nops = 0;
    for (uint16_t i = 0; i < n; ++i) {
        s.sa[i] = no_sa;
        s.auth[i] = auth_none;
        verdict[i] = s.meta[i].proto == packet::proto_esp ? esp_prepare(lc, st, rt, i, nops) : keep;
    }
    if (nops != 0) {
        crypto::open_burst(*lc.engine, {s.ops.data(), nops}, {s.ok.data(), nops});
        for (uint16_t k = 0; k < nops; ++k) {
            const uint16_t i = s.op_pkt[k];
            verdict[i] = s.ok[k] ? esp_finalize(lc, st, b, pkts[i], i, s.ops[k])
                                 : static_cast<uint8_t>(drop_reason::auth_failed);
        }
    }
    n = compact(lc, pkts, n, verdict.data(), dl);
    lc.flows.classify(*rt.in_policies, s.meta.data(), s.data.data(), n, s.rule.data());
    {
        sa_tally opened(lc, st); // counts only what passed every check, replay included
        for (uint16_t i = 0; i < n; ++i) {
            verdict[i] = inb_decide(lc, st, rt, b, i);
            if (verdict[i] == keep && s.sa[i] != no_sa) {
                opened.add(s.sa[i], s.meta[i].ip_len);
            }
        }
    }
    n = compact(lc, pkts, n, verdict.data(), dl);
    return lc.auth != nullptr ? stage_verify(lc, st, pkts, n, dl) : n;
}

} // namespace msecgw::dataplane::detail
