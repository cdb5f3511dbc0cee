#include "report.hh"

#include <rte_ethdev.h>

#include <cstdio>
#include <sstream>

namespace msecgw::stats {

totals collect(const std::vector<port::port_state>& ports,
               const std::vector<std::pair<unsigned, const dataplane::lcore_stats*>>& lcores,
               double seconds)
{
    totals t;
    t.seconds = seconds;
    for (const auto& [id, st] : lcores) {
        t.lcores.emplace_back(id, *st);
    }
    for (const auto& p : ports) {
        port_totals pt;
        pt.port = p.port_id;
        pt.side = std::string(config::to_string(p.side));
        pt.driver = p.driver;
        for (const auto& [id, st] : t.lcores) {
            pt.rx_pkts += st.rx_pkts[p.port_id];
            pt.rx_bytes += st.rx_bytes[p.port_id];
            pt.tx_pkts += st.tx_pkts[p.port_id];
            pt.tx_bytes += st.tx_bytes[p.port_id];
        }
        rte_eth_stats es{};
        if (rte_eth_stats_get(p.port_id, &es) == 0) {
            pt.nic = {es.imissed, es.ierrors, es.oerrors, es.rx_nombuf};
        }
        t.rx_pkts += pt.rx_pkts;
        t.tx_pkts += pt.tx_pkts;
        t.ports.push_back(pt);
    }
    for (const auto& [id, st] : t.lcores) {
        t.bypassed += st.bypassed;
        t.sealed += st.sealed;
        t.opened += st.opened;
        t.fragmented += st.fragmented;
        t.fragments_out += st.fragments_out;
        t.reassembled += st.reassembled;
        t.fragments_in += st.fragments_in;
        t.auth_tagged += st.auth_tagged;
        t.auth_control_sent += st.auth_control_sent;
        t.auth_released += st.auth_released;
        t.auth_control_used += st.auth_control_used;
        t.auth_held += st.auth_held;
        for (std::size_t r = 0; r < drop_reason_count; ++r) {
            t.drops[r] += st.drops[r];
            t.drops_total += st.drops[r];
        }
    }
    return t;
}

std::string to_json(const totals& t)
{
    std::ostringstream o;
    o << "{\n  \"seconds\": " << t.seconds << ",\n  \"rx_packets\": " << t.rx_pkts
      << ",\n  \"tx_packets\": " << t.tx_pkts << ",\n  \"bypassed\": " << t.bypassed
      << ",\n  \"sealed\": " << t.sealed << ",\n  \"opened\": " << t.opened
      << ",\n  \"fragmented\": " << t.fragmented << ",\n  \"fragments_out\": " << t.fragments_out
      << ",\n  \"reassembled\": " << t.reassembled << ",\n  \"fragments_in\": " << t.fragments_in
      << ",\n  \"srcauth_tagged\": " << t.auth_tagged << ",\n  \"srcauth_control_sent\": " << t.auth_control_sent
      << ",\n  \"srcauth_released\": " << t.auth_released << ",\n  \"srcauth_control_used\": " << t.auth_control_used
      << ",\n  \"srcauth_held\": " << t.auth_held
      << ",\n  \"drops_total\": " << t.drops_total << ",\n  \"drops\": {";
    for (std::size_t r = 0; r < drop_reason_count; ++r) {
        o << (r ? ", " : "") << "\"" << drop_table[r].label << "\": " << t.drops[r];
    }
    o << "},\n  \"ports\": [";
    for (std::size_t i = 0; i < t.ports.size(); ++i) {
        const auto& p = t.ports[i];
        o << (i ? ",\n    " : "\n    ") << "{\"port\": " << p.port << ", \"side\": \"" << p.side
          << "\", \"driver\": \"" << p.driver << "\", \"rx_packets\": " << p.rx_pkts
          << ", \"rx_bytes\": " << p.rx_bytes << ", \"tx_packets\": " << p.tx_pkts
          << ", \"tx_bytes\": " << p.tx_bytes << ", \"nic_imissed\": " << p.nic.imissed
          << ", \"nic_ierrors\": " << p.nic.ierrors << ", \"nic_oerrors\": " << p.nic.oerrors
          << ", \"nic_rx_nombuf\": " << p.nic.rx_nombuf << "}";
    }
    o << "\n  ],\n  \"lcores\": [";
    for (std::size_t i = 0; i < t.lcores.size(); ++i) {
        const auto& [id, st] = t.lcores[i];
        uint64_t rx = 0, drops = 0;
        for (auto v : st.rx_pkts) {
            rx += v;
        }
        for (auto v : st.drops) {
            drops += v;
        }
        o << (i ? ",\n    " : "\n    ") << "{\"lcore\": " << id << ", \"rx_packets\": " << rx
          << ", \"bypassed\": " << st.bypassed << ", \"drops_total\": " << drops
          << ", \"busy_polls\": " << st.busy_polls << ", \"idle_polls\": " << st.idle_polls
          << ", \"busy_cycles\": " << st.busy_cycles << ", \"idle_cycles\": " << st.idle_cycles << "}";
    }
    o << "\n  ]\n}\n";
    return o.str();
}

std::string summary(const totals& t)
{
    std::ostringstream o;
    char line[160];
    o << "msecgw summary (" << t.seconds << " s, " << t.lcores.size() << " worker lcore(s))\n";
    for (const auto& p : t.ports) {
        std::snprintf(line, sizeof line, "  port %u %-9s %-10s rx %10llu pkts  tx %10llu pkts\n", p.port,
                      p.side.c_str(), p.driver.c_str(), static_cast<unsigned long long>(p.rx_pkts),
                      static_cast<unsigned long long>(p.tx_pkts));
        o << line;
        if (p.nic.imissed + p.nic.ierrors + p.nic.rx_nombuf + p.nic.oerrors != 0) {
            o << "    NIC: imissed " << p.nic.imissed << " ierrors " << p.nic.ierrors << " rx_nombuf "
              << p.nic.rx_nombuf << " oerrors " << p.nic.oerrors << "\n";
        }
    }
    o << "  received " << t.rx_pkts << ", forwarded " << t.tx_pkts << " (bypass " << t.bypassed << ", sealed as ESP "
      << t.sealed << ", opened from ESP " << t.opened << "), dropped " << t.drops_total << "\n";
    for (std::size_t r = 0; r < drop_reason_count; ++r) {
        if (t.drops[r] != 0) {
            std::snprintf(line, sizeof line, "    %-20s %10llu  %s\n", std::string(drop_table[r].label).c_str(),
                          static_cast<unsigned long long>(t.drops[r]), std::string(drop_table[r].help).c_str());
            o << line;
        }
    }
    if (t.auth_tagged + t.auth_released + t.auth_control_used != 0) {
        o << "  source authentication: tagged " << t.auth_tagged << ", control messages sent " << t.auth_control_sent
          << "; verified and forwarded " << t.auth_released << ", control messages used " << t.auth_control_used
          << ", held now " << t.auth_held << "\n";
    }
    if (t.fragmented + t.reassembled != 0) {
        o << "  fragmented " << t.fragmented << " ESP packets into " << t.fragments_out << " fragments; reassembled "
          << t.reassembled << " ESP packets from " << t.fragments_in << " fragments\n";
    }
    const uint64_t accounted = t.tx_pkts + t.drops_total;
    const uint64_t expected = expected_out(t);
    o << "  every packet accounted for: " << (accounted == expected ? "yes" : "NO") << " (" << accounted << " of "
      << expected << ")\n";
    return o.str();
}

uint64_t expected_out(const totals& t)
{
    return t.rx_pkts + (t.fragments_out - t.fragmented) - (t.fragments_in - t.reassembled) + t.auth_control_sent -
           t.auth_control_used - t.auth_held;
}

} // namespace msecgw::stats
