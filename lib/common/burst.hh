#pragma once
/// Burst sizes shared by every data-plane stage.

#include <cstdint>

namespace msecgw {

inline constexpr uint16_t max_burst = 64; ///< upper bound of every per-burst scratch array
inline constexpr uint16_t rx_burst = 32;  ///< packets asked of rx_burst per poll

} // namespace msecgw
