#include "sad.hh"

#include <algorithm>
#include <bit>
#include <tuple>

namespace msecgw::sa {

namespace {

uint32_t spi_hash(uint32_t spi)
{
    uint32_t h = spi * 0x9e3779b1u;
    return h ^ (h >> 16);
}

/// Specificity rank: SPI+dst+src > SPI+dst > SPI (RFC 5374 §5); longer prefixes first within a rank.
auto rank(const sad_entry& e)
{
    const int cls = !e.dst.is_any() && !e.src.is_any() ? 3 : !e.dst.is_any() ? 2 : !e.src.is_any() ? 1 : 0;
    return std::tuple{cls, e.dst.length, e.src.length};
}

} // namespace

bool prefix_contains(const config::ip_prefix& p, uint8_t family, const uint8_t* addr)
{
    if (p.is_any()) {
        return true;
    }
    if ((p.family == config::ip_family::v4) != (family == 4)) {
        return false;
    }
    const unsigned full = p.length / 8;
    for (unsigned i = 0; i < full; ++i) {
        if (p.addr[i] != addr[i]) {
            return false;
        }
    }
    const unsigned rest = p.length % 8;
    if (rest == 0) {
        return true;
    }
    const auto mask = static_cast<uint8_t>(0xff00 >> rest);
    return (p.addr[full] & mask) == (addr[full] & mask);
}

sad::sad(std::vector<sad_entry> entries) : _entries(std::move(entries))
{
    std::stable_sort(_entries.begin(), _entries.end(), [](const sad_entry& a, const sad_entry& b) {
        return a.spi != b.spi ? a.spi < b.spi : rank(a) > rank(b);
    });
    const auto n = static_cast<uint32_t>(_entries.size());
    _buckets.assign(std::bit_ceil(std::max<uint32_t>(4, 2 * n)), bucket{0, 0, 0});
    _mask = static_cast<uint32_t>(_buckets.size() - 1);
    for (uint32_t i = 0; i < n;) {
        uint32_t j = i;
        while (j < n && _entries[j].spi == _entries[i].spi) {
            ++j;
        }
        uint32_t b = spi_hash(_entries[i].spi) & _mask;
        while (_buckets[b].count != 0) {
            b = (b + 1) & _mask;
        }
        _buckets[b] = bucket{_entries[i].spi, i, j - i};
        i = j;
    }
}

uint32_t sad::lookup(uint32_t spi, uint8_t family, const uint8_t* dst, const uint8_t* src) const
{
    if (_entries.empty()) {
        return not_found;
    }
    for (uint32_t b = spi_hash(spi) & _mask;; b = (b + 1) & _mask) {
        const bucket& bk = _buckets[b];
        if (bk.count == 0) {
            return not_found;
        }
        if (bk.spi != spi) {
            continue;
        }
        for (uint32_t i = bk.first; i < bk.first + bk.count; ++i) {
            const sad_entry& e = _entries[i];
            if (prefix_contains(e.dst, family, dst) && prefix_contains(e.src, family, src)) {
                return e.index;
            }
        }
        return not_found;
    }
}

} // namespace msecgw::sa
