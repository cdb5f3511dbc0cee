// Source authentication, sending side: tag the burst before sealing, and send each sender's
// control messages (TESLA bootstrap and disclosures, manifests) as group ESP of their own.
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include <cstring>

#include "burst.hh"
#include "esp/esp.hh"
#include "srcauth_stage.hh"

namespace msecgw::dataplane::detail {

namespace {

constexpr uint16_t max_control = 4; ///< control messages one sender sends per call

/// Tags jobs [first, end) of one sender; marks the packets of jobs it could not tag.
void tag_run(lcore_ctx& lc, auth_sender& snd, uint16_t first, uint16_t end, uint8_t* untagged, bool& any)
{
    srcauth_lcore& a = *lc.auth;
    const std::span<const srcauth::tag_job> jobs(a.jobs.data() + first, end - first);
    uint32_t done = 0;
    if (snd.tesla) {
        done = snd.tesla->tag_burst(*lc.engine, jobs, a.now_ns);
    } else if (snd.manifest) {
        done = snd.manifest->tag_burst(*lc.engine, jobs, a.now_ns); // a prefix of the jobs
    } else {
        std::fill_n(a.ok.begin() + first, end - first, uint8_t{0});
        snd.sign->tag_burst(*lc.engine, jobs, std::span(a.ok.data() + first, end - first));
    }
    for (uint16_t k = first; k < end; ++k) {
        const bool ok = snd.sign ? a.ok[k] != 0 : uint32_t(k - first) < done;
        untagged[lc.scratch.job_pkt[k]] = !ok;
        any |= !ok;
        lc.stats.auth_tagged += ok;
    }
}

/// The sender learns where its control messages go from its last tagged packet.
void learn_route(lcore_ctx& lc, const rx_binding& b, auth_sender& snd, rte_mbuf* m, uint16_t sa_index,
                 const dp_state& st)
{
    auth_route& r = snd.route;
    const uint16_t l3 = m->l2_len;
    const uint8_t* front = rte_pktmbuf_mtod(m, const uint8_t*);
    const uint8_t* inner = front + l3 + m->l3_len + esp::esp_hdr_len + esp::iv_len + snd.header_len();
    r.family = static_cast<uint8_t>(inner[0] >> 4);
    r.l3_off = l3;
    std::memcpy(r.l2.data(), front, l3);
    std::memcpy(r.ip.data(), inner, r.family == 4 ? esp::ipv4_hdr_len : esp::ipv6_hdr_len);
    r.sa_index = sa_index;
    r.sa_uid = st.out_sas[sa_index]->uid;
    r.binding = static_cast<uint16_t>(&b - lc.bindings.data());
    r.known = true;
}

/// A control message framed as group ESP in its own mbuf, not numbered or sealed yet.
struct control_frame {
    rte_mbuf* m = nullptr;
    uint8_t* payload = nullptr;
    size_t len = 0;
    uint8_t* esph = nullptr;
    uint32_t cipher_len = 0;
};

/// Frames one control message of at most the mbuf's room: `write` fills the payload and returns
/// its length (0: nothing to send, no mbuf kept).
template <class Write>
bool frame_control(lcore_ctx& lc, const auth_route& r, Write&& write, control_frame& f)
{
    rte_mbuf* m = rte_pktmbuf_alloc(lc.pool);
    if (m == nullptr) {
        return false;
    }
    const uint16_t outer_len = r.family == 4 ? esp::ipv4_hdr_len : esp::ipv6_hdr_len;
    const uint16_t head = static_cast<uint16_t>(r.l3_off + outer_len + esp::esp_hdr_len + esp::iv_len);
    uint8_t* front = rte_pktmbuf_mtod(m, uint8_t*);
    const uint16_t room = rte_pktmbuf_tailroom(m);
    const size_t len = write(std::span<uint8_t>(front + head, room - head - 3 - 2 - esp::icv_len));
    if (len == 0) {
        rte_pktmbuf_free(m);
        return false;
    }
    const esp::outb_layout lay = esp::layout_for(r.family, static_cast<uint16_t>(len));
    const auto total = static_cast<uint16_t>(r.l3_off + lay.outer_total);
    rte_pktmbuf_append(m, total);
    std::memcpy(front, r.l2.data(), r.l3_off);
    uint8_t* outer = front + r.l3_off;
    if (r.family == 4) {
        esp::write_outer_v4(outer, r.ip.data(), lay.outer_total, lc.ip_id++, false);
    } else {
        esp::write_outer_v6(outer, r.ip.data(), lay.outer_total);
    }
    uint8_t* payload = front + head;
    esp::write_trailer(payload + len, lay.pad_len, srcauth::wire::esp_next_header);
    f = control_frame{m, payload, len, outer + lay.outer_len, lay.cipher_len};
    return true;
}

/// Gives a framed control message its ESP sequence number and IV on `sa`, and its GCM op.
bool number_control(lcore_ctx& lc, sa::out_sa& sa, uint8_t* esph, uint8_t* payload, uint32_t cipher_len,
                    crypto::gcm_op& op)
{
    uint64_t ctr = 0;
    drop_reason why{};
    if (!next_counter(sa, lc.index, ctr, why)) {
        return false;
    }
    esp::write_esp_header(esph, sa.spi, static_cast<uint32_t>(ctr + 1), sa.iv(lc.index, ctr));
    op = crypto::gcm_op{&sa.key, payload, cipher_len, esph + esp::esp_hdr_len, esph, payload + cipher_len};
    return true;
}

/// The SA a sender's control messages go out on now, or null (no data yet, SA gone or stopped:
/// the next data packet teaches the new one).
sa::out_sa* control_sa(const dp_state& st, const auth_route& r)
{
    if (!r.known || r.sa_index >= st.out_sas.size() || st.out_sas[r.sa_index]->uid != r.sa_uid) {
        return nullptr;
    }
    sa::out_sa* sa = st.out_sas[r.sa_index].get();
    if (sa->stopped.load(std::memory_order_relaxed) != 0 || sa->expired.load(std::memory_order_relaxed) != 0) {
        return nullptr;
    }
    return sa;
}

/// Seals msgs[0..n) (their ops) and sends those sealed on binding `b`.
void seal_and_send(lcore_ctx& lc, const rx_binding& b, rte_mbuf** msgs, crypto::gcm_op* ops, uint16_t n)
{
    std::array<uint8_t, max_control> ok{};
    crypto::seal_burst(*lc.engine, {ops, n}, {ok.data(), n});
    uint16_t sent = 0;
    for (uint16_t k = 0; k < n; ++k) {
        if (ok[k] != 0) {
            msgs[sent++] = msgs[k];
        } else {
            rte_pktmbuf_free(msgs[k]);
        }
    }
    const uint16_t tx = rte_eth_tx_burst(b.tx_port, b.tx_queue, msgs, sent);
    if (tx < sent) {
        rte_pktmbuf_free_bulk(msgs + tx, sent - tx);
    }
    lc.stats.tx_pkts[b.tx_port] += tx;
    lc.stats.auth_control_sent += tx;
}

/// Hands the sender's due manifests, unsigned, to the signing thread (srcauth_signer.hh). A lane
/// with no free job leaves them pending for a later round.
void hand_over_manifests(lcore_ctx& lc, const auth_route& r, auth_sender& snd)
{
    sign_lane& l = *lc.auth->signing;
    const srcauth::wire::sig_alg alg = snd.signer.alg();
    while (l.in_flight < sign_lane::depth - 1 && snd.manifest->manifest_due(lc.auth->now_ns)) {
        control_frame f;
        if (!frame_control(
                lc, r, [&](std::span<uint8_t> out) { return snd.manifest->write_unsigned_manifest(out, alg); }, f)) {
            return;
        }
        sign_job& j = l.jobs[l.next];
        j = sign_job{f.m, &snd, f.payload, static_cast<uint32_t>(f.len), f.esph, f.cipher_len, 0};
        if (rte_ring_sp_enqueue(l.to_sign, &j) != 0) { // cannot happen: fewer jobs than ring slots
            rte_pktmbuf_free(f.m);
            return;
        }
        l.next = (l.next + 1) % sign_lane::depth;
        ++l.in_flight;
    }
}

/// Sends what the sender of `slot` owes now: a TESLA bootstrap (first, then every period) and a
/// disclosure per interval, or the manifests that are due.
void emit_control(lcore_ctx& lc, const dp_state& st, auth_sender& snd)
{
    const auth_route& r = snd.route;
    sa::out_sa* sa = control_sa(st, r);
    if (sa == nullptr) {
        return;
    }
    const srcauth_lcore& a = *lc.auth;
    crypto::engine& e = *lc.engine;
    std::array<rte_mbuf*, max_control> msgs;
    std::array<crypto::gcm_op, max_control> ops;
    uint16_t n = 0;
    auto add = [&](auto&& write) {
        control_frame f;
        if (n < max_control && frame_control(lc, r, write, f)) {
            if (number_control(lc, *sa, f.esph, f.payload, f.cipher_len, ops[n])) {
                msgs[n++] = f.m;
            } else {
                rte_pktmbuf_free(f.m);
            }
        }
    };
    if (snd.tesla) {
        if (snd.next_bootstrap_ns == 0 || a.now_ns >= snd.next_bootstrap_ns) {
            add([&](std::span<uint8_t> out) { return snd.tesla->write_bootstrap(e, snd.signer, a.now_ns, out); });
            snd.next_bootstrap_ns = a.now_ns + snd.bootstrap_period_ns;
        }
        // Keys travel only in disclosures: each is sent disclosures_per_interval times, spread
        // over the interval, so one lost on the way delays its packets by a fraction of an interval.
        const uint32_t i = snd.tesla->interval_at(a.now_ns);
        if (i != snd.disclosed_interval || a.now_ns >= snd.next_disclosure_ns) {
            snd.disclosed_interval = i;
            snd.next_disclosure_ns = a.now_ns + snd.tesla->params().interval_ns / srcauth::disclosures_per_interval;
            add([&](std::span<uint8_t> out) { return snd.tesla->write_disclosure(e, a.now_ns, out); });
        }
    } else if (snd.manifest && a.signing != nullptr && !snd.sign_on_worker) {
        hand_over_manifests(lc, r, snd);
    } else if (snd.manifest) {
        while (n < max_control && snd.manifest->manifest_due(a.now_ns)) {
            const uint16_t before = n;
            add([&](std::span<uint8_t> out) { return snd.manifest->write_manifest(e, snd.signer, out); });
            if (n == before) {
                break; // signing or mbuf failed: try again next round
            }
        }
    }
    if (n != 0) {
        seal_and_send(lc, lc.bindings[r.binding], msgs.data(), ops.data(), n);
    }
}

/// Manifests back from the signing thread: numbered, sealed and sent on their sender's route now.
void send_signed(lcore_ctx& lc, const dp_state& st)
{
    sign_lane* l = lc.auth->signing;
    if (l == nullptr || l->in_flight == 0) {
        return;
    }
    std::array<void*, max_control> got;
    const unsigned n = rte_ring_sc_dequeue_burst(l->signed_back, got.data(), max_control, nullptr);
    for (unsigned k = 0; k < n; ++k) {
        sign_job& j = *static_cast<sign_job*>(got[k]);
        --l->in_flight;
        const auth_route& r = j.snd->route;
        sa::out_sa* sa = control_sa(st, r);
        crypto::gcm_op op;
        if (j.ok == 0 || sa == nullptr || !number_control(lc, *sa, j.esph, j.manifest, j.cipher_len, op)) {
            rte_pktmbuf_free(j.m);
            continue;
        }
        seal_and_send(lc, lc.bindings[r.binding], &j.m, &op, 1);
    }
}

} // namespace

bool stage_tag(lcore_ctx& lc, const dp_state& st, const rx_binding& b, rte_mbuf** pkts, uint8_t* untagged)
{
    burst_scratch& s = lc.scratch;
    srcauth_lcore& a = *lc.auth;
    bool any = false;
    for (uint16_t first = 0; first < s.n_jobs;) { // runs of one sender, in burst order
        const uint16_t slot = a.job_slot[first];
        uint16_t end = first + 1;
        while (end < s.n_jobs && a.job_slot[end] == slot) {
            ++end;
        }
        auth_sender& snd = *a.senders[slot];
        tag_run(lc, snd, first, end, untagged, any);
        const uint16_t last = static_cast<uint16_t>(end - 1);
        if (!untagged[s.job_pkt[last]]) {
            learn_route(lc, b, snd, pkts[s.job_pkt[last]], s.job_sa[last], st);
        }
        emit_control(lc, st, snd); // the first bootstrap goes out before the data it covers
        first = end;
    }
    return any;
}

void srcauth_send_control(lcore_ctx& lc, const dp_state& st)
{
    send_signed(lc, st);
    for (auto& snd : lc.auth->senders) {
        if (snd) {
            emit_control(lc, st, *snd);
        }
    }
}

} // namespace msecgw::dataplane::detail

namespace msecgw::dataplane::detail {

void srcauth_finish_signing(lcore_ctx& lc, const dp_state& st)
{
    const sign_lane* l = lc.auth->signing;
    for (int waited = 0; l != nullptr && l->in_flight != 0 && waited < 2000; ++waited) { // at most ~1 s
        send_signed(lc, st);
        rte_delay_us_sleep(500);
    }
}

} // namespace msecgw::dataplane::detail
