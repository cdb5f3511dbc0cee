// Source authentication, sending side: tag the burst before sealing, and send each sender's
// control messages (TESLA bootstrap and disclosures, manifests) as group ESP of their own.
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

/// Builds one control message of at most `max_len` bytes as group ESP in a new mbuf: `write`
/// fills the payload and returns its length (0: nothing to send). Queues its GCM op.
template <class Write>
rte_mbuf* build_control(lcore_ctx& lc, const auth_route& r, sa::out_sa& sa, crypto::gcm_op& op, Write&& write)
{
    rte_mbuf* m = rte_pktmbuf_alloc(lc.pool);
    if (m == nullptr) {
        return nullptr;
    }
    const uint16_t outer_len = r.family == 4 ? esp::ipv4_hdr_len : esp::ipv6_hdr_len;
    const uint16_t head = static_cast<uint16_t>(r.l3_off + outer_len + esp::esp_hdr_len + esp::iv_len);
    uint8_t* front = rte_pktmbuf_mtod(m, uint8_t*);
    const uint16_t room = rte_pktmbuf_tailroom(m);
    const size_t len = write(std::span<uint8_t>(front + head, room - head - 3 - 2 - esp::icv_len));
    uint64_t ctr = 0;
    drop_reason why{};
    if (len == 0 || !next_counter(sa, lc.index, ctr, why)) {
        rte_pktmbuf_free(m);
        return nullptr;
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
    uint8_t* esph = outer + lay.outer_len;
    esp::write_esp_header(esph, sa.spi, static_cast<uint32_t>(ctr + 1), sa.iv(lc.index, ctr));
    uint8_t* payload = front + head;
    esp::write_trailer(payload + len, lay.pad_len, srcauth::wire::esp_next_header);
    op = crypto::gcm_op{&sa.key, payload, lay.cipher_len, esph + esp::esp_hdr_len, esph, payload + lay.cipher_len};
    return m;
}

/// Sends what the sender of `slot` owes now: a TESLA bootstrap (first, then every period) and a
/// disclosure per interval, or the manifests that are due.
void emit_control(lcore_ctx& lc, const dp_state& st, auth_sender& snd)
{
    const auth_route& r = snd.route;
    if (!r.known || r.sa_index >= st.out_sas.size() || st.out_sas[r.sa_index]->uid != r.sa_uid) {
        return; // no data yet, or its SA is gone: the next data packet teaches the new one
    }
    sa::out_sa& sa = *st.out_sas[r.sa_index];
    if (sa.stopped.load(std::memory_order_relaxed) != 0 || sa.expired.load(std::memory_order_relaxed) != 0) {
        return;
    }
    const srcauth_lcore& a = *lc.auth;
    crypto::engine& e = *lc.engine;
    std::array<rte_mbuf*, max_control> msgs;
    std::array<crypto::gcm_op, max_control> ops;
    uint16_t n = 0;
    auto add = [&](auto&& write) {
        if (n < max_control) {
            if (rte_mbuf* m = build_control(lc, r, sa, ops[n], write)) {
                msgs[n++] = m;
            }
        }
    };
    if (snd.tesla) {
        if (snd.next_bootstrap_ns == 0 || a.now_ns >= snd.next_bootstrap_ns) {
            add([&](std::span<uint8_t> out) { return snd.tesla->write_bootstrap(e, snd.signer, a.now_ns, out); });
            snd.next_bootstrap_ns = a.now_ns + snd.bootstrap_period_ns;
        }
        const uint32_t i = snd.tesla->interval_at(a.now_ns);
        if (i != snd.disclosed_interval) {
            snd.disclosed_interval = i;
            add([&](std::span<uint8_t> out) { return snd.tesla->write_disclosure(e, a.now_ns, out); });
        }
    } else if (snd.manifest) {
        while (n < max_control && snd.manifest->manifest_due(a.now_ns)) {
            const uint16_t before = n;
            add([&](std::span<uint8_t> out) { return snd.manifest->write_manifest(e, snd.signer, out); });
            if (n == before) {
                break; // signing or mbuf failed: try again next round
            }
        }
    }
    if (n == 0) {
        return;
    }
    std::array<uint8_t, max_control> ok{};
    crypto::seal_burst(e, {ops.data(), n}, {ok.data(), n});
    const rx_binding& b = lc.bindings[r.binding];
    uint16_t sent = 0;
    for (uint16_t k = 0; k < n; ++k) {
        if (ok[k] != 0) {
            msgs[sent++] = msgs[k];
        } else {
            rte_pktmbuf_free(msgs[k]);
        }
    }
    const uint16_t tx = rte_eth_tx_burst(b.tx_port, b.tx_queue, msgs.data(), sent);
    if (tx < sent) {
        rte_pktmbuf_free_bulk(msgs.data() + tx, sent - tx);
    }
    lc.stats.tx_pkts[b.tx_port] += tx;
    lc.stats.auth_control_sent += tx;
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
    for (auto& snd : lc.auth->senders) {
        if (snd) {
            emit_control(lc, st, *snd);
        }
    }
}

} // namespace msecgw::dataplane::detail
