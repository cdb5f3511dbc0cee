#include "port.hh"

#include <rte_ethdev.h>

#include <algorithm>
#include <cctype>

namespace msecgw::port {

namespace {

std::string lower(std::string s)
{
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    return s;
}

/// Maps offload names ("ipv4_cksum") to DPDK bits through DPDK's own name tables, keeping only
/// what the PMD offers; names it lacks go to `skipped`.
template <class NameFn>
uint64_t offload_bits(const std::vector<std::string>& names, uint64_t capa, NameFn name_of,
                      const char* dir, std::vector<std::string>& skipped)
{
    uint64_t bits = 0;
    for (const auto& want : names) {
        uint64_t bit = 0;
        for (int b = 0; b < 64; ++b) {
            if (lower(name_of(uint64_t{1} << b)) == lower(want)) {
                bit = uint64_t{1} << b;
                break;
            }
        }
        if (bit != 0 && (capa & bit) != 0) {
            bits |= bit;
        } else {
            skipped.push_back(std::string(dir) + ":" + want);
        }
    }
    return bits;
}

std::string port_err(uint16_t port, const std::string& what, int rc)
{
    return "port " + std::to_string(port) + ": " + what + " failed: " + rte_strerror(-rc);
}

rte_eth_conf port_conf(const profile& prof, const rte_eth_dev_info& info, uint16_t nb_queues,
                       port_state& st)
{
    rte_eth_conf conf{};
    conf.rxmode.offloads = offload_bits(prof.rx_offloads, info.rx_offload_capa,
                                        rte_eth_dev_rx_offload_name, "rx", st.offloads_skipped);
    conf.txmode.offloads = offload_bits(prof.tx_offloads, info.tx_offload_capa,
                                        rte_eth_dev_tx_offload_name, "tx", st.offloads_skipped);
    st.rx_ipv4_cksum = (conf.rxmode.offloads & RTE_ETH_RX_OFFLOAD_IPV4_CKSUM) != 0;
    st.tx_ipv4_cksum = (conf.txmode.offloads & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM) != 0;
    if (nb_queues > 1 && prof.rss && info.flow_type_rss_offloads != 0) {
        // Invariant 2: every (SA, source) on one lcore, so hash on the source address only.
        conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
        conf.rx_adv_conf.rss_conf.rss_hf =
            (RTE_ETH_RSS_IP & info.flow_type_rss_offloads) | RTE_ETH_RSS_L3_SRC_ONLY;
    }
    return conf;
}

} // namespace

result<uint16_t> common_queue_count(const std::vector<config::port_cfg>& ports, uint16_t want)
{
    uint16_t n = want;
    for (const auto& p : ports) {
        if (!rte_eth_dev_is_valid_port(p.port)) {
            return error{errc::config_bad_value,
                         "port " + std::to_string(p.port) + " (config line " + std::to_string(p.line) +
                             ") does not exist: " + std::to_string(rte_eth_dev_count_avail()) +
                             " DPDK port(s) found (check -a/--vdev)"};
        }
        rte_eth_dev_info info{};
        if (int rc = rte_eth_dev_info_get(p.port, &info); rc != 0) {
            return error{errc::dpdk, port_err(p.port, "rte_eth_dev_info_get", rc)};
        }
        n = std::min<uint16_t>(n, std::min(info.max_rx_queues, info.max_tx_queues));
    }
    return std::max<uint16_t>(n, 1);
}

result<port_state> start_port(const config::port_cfg& cfg, const std::string& profile_dir,
                              uint16_t nb_queues, rte_mempool* pool)
{
    port_state st;
    st.port_id = cfg.port;
    st.side = cfg.side;
    st.region = cfg.region;
    st.mtu = cfg.mtu;
    st.nb_queues = nb_queues;
    rte_eth_dev_info info{};
    if (int rc = rte_eth_dev_info_get(cfg.port, &info); rc != 0) {
        return error{errc::dpdk, port_err(cfg.port, "rte_eth_dev_info_get", rc)};
    }
    st.driver = info.driver_name;
    auto prof = load_profile(profile_dir, st.driver);
    if (!prof) {
        return prof.err();
    }
    rte_eth_conf conf = port_conf(*prof, info, nb_queues, st);
    if (int rc = rte_eth_dev_configure(cfg.port, nb_queues, nb_queues, &conf); rc != 0) {
        return error{errc::dpdk, port_err(cfg.port, "rte_eth_dev_configure", rc)};
    }
    if (int rc = rte_eth_dev_set_mtu(cfg.port, cfg.mtu); rc != 0 && rc != -ENOTSUP) {
        return error{errc::dpdk, port_err(cfg.port, "rte_eth_dev_set_mtu(" + std::to_string(cfg.mtu) + ")", rc)};
    }
    uint16_t nb_rx = prof->rx_desc, nb_tx = prof->tx_desc;
    if (int rc = rte_eth_dev_adjust_nb_rx_tx_desc(cfg.port, &nb_rx, &nb_tx); rc != 0) {
        return error{errc::dpdk, port_err(cfg.port, "rte_eth_dev_adjust_nb_rx_tx_desc", rc)};
    }
    const int socket = rte_eth_dev_socket_id(cfg.port);
    for (uint16_t q = 0; q < nb_queues; ++q) {
        rte_eth_rxconf rxc = info.default_rxconf;
        rxc.offloads = conf.rxmode.offloads;
        if (int rc = rte_eth_rx_queue_setup(cfg.port, q, nb_rx, socket, &rxc, pool); rc != 0) {
            return error{errc::dpdk, port_err(cfg.port, "rte_eth_rx_queue_setup", rc)};
        }
        rte_eth_txconf txc = info.default_txconf;
        txc.offloads = conf.txmode.offloads;
        if (int rc = rte_eth_tx_queue_setup(cfg.port, q, nb_tx, socket, &txc); rc != 0) {
            return error{errc::dpdk, port_err(cfg.port, "rte_eth_tx_queue_setup", rc)};
        }
    }
    if (int rc = rte_eth_dev_start(cfg.port); rc != 0) {
        return error{errc::dpdk, port_err(cfg.port, "rte_eth_dev_start", rc)};
    }
    // A bump in the wire must see every multicast group, not only those the NIC was told about.
    if (rte_eth_promiscuous_enable(cfg.port) != 0) {
        rte_eth_allmulticast_enable(cfg.port);
    }
    return st;
}

result<void> pair_ports(std::vector<port_state>& ports)
{
    std::vector<config::port_side> sides;
    for (const auto& p : ports) {
        sides.push_back(p.side);
    }
    std::string why;
    const auto pairs = config::port_pairs(sides, why);
    if (pairs.empty()) {
        return error{errc::config_bad_value, "ports: " + why};
    }
    for (const auto& [a, b] : pairs) {
        ports[a].peer = ports[b].port_id;
        ports[b].peer = ports[a].port_id;
    }
    return {};
}

void stop_port(uint16_t port_id)
{
    rte_eth_dev_stop(port_id);
    rte_eth_dev_close(port_id);
}

} // namespace msecgw::port
