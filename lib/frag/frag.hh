#pragma once
/// IP fragmentation of protected packets: outbound, an ESP packet larger than the protected port's
/// MTU is split after encryption (outer fragments); inbound, outer fragments are reassembled before
/// decryption. This header is the byte-level half: pure functions, no DPDK, usable in fuzzers.
/// The reassembly bookkeeping is in reasm.hh; the data plane moves the bytes between mbufs.
///
/// Outbound fragment k of an IPv4 packet:  [IPv4 header, offset = k*chunk/8, MF, DF clear][chunk k]
/// Outbound fragment k of an IPv6 packet:  [IPv6 header][fragment header: id, offset, M][chunk k]

#include <cstdint>

#include "packet/packet.hh"

namespace msecgw::frag {

inline constexpr uint16_t ipv6_frag_hdr_len = 8;

/// How one IP packet (a header without options or extension headers, then payload) is split.
struct split_plan {
    uint16_t hdr_len;   ///< IP header copied into every fragment: 20 or 40
    uint16_t frag_hdr;  ///< bytes added to every fragment: 0 (IPv4) or 8 (IPv6 fragment header)
    uint16_t chunk;     ///< payload bytes per fragment except the last; a multiple of 8
    uint16_t count;     ///< fragments; 0 when the MTU leaves no room for 8 payload bytes
};

/// Splits an IP packet of `ip_len` bytes of version `family` whose header is `hdr_len` bytes, so
/// that every fragment is at most `mtu` bytes.
split_plan plan_split(uint8_t family, uint16_t hdr_len, uint32_t ip_len, uint16_t mtu);

/// Payload bytes of fragment k.
uint16_t chunk_len(const split_plan& p, uint32_t ip_len, uint16_t k);

/// Writes the headers of fragment k (IP header, plus the fragment header for IPv6) at `dst` from
/// the whole packet's header `whole` (dst may equal whole). IPv4: total length, offset, MF, DF
/// cleared (we fragment the outer packet on purpose), checksum unless `csum_offload`. IPv6: payload
/// length, next header 44, then the fragment header carrying the original next header and `id`.
void write_fragment_header(uint8_t* dst, const uint8_t* whole, uint8_t family, const split_plan& p, uint32_t ip_len,
                           uint16_t k, uint32_t id, bool csum_offload);

/// What an IP fragment says about itself.
struct frag_info {
    uint32_t id;        ///< IPv4 identification (16 bits) or IPv6 fragment identification
    uint16_t offset;    ///< byte offset of this fragment's data in the fragmentable part
    uint16_t data_off;  ///< where its data starts, from the IP header
    uint16_t data_len;  ///< bytes of data
    bool more;          ///< MF / M flag: not the last fragment
};

/// Reads the fragment fields of a packet that `meta` (from packet::parse_frame) marks as a
/// fragment; `ip` points at its IP header. False when the fragment cannot be part of a valid
/// datagram: no data, or a non-last fragment whose length is not a multiple of 8, or data that
/// would end beyond 65535 bytes.
bool read_fragment(const uint8_t* ip, const packet::pkt_meta& meta, frag_info& fi);

/// Turns the header of the first fragment (at `ip`, `unfrag` bytes before the data) into the
/// header of the reassembled datagram of `data_len` data bytes. IPv4: total length, fragment
/// fields cleared (DF kept), checksum. IPv6: the fragment header is removed by the caller (it
/// moves the `meta.frag_hdr` bytes in front of it up by 8); this rewrites the next header that
/// named it (at `meta.frag_prev`, before the move) and the payload length.
void write_reassembled_header(uint8_t* ip, const packet::pkt_meta& meta, uint32_t data_len);

} // namespace msecgw::frag
