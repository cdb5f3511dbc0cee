#pragma once
/// Per-lcore cache of classification results in front of the ACL: multicast carries few flows
/// (sender, group, ports, VLAN), so most packets repeat a recent lookup. Direct-mapped, exact
/// match on the whole classification key, tagged with the policy table it came from, so a new
/// RCU snapshot (a new table) never sees stale entries. The table is hashed too: a boundary lcore
/// classifies each packet in two tables (the rx region's inbound, the tx region's outbound), and
/// their entries for one flow must not evict each other from one slot. One owner lcore; no allocation after
/// construction; no atomics.

#include <array>
#include <cstdint>
#include <cstring>
#include <nmmintrin.h>

#include "policy.hh"

namespace msecgw::policy {

class flow_cache {
public:
    static constexpr uint32_t slots = 4096; ///< power of two

    /// Classifies like table::classify, answering repeats from the cache and sending only the
    /// misses to the ACL (in one call).
    void classify(const table& t, const packet::pkt_meta* metas, const uint8_t* const* frames, uint16_t n,
                  rule_id* out);

    uint64_t hits() const { return _hits; }
    uint64_t misses() const { return _misses; }

private:
    /// The fields the policy matches on, packed in five words built in registers (no byte
    /// stores then wide loads: that stalls store forwarding); equal keys classify equally.
    /// w[0..3]: IPv6 src, dst (IPv4: src | dst << 32 in w[0], rest 0); w[4]: ports, VLAN,
    /// protocol, family.
    struct key {
        std::array<uint64_t, 5> w;
        bool operator==(const key& o) const
        {
            return ((w[0] ^ o.w[0]) | (w[1] ^ o.w[1]) | (w[2] ^ o.w[2]) | (w[3] ^ o.w[3]) | (w[4] ^ o.w[4])) == 0;
        }
    };
    static_assert(sizeof(key) == 40);

    struct entry {
        key k;
        uint64_t owner = 0; ///< table::id() of the table that answered
        rule_id rule = no_match;
    };

    static key make_key(const packet::pkt_meta& m, const uint8_t* frame);
    static uint32_t hash(const key& k, uint64_t table_id);

    std::array<entry, slots> _entries{};
    uint64_t _hits = 0;
    uint64_t _misses = 0;
};

} // namespace msecgw::policy
