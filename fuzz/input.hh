#pragma once
// Splits a fuzz input into records: each a big-endian u16 length and that many bytes (the last
// one cut short by the end of the input). Lets one input carry a burst of packets.

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace msecgw::fuzz {

inline std::vector<std::span<const uint8_t>> split_records(const uint8_t* data, std::size_t size, std::size_t max)
{
    std::vector<std::span<const uint8_t>> out;
    std::size_t at = 0;
    while (at + 2 <= size && out.size() < max) {
        std::size_t len = std::size_t{data[at]} << 8 | data[at + 1];
        at += 2;
        len = len < size - at ? len : size - at;
        out.emplace_back(data + at, len);
        at += len;
    }
    return out;
}

} // namespace msecgw::fuzz
