#pragma once
/// Internal to lib/store: the v1 text format of an IV store file (documented in store.hh).
/// Pure functions, no I/O, so the parser can be tested and fuzzed on its own.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hh"

namespace msecgw::store::detail {

struct file_state {
    std::string sa_id;
    uint64_t limit = 0;
    std::vector<uint64_t> high_water; ///< index = lcore index
};

/// Whether `id` may name an SA: 1..128 characters from [A-Za-z0-9._-].
bool valid_sa_id(std::string_view id);

/// The complete file content, checksum line included.
std::string serialize(const file_state& s);

/// Parses and validates file content. On failure the error (errc::io) says what is wrong and
/// where ("line 4: ..."), without the file name: the caller prefixes it.
result<file_state> parse(std::string_view text);

} // namespace msecgw::store::detail
