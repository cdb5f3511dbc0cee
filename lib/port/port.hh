#pragma once
/// DPDK port bring-up from a drivers_cfg/ profile. Control core only.

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.hh"
#include "config/config.hh"

struct rte_mempool;

namespace msecgw::port {

/// Per-driver settings from `drivers_cfg/<driver>.yaml` (or `default.yaml`).
struct profile {
    std::string file;                   ///< where it came from
    uint16_t rx_desc = 1024;
    uint16_t tx_desc = 1024;
    std::vector<std::string> rx_offloads; ///< names: ipv4_cksum, udp_cksum, tcp_cksum, vlan_strip…
    std::vector<std::string> tx_offloads; ///< names: ipv4_cksum, udp_cksum, multi_segs, mbuf_fast_free…
    bool rss = true;                    ///< hash on the source address when the port has queues > 1
};

/// Loads the profile for `driver` (e.g. "net_pcap") from `dir`, falling back to default.yaml.
result<profile> load_profile(const std::string& dir, const std::string& driver);

/// A configured, started port as the data plane sees it.
struct port_state {
    uint16_t port_id = 0;
    config::port_side side = config::port_side::clear;
    uint16_t mtu = 1500;
    uint16_t nb_queues = 1;
    uint16_t peer = 0;            ///< where packets received here leave
    uint16_t region = 0;          ///< config::port_cfg::region
    bool rx_ipv4_cksum = false;   ///< the NIC verifies IPv4 header checksums
    bool tx_ipv4_cksum = false;   ///< the NIC computes IPv4 header checksums
    std::string driver;
    std::vector<std::string> offloads_skipped; ///< asked by the profile, not offered by the PMD
};

/// Number of queues every port can offer (min of max rx/tx queues over `ports`), at most `want`.
result<uint16_t> common_queue_count(const std::vector<config::port_cfg>& ports, uint16_t want);

/// Configures and starts one port with `nb_queues` rx/tx queue pairs.
result<port_state> start_port(const config::port_cfg& cfg, const std::string& profile_dir,
                              uint16_t nb_queues, rte_mempool* pool);

/// Pairs ports as config::port_pairs does (k-th clear <-> k-th protected, then protected in twos).
result<void> pair_ports(std::vector<port_state>& ports);

/// Stops and closes a port (flushes PMD output such as net_pcap's tx file).
void stop_port(uint16_t port_id);

} // namespace msecgw::port
