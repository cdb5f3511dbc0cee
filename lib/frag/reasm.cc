#include "reasm.hh"

#include <cstring>
#include <random>

namespace msecgw::frag {

namespace {

uint64_t mix(uint64_t h, uint64_t w)
{
    h ^= w;
    h *= 0xff51afd7ed558ccdULL;
    return h ^ (h >> 33);
}

/// Seeded so that a sender cannot aim many datagrams at one set.
uint64_t hash_key(const frag_key& k, uint64_t seed)
{
    uint64_t h = mix(seed, (uint64_t{k.id} << 16) | (uint64_t{k.family} << 8) | k.proto);
    for (std::size_t i = 0; i < k.addrs.size(); i += 8) {
        uint64_t w = 0;
        std::memcpy(&w, k.addrs.data() + i, 8);
        h = mix(h, w);
    }
    return h;
}

uint64_t random_seed()
{
    std::random_device rd;
    return (uint64_t{rd()} << 32) | rd();
}

} // namespace

reasm_table::reasm_table(uint32_t datagrams, uint64_t timeout) : _timeout(timeout)
{
    uint32_t sets = 1;
    while (sets * ways < datagrams) {
        sets <<= 1;
    }
    _slots.resize(std::size_t{sets} * ways);
    _set_mask = sets - 1;
    _seed = random_seed();
}

void reasm_table::release(slot& s, piece_list& out)
{
    for (uint16_t i = 0; i < s.n; ++i) {
        out.p[out.n++] = s.pieces[i];
    }
    s.n = 0;
    --_in_use;
}

add_result reasm_table::drop_all(slot& s, const piece& f, piece_list& out, drop_reason& why, drop_reason r)
{
    out.n = 0;
    release(s, out);
    out.p[out.n++] = f;
    why = r;
    return add_result::dropped;
}

add_result reasm_table::add(const frag_key& k, const piece& f, bool more, uint64_t now, piece_list& out,
                            drop_reason& why)
{
    const std::size_t base = (hash_key(k, _seed) & _set_mask) * ways;
    slot* s = nullptr;
    slot* free_slot = nullptr;
    for (std::size_t w = 0; w < ways; ++w) {
        slot& c = _slots[base + w];
        if (c.n != 0 && c.key == k) {
            s = &c;
            break;
        }
        if (c.n == 0 && free_slot == nullptr) {
            free_slot = &c;
        }
    }
    if (s == nullptr) {
        if (free_slot == nullptr) {
            out.n = 0;
            out.p[out.n++] = f;
            why = drop_reason::frag_table_full;
            return add_result::dropped;
        }
        s = free_slot;
        s->key = k;
        s->first_seen = now;
        s->have = 0;
        s->total = 0;
        ++_in_use;
    }
    const uint32_t end = uint32_t{f.offset} + f.len;
    const uint32_t held_end = s->n == 0 ? 0 : uint32_t{s->pieces[s->n - 1].offset} + s->pieces[s->n - 1].len;
    if (!more ? (s->total != 0 && s->total != end) || held_end > end : s->total != 0 && end >= s->total) {
        return drop_all(*s, f, out, why, drop_reason::frag_malformed);
    }
    uint16_t i = 0;
    while (i < s->n && s->pieces[i].offset < f.offset) {
        ++i;
    }
    if (i < s->n && s->pieces[i].offset == f.offset && s->pieces[i].len == f.len) {
        out.n = 0;
        out.p[out.n++] = f; // exact duplicate: drop it alone, keep the datagram
        why = drop_reason::frag_overlap;
        return add_result::dropped;
    }
    const bool overlaps = (i > 0 && uint32_t{s->pieces[i - 1].offset} + s->pieces[i - 1].len > f.offset) ||
                          (i < s->n && end > s->pieces[i].offset);
    if (overlaps) {
        return drop_all(*s, f, out, why, drop_reason::frag_overlap);
    }
    if (s->n == max_pieces) {
        return drop_all(*s, f, out, why, drop_reason::frag_malformed);
    }
    for (uint16_t j = s->n; j > i; --j) {
        s->pieces[j] = s->pieces[j - 1];
    }
    s->pieces[i] = f;
    ++s->n;
    s->have += f.len;
    if (!more) {
        s->total = end;
    }
    if (s->total == 0 || s->have != s->total) {
        return add_result::held;
    }
    out.n = 0;
    release(*s, out);
    return add_result::complete;
}

bool reasm_table::expire_some(uint64_t now, uint32_t budget, piece_list& out)
{
    out.n = 0;
    if (_in_use == 0) {
        return false;
    }
    const auto size = static_cast<uint32_t>(_slots.size());
    for (uint32_t k = 0; k < budget; ++k) {
        slot& s = _slots[_cursor];
        _cursor = _cursor + 1 == size ? 0 : _cursor + 1;
        if (s.n != 0 && now - s.first_seen > _timeout) {
            release(s, out);
            return true;
        }
    }
    return false;
}

bool reasm_table::release_one(piece_list& out)
{
    out.n = 0;
    for (slot& s : _slots) {
        if (s.n != 0) {
            release(s, out);
            return true;
        }
    }
    return false;
}

} // namespace msecgw::frag
