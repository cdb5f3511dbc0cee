// Source authentication, verifying side: after the ESP open, tagged packets go through the
// lcore's verifier; released ones are stripped to the inner packet byte for byte, held ones come
// back through srcauth_tick, control messages are consumed.
#include <rte_mbuf.h>

#include <cstring>

#include "burst.hh"
#include "esp/esp.hh"
#include "srcauth_stage.hh"

namespace msecgw::dataplane::detail {

namespace {

constexpr uint8_t keep = 0xff;
constexpr uint8_t leave = 0xfe; ///< held or consumed: out of the burst, not a drop

/// What the release of a held packet needs, kept in the mbuf (hash.usr) while it waits.
struct held_info {
    uint8_t ecn;      ///< outer ECN, applied after verification (the MAC covers the inner header)
    uint8_t l2_len;
    uint8_t hdr_len;
    uint8_t trailer;  ///< 0, or 1 for a 64-byte signature trailer
    uint8_t binding;  ///< where it goes: lc.bindings[binding].tx_port

    uint32_t pack() const
    {
        return uint32_t{ecn} | uint32_t{l2_len} << 2 | uint32_t{hdr_len} << 8 | uint32_t{trailer} << 16 |
               uint32_t{binding} << 24;
    }
    static held_info unpack(uint32_t v)
    {
        return {uint8_t(v & 3), uint8_t((v >> 2) & 0x3f), uint8_t(v >> 8), uint8_t((v >> 16) & 1), uint8_t(v >> 24)};
    }
};

const uint8_t* src_of(const uint8_t* ip, uint8_t family) { return ip + (family == 4 ? 12 : 8); }

/// The inner IP packet after the tag says its own length is `len` (and its version `next`).
bool inner_fits(const uint8_t* ip, uint32_t len, uint8_t next)
{
    if (next == esp::next_header_ipv4) {
        return len >= esp::ipv4_hdr_len && (ip[0] >> 4) == 4 && load_be16(ip + 2) == len;
    }
    return next == esp::next_header_ipv6 && len >= esp::ipv6_hdr_len && (ip[0] >> 4) == 6 &&
           load_be16(ip + 4) + uint32_t{esp::ipv6_hdr_len} == len;
}

/// Strips a verified packet to L2 + inner packet and applies the outer ECN. False: ecn_drop.
bool release(rte_mbuf* m, const held_info& h)
{
    uint8_t* front = rte_pktmbuf_mtod(m, uint8_t*);
    std::memmove(front + h.hdr_len, front, h.l2_len);
    rte_pktmbuf_adj(m, h.hdr_len);
    if (h.trailer != 0) {
        rte_pktmbuf_trim(m, srcauth::wire::sig_len);
    }
    uint8_t* inner = rte_pktmbuf_mtod(m, uint8_t*) + h.l2_len;
    return esp::ecn_decapsulate(inner, static_cast<uint8_t>(inner[0] >> 4), h.ecn);
}

srcauth::packet_view view_of(rte_mbuf* m)
{
    const held_info h = held_info::unpack(m->hash.usr);
    uint8_t* p = rte_pktmbuf_mtod(m, uint8_t*) + h.l2_len;
    return {p, static_cast<uint32_t>(m->data_len - h.l2_len), m};
}

/// Applies the verifier's decisions to the packets of one slot, noted in `verdict`.
void apply(lcore_ctx& lc, std::span<const uint16_t> idx, rte_mbuf** pkts, uint8_t* verdict)
{
    srcauth_lcore& a = *lc.auth;
    burst_scratch& s = lc.scratch;
    for (size_t k = 0; k < idx.size(); ++k) {
        const uint16_t i = idx[k];
        const srcauth::decision d = a.decisions[k];
        switch (d.v) {
        case srcauth::verdict::release: {
            const held_info h = held_info::unpack(pkts[i]->hash.usr);
            if (!release(pkts[i], h)) {
                verdict[i] = static_cast<uint8_t>(drop_reason::ecn_drop);
                break;
            }
            s.meta[i].l3_off = h.l2_len;
            s.data[i] = rte_pktmbuf_mtod(pkts[i], const uint8_t*);
            ++lc.stats.auth_released;
            break;
        }
        case srcauth::verdict::hold:
            ++lc.stats.auth_held;
            verdict[i] = leave;
            break;
        case srcauth::verdict::consumed:
            rte_pktmbuf_free(pkts[i]);
            ++lc.stats.auth_control_used;
            verdict[i] = leave;
            break;
        case srcauth::verdict::drop: verdict[i] = static_cast<uint8_t>(to_drop_reason(d.why)); break;
        }
    }
}

void verify(lcore_ctx& lc, auth_verifier& v, size_t n)
{
    srcauth_lcore& a = *lc.auth;
    const std::span<const srcauth::packet_view> in(a.views.data(), n);
    const std::span<srcauth::decision> out(a.decisions.data(), n);
    if (v.tesla) {
        v.tesla->verify_burst(*lc.engine, in, a.now_ns, out);
    } else if (v.manifest) {
        v.manifest->verify_burst(*lc.engine, in, a.now_ns, out);
    } else {
        v.sign->verify_burst(*lc.engine, in, out);
    }
}

/// Held packets the verifier of `v` decided since the last call: released ones to tx.
void drain(lcore_ctx& lc, auth_verifier& v, drop_list& dl)
{
    srcauth_lcore& a = *lc.auth;
    for (;;) {
        const uint32_t n = v.tesla ? v.tesla->drain(a.settled) : v.manifest ? v.manifest->drain(a.settled) : 0;
        if (n == 0) {
            return;
        }
        std::array<rte_mbuf*, max_burst> tx;
        uint16_t ntx = 0;
        uint8_t binding = 0;
        for (uint32_t k = 0; k < n; ++k) {
            auto* m = static_cast<rte_mbuf*>(a.settled[k].handle);
            --lc.stats.auth_held;
            const held_info h = held_info::unpack(m->hash.usr);
            if (a.settled[k].v != srcauth::verdict::release) {
                dl.add(m, to_drop_reason(a.settled[k].why), lc.stats);
                continue;
            }
            if (!release(m, h)) {
                dl.add(m, drop_reason::ecn_drop, lc.stats);
                continue;
            }
            if (ntx != 0 && h.binding != binding) {
                stage_tx(lc, lc.bindings[binding], tx.data(), ntx, dl);
                ntx = 0;
            }
            binding = h.binding;
            tx[ntx++] = m;
            ++lc.stats.auth_released;
        }
        if (ntx != 0) {
            stage_tx(lc, lc.bindings[binding], tx.data(), ntx, dl);
        }
    }
}

} // namespace

uint8_t auth_open(lcore_ctx& lc, const rx_binding& b, uint16_t slot, rte_mbuf* m, uint16_t i, const crypto::gcm_op& op,
                  uint16_t payload_len)
{
    burst_scratch& s = lc.scratch;
    const auth_verifier* v = slot == sa::no_auth_slot || lc.auth == nullptr ? nullptr : lc.auth->verifiers[slot].get();
    if (v == nullptr) {
        return static_cast<uint8_t>(drop_reason::srcauth_unexpected);
    }
    srcauth::wire::common c{};
    if (!srcauth::wire::parse_common(op.data, payload_len, c)) {
        return static_cast<uint8_t>(drop_reason::srcauth_malformed);
    }
    const packet::pkt_meta outer_meta = s.meta[i];
    uint8_t* front = rte_pktmbuf_mtod(m, uint8_t*);
    const uint8_t* outer = front + outer_meta.l3_off;
    const uint8_t ecn = outer_meta.family == 4 ? (outer[1] & 3) : ((outer[1] >> 4) & 3);
    if (c.next == srcauth::wire::next_none) { // control message: judged whole, by its outer source
        if (!v->binds(c.sender, src_of(outer, outer_meta.family), outer_meta.family)) {
            return static_cast<uint8_t>(drop_reason::srcauth_unknown_sender);
        }
        const uint16_t cut = static_cast<uint16_t>(op.data - outer);
        // L2 + control message, like a data packet. s.data[i] keeps pointing at the old front: the
        // outer header there stays intact (the L2 copy lands past it) for the replay update.
        copy_l2(front + cut, front, outer_meta.l3_off);
        rte_pktmbuf_adj(m, cut);
        rte_pktmbuf_trim(m, static_cast<uint16_t>(m->data_len - outer_meta.l3_off - c.length));
        m->hash.usr = held_info{ecn, uint8_t(outer_meta.l3_off), 0, 0, 0}.pack();
        s.auth[i] = auth_control;
        return keep;
    }
    const uint16_t trailer = c.type == srcauth::wire::msg_type::signed_data ? srcauth::wire::sig_len : 0;
    if (payload_len < c.length + trailer) {
        return static_cast<uint8_t>(drop_reason::srcauth_malformed);
    }
    const uint8_t* inner = op.data + c.length;
    const auto inner_len = static_cast<uint16_t>(payload_len - c.length - trailer);
    if (!inner_fits(inner, inner_len, c.next)) {
        return static_cast<uint8_t>(drop_reason::srcauth_malformed);
    }
    if (!esp::addresses_preserved(outer, inner, outer_meta.family)) {
        return static_cast<uint8_t>(drop_reason::outer_inner_mismatch);
    }
    if (!v->binds(c.sender, src_of(inner, outer_meta.family), outer_meta.family)) {
        return static_cast<uint8_t>(drop_reason::srcauth_unknown_sender);
    }
    // Strip outer IP and ESP, keep the tag in front of the inner packet until it is verified.
    const auto cut = static_cast<uint16_t>(op.data - outer);
    copy_l2(front + cut, front, outer_meta.l3_off);
    rte_pktmbuf_adj(m, cut);
    const auto frame_len = static_cast<uint16_t>(outer_meta.l3_off + c.length + inner_len + trailer);
    rte_pktmbuf_trim(m, static_cast<uint16_t>(m->data_len - frame_len));
    const uint8_t* nf = rte_pktmbuf_mtod(m, const uint8_t*);
    s.data[i] = nf;
    drop_reason why = drop_reason::ip_truncated;
    if (!packet::parse_ip(nf, frame_len - trailer, static_cast<uint16_t>(outer_meta.l3_off + c.length), outer_meta.vlan,
                          packet::ipv4_csum::verify, s.meta[i], why)) {
        return static_cast<uint8_t>(why);
    }
    m->hash.usr = held_info{ecn, uint8_t(outer_meta.l3_off), uint8_t(c.length), uint8_t(trailer != 0),
                            uint8_t(&b - lc.bindings.data())}
                      .pack();
    s.auth[i] = auth_data;
    return keep;
}

uint16_t stage_verify(lcore_ctx& lc, const dp_state& st, rte_mbuf** pkts, uint16_t n, drop_list& dl)
{
    burst_scratch& s = lc.scratch;
    srcauth_lcore& a = *lc.auth;
    std::array<uint8_t, max_burst> verdict;
    std::array<uint8_t, max_burst> done{};
    std::array<uint16_t, max_burst> idx;
    for (uint16_t i = 0; i < n; ++i) {
        verdict[i] = keep;
        done[i] = s.auth[i] == auth_none;
    }
    for (uint16_t i = 0; i < n; ++i) { // one verifier call per slot, packets in burst order
        if (done[i]) {
            continue;
        }
        const uint16_t slot = st.in_sas[s.sa[i]]->auth_slot;
        size_t k = 0;
        for (uint16_t j = i; j < n; ++j) {
            if (!done[j] && st.in_sas[s.sa[j]]->auth_slot == slot) {
                done[j] = 1;
                idx[k] = j;
                a.views[k++] = view_of(pkts[j]);
            }
        }
        auth_verifier& v = *a.verifiers[slot];
        verify(lc, v, k);
        apply(lc, std::span(idx.data(), k), pkts, verdict.data());
    }
    uint16_t good = 0;
    for (uint16_t i = 0; i < n; ++i) {
        if (verdict[i] == keep) {
            pkts[good++] = pkts[i];
        } else if (verdict[i] != leave) {
            dl.add(pkts[i], static_cast<drop_reason>(verdict[i]), lc.stats);
        }
    }
    return good;
}

void srcauth_tick(lcore_ctx& lc, const dp_state& st)
{
    srcauth_send_control(lc, st);
    srcauth_settle(lc);
}

void srcauth_flush(lcore_ctx& lc)
{
    lc.auth->now_ns = UINT64_MAX / 2; // every hold timeout has passed
    srcauth_settle(lc);
}

void srcauth_settle(lcore_ctx& lc)
{
    srcauth_lcore& a = *lc.auth;
    drop_list dl;
    for (auto& v : a.verifiers) {
        if (!v) {
            continue;
        }
        if (v->tesla) {
            v->tesla->poll(*lc.engine, a.now_ns);
        } else if (v->manifest) {
            v->manifest->poll(a.now_ns);
        }
        drain(lc, *v, dl);
    }
    dl.free_all();
}

} // namespace msecgw::dataplane::detail
