#pragma once
// Internal: the byte layout rte_acl searches. Built per packet from pkt_meta in network byte
// order; the first field must be one byte and the rest come in 4-byte groups (rte_acl.h).

#include <cstddef>
#include <cstdint>

namespace msecgw::policy::detail {

struct acl_key_v4 {
    uint8_t proto;
    uint8_t pad0[3];
    uint32_t src;
    uint32_t dst;
    uint16_t sport;
    uint16_t dport;
    uint16_t vlan;
    uint16_t pad1;
};
static_assert(sizeof(acl_key_v4) == 20);

struct acl_key_v6 {
    uint8_t proto;
    uint8_t pad0[3];
    uint32_t src[4];
    uint32_t dst[4];
    uint16_t sport;
    uint16_t dport;
    uint16_t vlan;
    uint16_t pad1;
};
static_assert(sizeof(acl_key_v6) == 44);

} // namespace msecgw::policy::detail
