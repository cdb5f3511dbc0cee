#pragma once
/// Per-lcore cache of classification results in front of the ACL: multicast carries few flows
/// (sender, group, ports, VLAN), so most packets repeat a recent lookup. Direct-mapped, exact
/// match on the whole classification key, tagged with the policy table it came from, so a new
/// RCU snapshot (a new table) never sees stale entries. One owner lcore; no allocation after
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
    /// The fields the policy matches on, packed; equal keys classify equally.
    struct key {
        std::array<uint8_t, 16> src;
        std::array<uint8_t, 16> dst;
        uint16_t sport, dport, vlan;
        uint8_t proto, family;
        bool operator==(const key&) const = default;
    };
    static_assert(sizeof(key) == 40);

    struct entry {
        key k;
        uint64_t owner = 0; ///< table::id() of the table that answered
        rule_id rule = no_match;
    };

    static key make_key(const packet::pkt_meta& m, const uint8_t* frame);
    static uint32_t hash(const key& k);

    std::array<entry, slots> _entries{};
    uint64_t _hits = 0;
    uint64_t _misses = 0;
};

} // namespace msecgw::policy
