// ESP framing: layout arithmetic, header fields, trailer checks, address preservation, RFC 6040.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "esp/esp.hh"
#include "packet/packet.hh"

using namespace msecgw;

namespace {

std::vector<uint8_t> ipv4_packet(uint16_t total, uint8_t tos = 0xb8, uint8_t ttl = 9, bool df = true)
{
    std::vector<uint8_t> p(total, 0xab);
    const uint8_t hdr[20] = {0x45, tos, uint8_t(total >> 8), uint8_t(total), 0x12, 0x34, uint8_t(df ? 0x40 : 0), 0,
                             ttl, 17, 0, 0, 10, 1, 0, 7, 239, 1, 2, 3};
    std::copy(hdr, hdr + 20, p.begin());
    const uint16_t c = packet::ipv4_header_checksum(p.data(), 20);
    p[10] = uint8_t(c >> 8);
    p[11] = uint8_t(c);
    return p;
}

std::vector<uint8_t> ipv6_packet(uint16_t total, uint8_t tc = 0x2e)
{
    std::vector<uint8_t> p(total, 0xcd);
    p[0] = uint8_t(0x60 | tc >> 4);
    p[1] = uint8_t((tc & 0x0f) << 4 | 0x0a);
    p[2] = 0xbc;
    p[3] = 0xde;
    p[4] = uint8_t((total - 40) >> 8);
    p[5] = uint8_t(total - 40);
    p[6] = 17;
    p[7] = 5;
    for (int i = 0; i < 16; ++i) {
        p[8 + i] = uint8_t(0x20 + i);
        p[24 + i] = uint8_t(i == 0 ? 0xff : 0x10 + i);
    }
    return p;
}

} // namespace

TEST(esp, layout_pads_to_four_bytes_and_counts_every_byte)
{
    for (uint16_t len = 20; len < 200; ++len) {
        const auto l = esp::layout_for(4, len);
        EXPECT_EQ((len + l.pad_len + 2) % 4, 0) << len;
        EXPECT_LT(l.pad_len, 4);
        EXPECT_EQ(l.cipher_len, len + l.pad_len + 2);
        EXPECT_EQ(l.head_len, 20 + 8 + 8);
        EXPECT_EQ(l.outer_total, 36u + len + l.pad_len + 2 + 16);
    }
    EXPECT_EQ(esp::layout_for(6, 40).head_len, 56);
    EXPECT_EQ(esp::layout_for(4, 62).pad_len, 0); // the RFC 4106 vector: 62 + 2 = 64
}

TEST(esp, outer_ipv4_copies_addresses_dscp_ecn_ttl_df_and_checksums)
{
    const auto inner = ipv4_packet(100, 0xb9, 7, true);
    uint8_t out[20];
    esp::write_outer_v4(out, inner.data(), 152, 0x0102, false);
    EXPECT_EQ(out[0], 0x45);
    EXPECT_EQ(out[1], 0xb9);
    EXPECT_EQ(out[2] << 8 | out[3], 152);
    EXPECT_EQ(out[4] << 8 | out[5], 0x0102);
    EXPECT_EQ(out[6], 0x40);
    EXPECT_EQ(out[8], 7);
    EXPECT_EQ(out[9], 50);
    EXPECT_EQ(0, std::memcmp(out + 12, inner.data() + 12, 8));
    EXPECT_EQ(packet::ipv4_header_checksum(out, 20), 0);
    EXPECT_TRUE(esp::addresses_preserved(out, inner.data(), 4));
    const auto no_df = ipv4_packet(100, 0, 7, false);
    esp::write_outer_v4(out, no_df.data(), 152, 1, true);
    EXPECT_EQ(out[6], 0);
    EXPECT_EQ(out[10] << 8 | out[11], 0); // left to the NIC
}

TEST(esp, outer_ipv6_copies_traffic_class_flow_label_hop_limit)
{
    const auto inner = ipv6_packet(120);
    uint8_t out[40];
    esp::write_outer_v6(out, inner.data(), 40 + 16 + 120 + 2 + 2 + 16);
    EXPECT_EQ(0, std::memcmp(out, inner.data(), 4));
    EXPECT_EQ(out[4] << 8 | out[5], 16 + 120 + 2 + 2 + 16);
    EXPECT_EQ(out[6], 50);
    EXPECT_EQ(out[7], 5);
    EXPECT_TRUE(esp::addresses_preserved(out, inner.data(), 6));
    out[39] ^= 1;
    EXPECT_FALSE(esp::addresses_preserved(out, inner.data(), 6));
}

TEST(esp, header_and_trailer_round_trip)
{
    uint8_t h[16];
    esp::write_esp_header(h, 0xa5f8, 1, 0xfacedbaddecaf888ULL);
    const uint8_t want[16] = {0, 0, 0xa5, 0xf8, 0, 0, 0, 1, 0xfa, 0xce, 0xdb, 0xad, 0xde, 0xca, 0xf8, 0x88};
    EXPECT_EQ(0, std::memcmp(h, want, 16));
    for (uint16_t len : {20, 21, 22, 23, 100, 1500}) {
        auto pkt = ipv4_packet(len);
        const auto l = esp::layout_for(4, len);
        pkt.resize(l.cipher_len + esp::icv_len); // write_trailer stores 8 bytes; the ICV follows
        esp::write_trailer(pkt.data() + len, l.pad_len, esp::next_header_ipv4);
        EXPECT_EQ(esp::check_trailer(pkt.data(), l.cipher_len), len);
        if (l.pad_len > 0) {
            pkt[len] ^= 0xff; // padding must be 1,2,3,…
            EXPECT_EQ(esp::check_trailer(pkt.data(), l.cipher_len), 0);
            pkt[len] ^= 0xff;
        }
        pkt[l.cipher_len - 1] = esp::next_header_ipv6; // next header disagrees with version
        EXPECT_EQ(esp::check_trailer(pkt.data(), l.cipher_len), 0);
    }
    auto v6 = ipv6_packet(61);
    const auto l6 = esp::layout_for(6, 61);
    v6.resize(l6.cipher_len + esp::icv_len);
    esp::write_trailer(v6.data() + 61, l6.pad_len, esp::next_header_ipv6);
    EXPECT_EQ(esp::check_trailer(v6.data(), l6.cipher_len), 61);
}

TEST(esp, inbound_header_rejects_short_and_misaligned_packets)
{
    std::vector<uint8_t> ip(20 + 8 + 8 + 24 + 16, 0);
    ip[20 + 3] = 0x42;
    ip[20 + 7] = 9;
    esp::inb_header h{};
    ASSERT_TRUE(esp::read_inb_header(ip.data(), 20, uint32_t(ip.size()), h));
    EXPECT_EQ(h.spi, 0x42u);
    EXPECT_EQ(h.seq, 9u);
    EXPECT_EQ(h.cipher_len, 24);
    EXPECT_FALSE(esp::read_inb_header(ip.data(), 20, uint32_t(ip.size()) - 1, h));
    EXPECT_FALSE(esp::read_inb_header(ip.data(), 20, 20 + 8 + 8 + 16, h));
}

TEST(esp, ecn_decapsulation_follows_rfc6040)
{
    auto ect = ipv4_packet(60, 0x02); // ECT(0)
    EXPECT_TRUE(esp::ecn_decapsulate(ect.data(), 4, 0x02));
    EXPECT_EQ(ect[1] & 3, 2);           // outer not CE: unchanged
    EXPECT_TRUE(esp::ecn_decapsulate(ect.data(), 4, 0x03));
    EXPECT_EQ(ect[1] & 3, 3);           // CE propagated
    EXPECT_EQ(packet::ipv4_header_checksum(ect.data(), 20), 0);
    auto not_ect = ipv4_packet(60, 0x00);
    EXPECT_FALSE(esp::ecn_decapsulate(not_ect.data(), 4, 0x03));
    auto v6 = ipv6_packet(60, 0x01);    // ECT(1)
    EXPECT_TRUE(esp::ecn_decapsulate(v6.data(), 6, 0x03));
    EXPECT_EQ((v6[0] << 8 | v6[1]) >> 4 & 3, 3);
    auto e0 = ipv4_packet(60, 0x02);    // ECT(0) inner under ECT(1) outer becomes ECT(1)
    EXPECT_TRUE(esp::ecn_decapsulate(e0.data(), 4, 0x01));
    EXPECT_EQ(e0[1] & 3, 1);
    EXPECT_EQ(packet::ipv4_header_checksum(e0.data(), 20), 0);
    auto e1 = ipv4_packet(60, 0x01);    // ECT(1) inner under ECT(0) outer stays ECT(1)
    EXPECT_TRUE(esp::ecn_decapsulate(e1.data(), 4, 0x02));
    EXPECT_EQ(e1[1] & 3, 1);
    auto v6e0 = ipv6_packet(60, 0x02);
    EXPECT_TRUE(esp::ecn_decapsulate(v6e0.data(), 6, 0x01));
    EXPECT_EQ((v6e0[0] << 8 | v6e0[1]) >> 4 & 3, 1);
}
