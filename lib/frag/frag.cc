#include "frag.hh"

#include <cstring>

#include "common/byte_order.hh"

namespace msecgw::frag {

namespace {

constexpr uint16_t ipv4_df = 0x4000;
constexpr uint16_t ipv4_mf = 0x2000;
constexpr uint16_t ipv4_off_mask = 0x1fff;
constexpr uint8_t next_header_fragment = 44;
constexpr uint32_t max_datagram = 0xffff;

void set_ipv4_checksum(uint8_t* ip, uint16_t hdr_len)
{
    ip[10] = ip[11] = 0;
    store_be16(ip + 10, packet::ipv4_header_checksum(ip, hdr_len));
}

} // namespace

split_plan plan_split(uint8_t family, uint16_t hdr_len, uint32_t ip_len, uint16_t mtu)
{
    split_plan p{hdr_len, static_cast<uint16_t>(family == 6 ? ipv6_frag_hdr_len : 0), 0, 0};
    const uint32_t per_frag = hdr_len + p.frag_hdr;
    if (mtu < per_frag + 8 || ip_len <= hdr_len) {
        return p;
    }
    p.chunk = static_cast<uint16_t>((mtu - per_frag) & ~7u);
    const uint32_t payload = ip_len - hdr_len;
    p.count = static_cast<uint16_t>((payload + p.chunk - 1) / p.chunk);
    return p;
}

uint16_t chunk_len(const split_plan& p, uint32_t ip_len, uint16_t k)
{
    const uint32_t payload = ip_len - p.hdr_len;
    const uint32_t start = uint32_t{k} * p.chunk;
    return static_cast<uint16_t>(payload - start < p.chunk ? payload - start : p.chunk);
}

void write_fragment_header(uint8_t* dst, const uint8_t* whole, uint8_t family, const split_plan& p, uint32_t ip_len,
                           uint16_t k, uint32_t id, bool csum_offload)
{
    if (dst != whole) {
        std::memmove(dst, whole, p.hdr_len);
    }
    const uint16_t len = chunk_len(p, ip_len, k);
    const uint32_t offset = uint32_t{k} * p.chunk;
    const bool more = k + 1 < p.count;
    if (family == 4) {
        store_be16(dst + 2, p.hdr_len + len);
        store_be16(dst + 6, (offset / 8) | (more ? ipv4_mf : 0)); // DF cleared: see the header comment
        if (csum_offload) {
            dst[10] = dst[11] = 0;
        } else {
            set_ipv4_checksum(dst, p.hdr_len);
        }
        return;
    }
    const uint8_t next = dst[6];
    uint8_t* fh = dst + p.hdr_len;
    store_be16(dst + 4, p.hdr_len - 40 + ipv6_frag_hdr_len + len);
    dst[6] = next_header_fragment;
    fh[0] = next;
    fh[1] = 0;
    store_be16(fh + 2, offset | (more ? 1 : 0));
    store_be32(fh + 4, id);
}

bool read_fragment(const uint8_t* ip, const packet::pkt_meta& meta, frag_info& fi)
{
    if (meta.family == 4) {
        const uint16_t f = load_be16(ip + 6);
        fi.id = load_be16(ip + 4);
        fi.offset = static_cast<uint16_t>((f & ipv4_off_mask) * 8);
        fi.more = (f & ipv4_mf) != 0;
        fi.data_off = meta.l3_hdr_len;
    } else {
        const uint8_t* fh = ip + meta.frag_hdr;
        fi.id = load_be32(fh + 4);
        fi.offset = static_cast<uint16_t>(load_be16(fh + 2) & 0xfff8);
        fi.more = (fh[3] & 1) != 0;
        fi.data_off = static_cast<uint16_t>(meta.frag_hdr + ipv6_frag_hdr_len);
    }
    if (meta.ip_len <= fi.data_off) {
        return false;
    }
    fi.data_len = static_cast<uint16_t>(meta.ip_len - fi.data_off);
    if (fi.more && (fi.data_len & 7) != 0) {
        return false;
    }
    const uint32_t unfrag = meta.family == 4 ? fi.data_off : meta.frag_hdr;
    return unfrag + fi.offset + fi.data_len <= max_datagram;
}

void write_reassembled_header(uint8_t* ip, const packet::pkt_meta& meta, uint32_t data_len)
{
    if (meta.family == 4) {
        store_be16(ip + 2, meta.l3_hdr_len + data_len);
        store_be16(ip + 6, load_be16(ip + 6) & ipv4_df);
        set_ipv4_checksum(ip, meta.l3_hdr_len);
        return;
    }
    ip[meta.frag_prev] = ip[meta.frag_hdr];
    store_be16(ip + 4, meta.frag_hdr - 40 + data_len);
}

} // namespace msecgw::frag
