#include "esp.hh"

#include <cstring>

#include "common/byte_order.hh"
#include "packet/packet.hh"

namespace msecgw::esp {

namespace {

constexpr uint8_t ecn_mask = 0x03;
constexpr uint8_t ecn_ce = 0x03;

} // namespace

void write_outer_v6(uint8_t* out, const uint8_t* inner, uint32_t outer_total)
{
    std::memcpy(out, inner, 4);                          // version, traffic class, flow label
    store_be16(out + 4, static_cast<uint16_t>(outer_total - ipv6_hdr_len));
    out[6] = proto_esp;
    out[7] = inner[7];                                   // hop limit
    std::memcpy(out + 8, inner + 8, 32);                 // src, dst
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
