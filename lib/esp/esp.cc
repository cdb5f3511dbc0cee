#include "esp.hh"

#include <bit>
#include <cstring>

#include "common/byte_order.hh"
#include "packet/packet.hh"

namespace msecgw::esp {

namespace {

constexpr uint8_t proto_esp = 50;
constexpr uint8_t ecn_mask = 0x03;
constexpr uint8_t ecn_ce = 0x03;

} // namespace

outb_layout layout_for(uint8_t family, uint16_t inner_len)
{
    outb_layout l{};
    l.outer_len = family == 4 ? ipv4_hdr_len : ipv6_hdr_len;
    l.head_len = static_cast<uint16_t>(l.outer_len + esp_hdr_len + iv_len);
    l.pad_len = static_cast<uint8_t>((4 - (inner_len + 2) % 4) % 4);
    l.cipher_len = static_cast<uint16_t>(inner_len + l.pad_len + 2);
    l.tail_len = static_cast<uint16_t>(l.pad_len + 2 + icv_len);
    l.outer_total = static_cast<uint32_t>(l.head_len) + inner_len + l.tail_len;
    return l;
}

static_assert(std::endian::native == std::endian::little, "write_outer_v4 builds the header as native words");

void write_outer_v4(uint8_t* out, const uint8_t* inner, uint32_t outer_total, uint16_t ip_id, bool csum_offload)
{
    // Built as three native words and stored once: byte stores followed by the checksum's wide
    // loads would stall store forwarding on every packet.
    uint32_t addr_src, addr_dst;
    std::memcpy(&addr_src, inner + 12, 4);
    std::memcpy(&addr_dst, inner + 16, 4);
    const uint64_t w0 = 0x45u | (uint64_t{inner[1]} << 8) | (uint64_t{(outer_total >> 8) & 0xffu} << 16) |
                        (uint64_t{outer_total & 0xffu} << 24) | (uint64_t{static_cast<uint8_t>(ip_id >> 8)} << 32) |
                        (uint64_t{static_cast<uint8_t>(ip_id)} << 40) |
                        (uint64_t{static_cast<uint8_t>(inner[6] & 0x40)} << 48); // DF only, never MF/offset
    uint64_t w1 = uint64_t{inner[8]} | (uint64_t{proto_esp} << 8) | (uint64_t{addr_src} << 32); // TTL, ESP
    if (!csum_offload) {
        const uint16_t c = packet::checksum_fold((w0 & 0xffffffffu) + (w0 >> 32) + (w1 & 0xffffffffu) + (w1 >> 32) +
                                                 addr_dst);
        w1 |= uint64_t{static_cast<uint16_t>((c >> 8) | (c << 8))} << 16;
    }
    std::memcpy(out, &w0, 8);
    std::memcpy(out + 8, &w1, 8);
    std::memcpy(out + 16, &addr_dst, 4);
}

void write_outer_v6(uint8_t* out, const uint8_t* inner, uint32_t outer_total)
{
    std::memcpy(out, inner, 4);                          // version, traffic class, flow label
    store_be16(out + 4, static_cast<uint16_t>(outer_total - ipv6_hdr_len));
    out[6] = proto_esp;
    out[7] = inner[7];                                   // hop limit
    std::memcpy(out + 8, inner + 8, 32);                 // src, dst
}

void write_esp_header(uint8_t* p, uint32_t spi, uint32_t seq, uint64_t iv)
{
    store_be32(p, spi);
    store_be32(p + 4, seq);
    store_be32(p + 8, static_cast<uint32_t>(iv >> 32));
    store_be32(p + 12, static_cast<uint32_t>(iv));
}

void write_trailer(uint8_t* p, uint8_t pad_len, uint8_t next_header)
{
    for (uint8_t i = 0; i < pad_len; ++i) {
        p[i] = static_cast<uint8_t>(i + 1);
    }
    p[pad_len] = pad_len;
    p[pad_len + 1] = next_header;
}

bool read_inb_header(const uint8_t* ip, uint16_t outer_len, uint32_t ip_len, inb_header& h)
{
    const uint32_t min_len = uint32_t{outer_len} + esp_hdr_len + iv_len + 4 + icv_len;
    if (ip_len < min_len) {
        return false;
    }
    const uint32_t cipher_len = ip_len - outer_len - esp_hdr_len - iv_len - icv_len;
    if (cipher_len % 4 != 0 || cipher_len > 0xffff) {
        return false;
    }
    h.spi = load_be32(ip + outer_len);
    h.seq = load_be32(ip + outer_len + 4);
    h.esp_off = outer_len;
    h.cipher_len = static_cast<uint16_t>(cipher_len);
    return true;
}

uint16_t check_trailer(const uint8_t* plain, uint16_t cipher_len)
{
    if (cipher_len < 2 + ipv4_hdr_len) {
        return 0;
    }
    const uint8_t pad_len = plain[cipher_len - 2];
    const uint8_t nh = plain[cipher_len - 1];
    if (uint32_t{pad_len} + 2 + ipv4_hdr_len > cipher_len) {
        return 0;
    }
    const auto inner_len = static_cast<uint16_t>(cipher_len - 2 - pad_len);
    uint8_t diff = 0; // check every pad byte; padding is not secret, but keep the loop simple
    for (uint8_t i = 0; i < pad_len; ++i) {
        diff |= static_cast<uint8_t>(plain[inner_len + i] ^ (i + 1));
    }
    const uint8_t version = plain[0] >> 4;
    const bool v4 = nh == next_header_ipv4 && version == 4 && load_be16(plain + 2) == inner_len;
    const bool v6 = nh == next_header_ipv6 && version == 6 && inner_len >= ipv6_hdr_len &&
                    load_be16(plain + 4) + uint32_t{ipv6_hdr_len} == inner_len;
    return diff == 0 && (v4 || v6) ? inner_len : 0;
}

bool addresses_preserved(const uint8_t* outer, const uint8_t* inner, uint8_t family)
{
    if ((inner[0] >> 4) != family) {
        return false;
    }
    return family == 4 ? std::memcmp(outer + 12, inner + 12, 8) == 0
                       : std::memcmp(outer + 8, inner + 8, 32) == 0;
}

bool ecn_decapsulate(uint8_t* inner, uint8_t family, uint8_t outer_ecn)
{
    // RFC 6040 §4.2 (Figure 4): Not-ECT inner stays Not-ECT unless the outer is CE (drop);
    // ECT(0) inner takes an outer ECT(1) or CE; ECT(1) inner takes an outer CE; CE stays CE.
    constexpr uint8_t not_ect = 0, ect1 = 1, ect0 = 2;
    const uint8_t outer = outer_ecn & ecn_mask;
    const uint8_t in = family == 4 ? (inner[1] & ecn_mask) : ((load_be16(inner) >> 4) & ecn_mask);
    if (in == not_ect) {
        return outer != ecn_ce;
    }
    const bool raise = outer == ecn_ce || (in == ect0 && outer == ect1);
    if (!raise || in == outer) {
        return true;
    }
    if (family == 4) {
        inner[1] = static_cast<uint8_t>((inner[1] & ~ecn_mask) | outer);
        store_be16(inner + 10, 0);
        store_be16(inner + 10, packet::ipv4_header_checksum(inner, static_cast<uint32_t>((inner[0] & 0x0f) * 4)));
    } else {
        inner[1] = static_cast<uint8_t>((inner[1] & ~(ecn_mask << 4)) | outer << 4);
    }
    return true;
}

} // namespace msecgw::esp
