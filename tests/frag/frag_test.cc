// Fragmentation and reassembly logic: split plans, fragment headers (parsed back by the packet
// parser), and the reassembly table's rules (order, overlap, duplicates, limits, expiry). The data
// plane's mbuf handling is covered end to end by tests/integration/esp_interop_test.py against
// scapy's fragment()/defragment().
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

#include "frag/frag.hh"
#include "frag/reasm.hh"
#include "packet/packet.hh"

using namespace msecgw;
using bytes = std::vector<uint8_t>;

namespace {

constexpr uint16_t eth = 14;

/// An Ethernet frame holding an IPv4 packet (no DF unless asked) or an IPv6 packet, protocol ESP,
/// payload bytes counting up.
bytes frame(uint8_t family, uint16_t ip_len, bool df = false)
{
    bytes f(eth + ip_len);
    for (size_t i = 0; i < f.size(); ++i) {
        f[i] = static_cast<uint8_t>(i * 7 + 3);
    }
    f[12] = family == 4 ? 0x08 : 0x86;
    f[13] = family == 4 ? 0x00 : 0xdd;
    uint8_t* ip = f.data() + eth;
    if (family == 4) {
        const uint8_t h[20] = {0x45, 0x02, uint8_t(ip_len >> 8), uint8_t(ip_len), 0xbe, 0xef, uint8_t(df ? 0x40 : 0),
                               0, 7, 50, 0, 0, 10, 0, 0, 9, 239, 1, 1, 1};
        std::memcpy(ip, h, 20);
        const uint16_t c = packet::ipv4_header_checksum(ip, 20);
        ip[10] = uint8_t(c >> 8);
        ip[11] = uint8_t(c);
    } else {
        ip[0] = 0x60;
        ip[4] = uint8_t((ip_len - 40) >> 8);
        ip[5] = uint8_t(ip_len - 40);
        ip[6] = 50;
        ip[7] = 3;
        ip[24] = 0xff;
    }
    return f;
}

/// Splits `whole` (a frame) the way the data plane does, into standalone frames.
std::vector<bytes> split(const bytes& whole, uint16_t mtu, uint32_t id = 0x01020304)
{
    const uint8_t family = whole[eth] >> 4;
    const uint16_t hdr = family == 4 ? 20 : 40;
    const auto ip_len = static_cast<uint32_t>(whole.size() - eth);
    const frag::split_plan p = frag::plan_split(family, hdr, ip_len, mtu);
    std::vector<bytes> out;
    for (uint16_t k = 0; k < p.count; ++k) {
        const uint16_t len = frag::chunk_len(p, ip_len, k);
        bytes f(eth + hdr + p.frag_hdr + len);
        std::memcpy(f.data(), whole.data(), eth);
        frag::write_fragment_header(f.data() + eth, whole.data() + eth, family, p, ip_len, k, id, false);
        std::memcpy(f.data() + eth + hdr + p.frag_hdr, whole.data() + eth + hdr + uint32_t{k} * p.chunk, len);
        out.push_back(std::move(f));
    }
    return out;
}

packet::pkt_meta parse(const bytes& f)
{
    packet::pkt_meta m{};
    drop_reason why{};
    EXPECT_TRUE(packet::parse_frame(f.data(), static_cast<uint32_t>(f.size()), packet::ipv4_csum::verify, m, why))
        << to_label(why);
    return m;
}

rte_mbuf* handle(size_t i) { return reinterpret_cast<rte_mbuf*>(0x1000 + 64 * i); }
size_t index_of(rte_mbuf* h) { return (reinterpret_cast<uintptr_t>(h) - 0x1000) / 64; }

/// Feeds fragment frames to a table in the given order; on completion joins them as the data
/// plane does and returns the rebuilt frame.
struct reassembler {
    frag::reasm_table table{64, 1000};
    uint64_t now = 1;

    frag::add_result feed(const std::vector<bytes>& frags, size_t i, frag::piece_list& out, drop_reason& why)
    {
        const bytes& f = frags[i];
        const packet::pkt_meta m = parse(f);
        EXPECT_EQ(m.fragment, 1);
        frag::frag_info fi{};
        EXPECT_TRUE(frag::read_fragment(f.data() + m.l3_off, m, fi));
        frag::frag_key k;
        k.family = m.family;
        k.id = fi.id;
        if (m.family == 4) {
            k.proto = m.proto;
            std::memcpy(k.addrs.data(), f.data() + m.l3_off + 12, 8);
        } else {
            std::memcpy(k.addrs.data(), f.data() + m.l3_off + 8, 32);
        }
        const frag::piece p{handle(i), static_cast<uint16_t>(m.l3_off + fi.data_off), fi.offset, fi.data_len};
        return table.add(k, p, fi.more, now, out, why);
    }

    bytes join(const std::vector<bytes>& frags, const frag::piece_list& out)
    {
        const bytes& first = frags[index_of(out.p[0].pkt)];
        bytes r(first.begin(), first.begin() + out.p[0].at + out.p[0].len);
        uint32_t total = 0;
        for (uint16_t i = 0; i < out.n; ++i) {
            total += out.p[i].len;
            if (i != 0) {
                const bytes& f = frags[index_of(out.p[i].pkt)];
                r.insert(r.end(), f.begin() + out.p[i].at, f.begin() + out.p[i].at + out.p[i].len);
            }
        }
        const packet::pkt_meta m = parse(first);
        frag::write_reassembled_header(r.data() + m.l3_off, m, total);
        if (m.family == 6) {
            std::memmove(r.data() + 8, r.data(), m.l3_off + m.frag_hdr);
            r.erase(r.begin(), r.begin() + 8);
        }
        return r;
    }
};

} // namespace

TEST(frag_split, plans_fit_the_mtu_in_multiples_of_eight)
{
    auto p = frag::plan_split(4, 20, 1554, 1500);
    EXPECT_EQ(p.chunk, 1480);
    EXPECT_EQ(p.count, 2);
    EXPECT_EQ(frag::chunk_len(p, 1554, 1), 1554 - 20 - 1480);
    p = frag::plan_split(6, 40, 1574, 1280);
    EXPECT_EQ(p.frag_hdr, 8);
    EXPECT_EQ(p.chunk, (1280 - 48) & ~7);
    EXPECT_EQ(p.count, 2);
    p = frag::plan_split(4, 20, 1554, 577); // 557 -> 552 payload bytes per fragment
    EXPECT_EQ(p.chunk, 552);
    EXPECT_EQ(p.count, 3);
    EXPECT_EQ(frag::plan_split(4, 20, 100, 27).count, 0);
    EXPECT_EQ(frag::plan_split(6, 40, 100, 55).count, 0);
}

TEST(frag_split, fragments_parse_back_and_carry_the_original)
{
    for (uint8_t family : {4, 6}) {
        for (uint16_t mtu : {576, 1000, 1280, 1500}) {
            const bytes whole = frame(family, 1574, true);
            const auto frags = split(whole, mtu);
            ASSERT_GE(frags.size(), 2u);
            uint32_t covered = 0;
            for (size_t k = 0; k < frags.size(); ++k) {
                const packet::pkt_meta m = parse(frags[k]); // IPv4 checksum verified here
                EXPECT_LE(m.ip_len, mtu);
                EXPECT_EQ(m.fragment, 1);
                EXPECT_EQ(m.proto, 50);
                frag::frag_info fi{};
                ASSERT_TRUE(frag::read_fragment(frags[k].data() + eth, m, fi));
                EXPECT_EQ(fi.offset, covered);
                EXPECT_EQ(fi.more, k + 1 < frags.size());
                EXPECT_EQ(fi.id, family == 4 ? 0xbeefu : 0x01020304u);
                if (family == 4) {
                    EXPECT_EQ(frags[k][eth + 6] & 0x40, 0) << "DF cleared on outer fragments";
                }
                const uint16_t hdr = family == 4 ? 20 : 40;
                EXPECT_EQ(0, std::memcmp(frags[k].data() + eth + fi.data_off, whole.data() + eth + hdr + covered,
                                         fi.data_len));
                covered += fi.data_len;
            }
            EXPECT_EQ(covered + (family == 4 ? 20u : 40u) + eth, whole.size());
        }
    }
}

TEST(frag_reasm, any_order_rebuilds_the_packet_byte_for_byte)
{
    std::mt19937 rng(7);
    for (uint8_t family : {4, 6}) {
        const bytes whole = frame(family, 1574);
        auto frags = split(whole, 576);
        ASSERT_EQ(frags.size(), 3u);
        std::vector<size_t> order(frags.size());
        std::iota(order.begin(), order.end(), 0);
        for (int round = 0; round < 6; ++round) {
            std::shuffle(order.begin(), order.end(), rng);
            reassembler r;
            frag::piece_list out;
            drop_reason why{};
            for (size_t j = 0; j + 1 < order.size(); ++j) {
                ASSERT_EQ(r.feed(frags, order[j], out, why), frag::add_result::held);
            }
            EXPECT_EQ(r.table.in_use(), 1u);
            ASSERT_EQ(r.feed(frags, order.back(), out, why), frag::add_result::complete);
            EXPECT_EQ(r.table.in_use(), 0u);
            ASSERT_EQ(out.n, 3);
            EXPECT_EQ(out.p[0].offset, 0);
            bytes got = r.join(frags, out);
            if (family == 4) { // the fragments cleared DF, so the datagram has it cleared too
                bytes want = whole;
                EXPECT_EQ(got[eth + 6], 0);
                EXPECT_EQ(packet::ipv4_header_checksum(got.data() + eth, 20), 0);
                EXPECT_EQ(got, want);
            } else {
                EXPECT_EQ(got, whole);
            }
        }
    }
}

TEST(frag_reasm, overlap_abandons_the_datagram_and_a_duplicate_only_itself)
{
    const bytes whole = frame(4, 1574);
    auto frags = split(whole, 576);
    reassembler r;
    frag::piece_list out;
    drop_reason why{};
    ASSERT_EQ(r.feed(frags, 0, out, why), frag::add_result::held);
    ASSERT_EQ(r.feed(frags, 0, out, why), frag::add_result::dropped); // exact duplicate
    EXPECT_EQ(why, drop_reason::frag_overlap);
    ASSERT_EQ(out.n, 1);
    EXPECT_EQ(r.table.in_use(), 1u);
    // A fragment starting 8 bytes into fragment 0's data.
    bytes evil = frags[1];
    evil[eth + 7] = static_cast<uint8_t>((552 - 8) / 8);
    evil[eth + 10] = evil[eth + 11] = 0;
    const uint16_t c = packet::ipv4_header_checksum(evil.data() + eth, 20);
    evil[eth + 10] = uint8_t(c >> 8);
    evil[eth + 11] = uint8_t(c);
    frags.push_back(evil);
    ASSERT_EQ(r.feed(frags, 3, out, why), frag::add_result::dropped);
    EXPECT_EQ(why, drop_reason::frag_overlap);
    EXPECT_EQ(out.n, 2) << "the held fragment and the overlapping one";
    EXPECT_EQ(r.table.in_use(), 0u);
}

TEST(frag_reasm, inconsistent_ends_are_malformed)
{
    const bytes whole = frame(6, 1574);
    auto frags = split(whole, 576);
    const auto short_whole = frame(6, 1574 - 16);
    auto other = split(short_whole, 576); // same id: its last fragment ends 16 bytes earlier
    reassembler r;
    frag::piece_list out;
    drop_reason why{};
    ASSERT_EQ(r.feed(frags, 2, out, why), frag::add_result::held);
    std::vector<bytes> mix{other[2]};
    ASSERT_EQ(r.feed(mix, 0, out, why), frag::add_result::dropped);
    EXPECT_EQ(why, drop_reason::frag_malformed);
    EXPECT_EQ(out.n, 2);
    // A non-last fragment reaching the end the last fragment announced.
    frag::reasm_table t(8, 1000);
    frag::frag_key k;
    k.family = 4;
    ASSERT_EQ(t.add(k, {handle(1), 34, 1000, 20}, false, 1, out, why), frag::add_result::held);
    ASSERT_EQ(t.add(k, {handle(2), 34, 992, 8}, true, 1, out, why), frag::add_result::held);
    ASSERT_EQ(t.add(k, {handle(3), 34, 1024, 8}, true, 1, out, why), frag::add_result::dropped);
    EXPECT_EQ(why, drop_reason::frag_malformed);
    EXPECT_EQ(out.n, 3);
    // A last fragment that ends before data already held.
    ASSERT_EQ(t.add(k, {handle(4), 34, 800, 8}, true, 1, out, why), frag::add_result::held);
    ASSERT_EQ(t.add(k, {handle(5), 34, 0, 8}, false, 1, out, why), frag::add_result::dropped);
    EXPECT_EQ(why, drop_reason::frag_malformed);
    EXPECT_EQ(t.in_use(), 0u);
}

TEST(frag_reasm, read_fragment_rejects_impossible_fragments)
{
    bytes f = split(frame(4, 1574), 576)[0];
    packet::pkt_meta m = parse(f);
    frag::frag_info fi{};
    ASSERT_TRUE(frag::read_fragment(f.data() + eth, m, fi));
    m.ip_len = static_cast<uint16_t>(m.ip_len - 3); // a non-last fragment not a multiple of 8
    EXPECT_FALSE(frag::read_fragment(f.data() + eth, m, fi));
    m.ip_len = 20; // no data
    EXPECT_FALSE(frag::read_fragment(f.data() + eth, m, fi));
    bytes last = split(frame(4, 1574), 576)[2];
    packet::pkt_meta lm = parse(last);
    last[eth + 6] = 0x1f; // offset 0x1fxx * 8: would end beyond 65535
    last[eth + 7] = 0xff;
    EXPECT_FALSE(frag::read_fragment(last.data() + eth, lm, fi));
}

TEST(frag_reasm, a_full_set_refuses_new_datagrams_and_expiry_frees_them)
{
    frag::reasm_table t(4, 100); // one set of four slots
    frag::piece_list out;
    drop_reason why{};
    for (uint32_t id = 0; id < 4; ++id) {
        frag::frag_key k;
        k.family = 4;
        k.id = id;
        ASSERT_EQ(t.add(k, {handle(id), 34, 0, 8}, true, 10 + id, out, why), frag::add_result::held);
    }
    frag::frag_key k5;
    k5.family = 4;
    k5.id = 99;
    ASSERT_EQ(t.add(k5, {handle(9), 34, 0, 8}, true, 20, out, why), frag::add_result::dropped);
    EXPECT_EQ(why, drop_reason::frag_table_full);
    EXPECT_EQ(t.in_use(), 4u);
    EXPECT_FALSE(t.expire_some(100, 4, out)) << "not stale yet";
    ASSERT_TRUE(t.expire_some(111, 4, out)) << "id 0 is 101 old";
    EXPECT_EQ(out.n, 1);
    EXPECT_EQ(out.p[0].pkt, handle(0));
    EXPECT_EQ(t.in_use(), 3u);
    ASSERT_EQ(t.add(k5, {handle(9), 34, 0, 8}, true, 120, out, why), frag::add_result::held);
    size_t released = 0;
    while (t.release_one(out)) {
        released += out.n;
    }
    EXPECT_EQ(released, 4u);
    EXPECT_EQ(t.in_use(), 0u);
}

TEST(frag_reasm, too_many_pieces_abandon_the_datagram)
{
    frag::reasm_table t(8, 1000);
    frag::piece_list out;
    drop_reason why{};
    frag::frag_key k;
    k.family = 6;
    for (uint16_t i = 0; i < frag::max_pieces; ++i) {
        ASSERT_EQ(t.add(k, {handle(i), 62, static_cast<uint16_t>(i * 8), 8}, true, 1, out, why), frag::add_result::held);
    }
    ASSERT_EQ(t.add(k, {handle(99), 62, frag::max_pieces * 8, 8}, false, 1, out, why), frag::add_result::dropped);
    EXPECT_EQ(why, drop_reason::frag_malformed);
    EXPECT_EQ(out.n, frag::max_pieces + 1);
    EXPECT_EQ(t.in_use(), 0u);
}
