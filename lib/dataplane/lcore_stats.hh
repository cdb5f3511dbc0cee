#pragma once
/// Per-lcore counters: plain integers written by one worker, read (racily but tear-free on x86-64)
/// by the control core when it reports. No atomics on the data path.

#include <array>
#include <cstdint>

#include "common/drop_reason.hh"

namespace msecgw::dataplane {

inline constexpr uint16_t max_ports = 8;

struct alignas(64) lcore_stats {
    std::array<uint64_t, max_ports> rx_pkts{};  ///< by rx port id
    std::array<uint64_t, max_ports> rx_bytes{};
    std::array<uint64_t, max_ports> tx_pkts{};  ///< by tx port id
    std::array<uint64_t, max_ports> tx_bytes{};
    uint64_t bypassed = 0;                      ///< forwarded unchanged by a BYPASS policy
    uint64_t sealed = 0;                        ///< clear packets sent out as ESP
    uint64_t opened = 0;                        ///< ESP packets decrypted, checked and forwarded
    uint64_t fragmented = 0;                    ///< ESP packets split to fit the egress MTU
    uint64_t fragments_out = 0;                 ///< fragments they became
    uint64_t reassembled = 0;                   ///< ESP datagrams rebuilt from fragments
    uint64_t fragments_in = 0;                  ///< fragments that went into them
    uint64_t auth_tagged = 0;                   ///< clear packets tagged for source authentication
    uint64_t auth_control_sent = 0;             ///< source-auth control messages made and sent (extra tx)
    uint64_t auth_released = 0;                 ///< tagged packets verified and forwarded
    uint64_t auth_control_used = 0;             ///< source-auth control messages a verifier used (not forwarded)
    uint64_t auth_held = 0;                     ///< packets a verifier holds now (gauge)
    std::array<uint64_t, drop_reason_count> drops{};
    uint64_t busy_polls = 0;                    ///< polls that received packets
    uint64_t idle_polls = 0;
    uint64_t busy_cycles = 0;                   ///< TSC cycles spent in polls that received packets
    uint64_t idle_cycles = 0;                   ///< TSC cycles spent in the other polls
};

} // namespace msecgw::dataplane
