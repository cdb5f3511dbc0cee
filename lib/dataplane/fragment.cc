// Outer fragmentation after encryption (outbound) and reassembly before decryption (inbound).
// Only the fragment path runs here; a burst without fragments never enters these stages.
#include <rte_cycles.h>
#include <rte_mbuf.h>

#include <cstring>

#include "burst.hh"
#include "frag/frag.hh"

namespace msecgw::dataplane::detail {

namespace {

constexpr uint32_t expire_budget = 8; ///< reassembly slots looked at per poll

/// IPv6 fragment identification: the lane in the top 8 bits keeps lcores apart.
uint32_t next_v6_frag_id(lcore_ctx& lc)
{
    return (uint32_t{lc.index} << 24) | (lc.frag_id++ & 0xffffffu);
}

void set_tx_offload(rte_mbuf* m, uint16_t l2, uint16_t l3)
{
    m->ol_flags |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM;
    m->l2_len = l2;
    m->l3_len = l3;
}

/// Splits ESP packet `m` (L2 header m->l2_len bytes, outer IP header m->l3_len) into p.count fragments at `out`:
/// fragments 1.. are new mbufs holding a copy of the L2 header, a fragment header and their
/// slice; fragment 0 is `m` itself, trimmed. False (nothing changed) when no mbuf is left.
bool split_packet(lcore_ctx& lc, const rx_binding& b, rte_mbuf* m, const frag::split_plan& p, rte_mbuf** out)
{
    if (rte_pktmbuf_alloc_bulk(lc.pool, out + 1, p.count - 1) != 0) {
        return false;
    }
    const uint16_t l2 = m->l2_len;
    uint8_t* frame = rte_pktmbuf_mtod(m, uint8_t*);
    uint8_t* ip = frame + l2;
    const uint32_t ip_len = m->pkt_len - l2;
    const uint8_t family = ip[0] >> 4;
    const uint32_t id = family == 4 ? ((uint32_t{ip[4]} << 8) | ip[5]) : next_v6_frag_id(lc);
    const bool offload = b.tx_ipv4_cksum && family == 4;
    const uint16_t hdr = p.hdr_len + p.frag_hdr;
    for (uint16_t k = 1; k < p.count; ++k) {
        rte_mbuf* f = out[k];
        const uint16_t len = frag::chunk_len(p, ip_len, k);
        auto* d = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(f, static_cast<uint16_t>(l2 + hdr + len)));
        std::memcpy(d, frame, l2);
        frag::write_fragment_header(d + l2, ip, family, p, ip_len, k, id, offload);
        std::memcpy(d + l2 + hdr, ip + p.hdr_len + uint32_t{k} * p.chunk, len);
        if (offload) {
            set_tx_offload(f, l2, p.hdr_len);
        }
    }
    if (p.frag_hdr != 0) { // IPv6: make room for the fragment header in front of the payload
        auto* front = reinterpret_cast<uint8_t*>(rte_pktmbuf_prepend(m, p.frag_hdr));
        std::memmove(front, frame, l2 + p.hdr_len);
        ip = front + l2;
    }
    frag::write_fragment_header(ip, ip, family, p, ip_len, 0, id, offload);
    rte_pktmbuf_trim(m, static_cast<uint16_t>(m->data_len - (l2 + hdr + p.chunk)));
    out[0] = m;
    ++lc.stats.fragmented;
    lc.stats.fragments_out += p.count;
    return true;
}

/// The reassembly key of a fragment whose IP header is at `ip`.
frag::frag_key key_of(const uint8_t* ip, const packet::pkt_meta& meta, uint32_t id)
{
    frag::frag_key k;
    k.family = meta.family;
    k.id = id;
    if (meta.family == 4) {
        k.proto = meta.proto;
        std::memcpy(k.addrs.data(), ip + 12, 8);
    } else {
        std::memcpy(k.addrs.data(), ip + 8, 32);
    }
    return k;
}

/// Copies every fragment's data behind the first one (offset 0), frees the others and rewrites
/// the IP header of the result. Returns nullptr (nothing freed) when the first mbuf has no room.
rte_mbuf* join_pieces(lcore_ctx& lc, const frag::piece_list& l)
{
    rte_mbuf* m = l.p[0].pkt;
    packet::pkt_meta meta{};
    drop_reason why = drop_reason::frag_malformed;
    const auto* frame = rte_pktmbuf_mtod(m, const uint8_t*);
    if (!packet::parse_frame(frame, m->data_len, packet::ipv4_csum::trusted, meta, why)) {
        return nullptr; // it parsed when it arrived; kept for safety
    }
    uint32_t total = 0;
    for (uint16_t i = 0; i < l.n; ++i) {
        total += l.p[i].len;
    }
    rte_pktmbuf_trim(m, static_cast<uint16_t>(m->data_len - (l.p[0].at + l.p[0].len)));
    if (rte_pktmbuf_tailroom(m) < total - l.p[0].len) {
        return nullptr;
    }
    for (uint16_t i = 1; i < l.n; ++i) {
        auto* dst = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, l.p[i].len));
        std::memcpy(dst, rte_pktmbuf_mtod(l.p[i].pkt, const uint8_t*) + l.p[i].at, l.p[i].len);
        rte_pktmbuf_free(l.p[i].pkt);
    }
    uint8_t* front = rte_pktmbuf_mtod(m, uint8_t*);
    frag::write_reassembled_header(front + meta.l3_off, meta, total);
    if (meta.family == 6) { // drop the fragment header: what precedes it moves up by 8
        std::memmove(front + frag::ipv6_frag_hdr_len, front, meta.l3_off + meta.frag_hdr);
        rte_pktmbuf_adj(m, frag::ipv6_frag_hdr_len);
    }
    ++lc.stats.reassembled;
    lc.stats.fragments_in += l.n;
    return m;
}

void drop_pieces(const frag::piece_list& l, drop_reason why, lcore_stats& st, drop_list& dl)
{
    for (uint16_t i = 0; i < l.n; ++i) {
        dl.add(l.p[i].pkt, why, st);
    }
}

} // namespace

uint16_t stage_fragment(lcore_ctx& lc, const rx_binding& b, rte_mbuf** pkts, uint16_t n, drop_list& dl)
{
    burst_scratch& s = lc.scratch;
    uint16_t k = 0;
    for (uint16_t i = 0; i < n; ++i) {
        rte_mbuf* m = pkts[i];
        if (s.split[i] == 0) {
            if (k == s.frags.size()) {
                stage_tx(lc, b, s.frags.data(), k, dl);
                k = 0;
            }
            s.frags[k++] = m;
            continue;
        }
        const uint8_t* ip = rte_pktmbuf_mtod(m, const uint8_t*) + m->l2_len;
        const frag::split_plan p = frag::plan_split(static_cast<uint8_t>(ip[0] >> 4), static_cast<uint16_t>(m->l3_len),
                                                    m->pkt_len - m->l2_len, b.egress_mtu);
        if (k + p.count > s.frags.size()) {
            stage_tx(lc, b, s.frags.data(), k, dl);
            k = 0;
        }
        if (p.count == 0 || p.count > s.frags.size() || !split_packet(lc, b, m, p, s.frags.data() + k)) {
            dl.add(m, p.count == 0 ? drop_reason::mtu_exceeded : drop_reason::frag_no_mbuf, lc.stats);
            continue;
        }
        k = static_cast<uint16_t>(k + p.count);
    }
    return k;
}

uint16_t stage_reassemble(lcore_ctx& lc, rte_mbuf** pkts, uint16_t n, drop_list& dl)
{
    burst_scratch& s = lc.scratch;
    uint64_t now = 0; // read from the TSC at the first fragment: most bursts have none
    uint16_t good = 0;
    frag::piece_list out;
    for (uint16_t i = 0; i < n; ++i) {
        const packet::pkt_meta meta = s.meta[i];
        rte_mbuf* m = pkts[i];
        if (meta.fragment == 0 || meta.proto != packet::proto_esp || lc.reasm == nullptr) {
            if (good != i) {
                s.meta[good] = meta;
                s.data[good] = s.data[i];
                pkts[good] = m;
            }
            ++good;
            continue;
        }
        if (now == 0) {
            now = rte_rdtsc();
        }
        const uint8_t* ip = s.data[i] + meta.l3_off;
        frag::frag_info fi{};
        if (!frag::read_fragment(ip, meta, fi)) {
            dl.add(m, drop_reason::frag_malformed, lc.stats);
            continue;
        }
        const frag::piece f{m, static_cast<uint16_t>(meta.l3_off + fi.data_off), fi.offset, fi.data_len};
        drop_reason why = drop_reason::frag_malformed;
        switch (lc.reasm->add(key_of(ip, meta, fi.id), f, fi.more, now, out, why)) {
        case frag::add_result::held:
            break;
        case frag::add_result::dropped:
            drop_pieces(out, why, lc.stats, dl);
            break;
        case frag::add_result::complete: {
            rte_mbuf* whole = join_pieces(lc, out);
            if (whole == nullptr) {
                drop_pieces(out, drop_reason::frag_too_big, lc.stats, dl);
                break;
            }
            pkts[good] = whole;
            if (!reparse(lc, whole, good, why)) {
                dl.add(whole, why, lc.stats);
                break;
            }
            ++good;
            break;
        }
        }
    }
    return good;
}

void reasm_expire(lcore_ctx& lc, bool all)
{
    if (lc.reasm == nullptr || lc.reasm->in_use() == 0) {
        return;
    }
    drop_list dl;
    frag::piece_list out;
    if (all) {
        while (lc.reasm->release_one(out)) {
            drop_pieces(out, drop_reason::frag_timeout, lc.stats, dl);
        }
    } else if (lc.reasm->expire_some(rte_rdtsc(), expire_budget, out)) {
        drop_pieces(out, drop_reason::frag_timeout, lc.stats, dl);
    }
    dl.free_all();
}

} // namespace msecgw::dataplane::detail
