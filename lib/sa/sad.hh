#pragma once
/// Inbound SA database lookup (RFC 5374 §5): longest match on SPI + outer destination + outer
/// source, then SPI + destination, then SPI alone. Built on the control core, immutable after,
/// read by any number of workers (no allocation, no locks in lookup).

#include <cstdint>
#include <vector>

#include "config/config.hh"

namespace msecgw::sa {

/// One inbound SA as the SAD sees it: its selectors and the caller's index for it.
struct sad_entry {
    uint32_t spi = 0;
    config::ip_prefix dst; ///< any = not a selector
    config::ip_prefix src;
    uint32_t index = 0;    ///< what lookup returns (e.g. position in the SA runtime array)
};

class sad {
public:
    static constexpr uint32_t not_found = UINT32_MAX;

    sad() = default;
    /// Control core. Entries with equal SPI, dst and src are the caller's error (config checks).
    explicit sad(std::vector<sad_entry> entries);

    /// The index of the most specific SA for (spi, outer dst, outer src) of `family` (4 or 6;
    /// addresses in network byte order, 4 or 16 bytes), or not_found.
    uint32_t lookup(uint32_t spi, uint8_t family, const uint8_t* dst, const uint8_t* src) const;

    std::size_t size() const { return _entries.size(); }

private:
    struct bucket {
        uint32_t spi;
        uint32_t first; ///< into _entries (sorted by spi, then specificity)
        uint32_t count; ///< 0 = empty bucket
    };
    std::vector<sad_entry> _entries;
    std::vector<bucket> _buckets; ///< open addressing, power-of-two size
    uint32_t _mask = 0;
};

/// True when `addr` (family 4 or 6) lies in prefix `p` (`any` matches every address).
bool prefix_contains(const config::ip_prefix& p, uint8_t family, const uint8_t* addr);

} // namespace msecgw::sa
