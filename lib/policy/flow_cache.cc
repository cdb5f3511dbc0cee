#include "flow_cache.hh"

namespace msecgw::policy {

namespace {

uint64_t load64(const uint8_t* p)
{
    uint64_t v;
    std::memcpy(&v, p, 8);
    return v;
}

uint32_t load32(const uint8_t* p)
{
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
}

} // namespace

flow_cache::key flow_cache::make_key(const packet::pkt_meta& m, const uint8_t* frame)
{
    key k;
    const uint8_t* ip = frame + m.l3_off;
    if (m.family == 4) {
        k.w = {load32(ip + 12) | (uint64_t{load32(ip + 16)} << 32), 0, 0, 0, 0};
    } else {
        k.w = {load64(ip + 8), load64(ip + 16), load64(ip + 24), load64(ip + 32), 0};
    }
    k.w[4] = uint64_t{m.sport} | (uint64_t{m.dport} << 16) | (uint64_t{m.vlan} << 32) | (uint64_t{m.proto} << 48) |
             (uint64_t{m.family} << 56);
    return k;
}

uint32_t flow_cache::hash(const key& k, uint64_t table_id)
{
    uint64_t h = table_id;
    for (uint64_t x : k.w) {
        h = _mm_crc32_u64(h, x);
    }
    return static_cast<uint32_t>(h) & (slots - 1);
}

void flow_cache::classify(const table& t, const packet::pkt_meta* metas, const uint8_t* const* frames, uint16_t n,
                          rule_id* out)
{
    std::array<packet::pkt_meta, max_burst> miss_meta;
    std::array<const uint8_t*, max_burst> miss_frame;
    std::array<uint16_t, max_burst> miss_pkt;
    std::array<uint32_t, max_burst> miss_slot;
    std::array<key, max_burst> miss_key;
    uint16_t misses = 0;
    for (uint16_t i = 0; i < n; ++i) {
        const key k = make_key(metas[i], frames[i]);
        const uint32_t slot = hash(k, t.id());
        const entry& e = _entries[slot];
        if (e.owner == t.id() && e.k == k) {
            out[i] = e.rule;
            continue;
        }
        miss_meta[misses] = metas[i];
        miss_frame[misses] = frames[i];
        miss_pkt[misses] = i;
        miss_slot[misses] = slot;
        miss_key[misses++] = k;
    }
    _hits += n - misses;
    _misses += misses;
    if (misses == 0) {
        return;
    }
    std::array<rule_id, max_burst> rules;
    t.classify(miss_meta.data(), miss_frame.data(), misses, rules.data());
    for (uint16_t j = 0; j < misses; ++j) {
        out[miss_pkt[j]] = rules[j];
        _entries[miss_slot[j]] = entry{miss_key[j], t.id(), rules[j]};
    }
}

} // namespace msecgw::policy
