#include "families.hh"

#include <cstdio>
#include <string>

namespace msecgw::metrics {

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using labels = std::vector<ClientMetric::Label>;

/// One family under construction (by index: appending other families may move it).
class family {
public:
    family(std::vector<MetricFamily>& out, const char* name, const char* help, MetricType type)
        : _out(out), _index(out.size())
    {
        out.push_back(MetricFamily{name, help, type, {}});
    }
    family& add(labels l, double v)
    {
        MetricFamily& f = _out[_index];
        ClientMetric& m = f.metric.emplace_back();
        m.label = std::move(l);
        if (f.type == MetricType::Counter) {
            m.counter.value = v;
        } else {
            m.gauge.value = v;
        }
        return *this;
    }

private:
    std::vector<MetricFamily>& _out;
    std::size_t _index;
};

struct port_counter {
    const char* name;
    const char* help;
    uint64_t (*get)(const stats::port_totals&);
};

constexpr port_counter port_counters[] = {
    {"msecgw_rx_packets_total", "Packets received on the port by the workers.",
     [](const stats::port_totals& p) { return p.rx_pkts; }},
    {"msecgw_rx_bytes_total", "Bytes of the frames received on the port (without FCS).",
     [](const stats::port_totals& p) { return p.rx_bytes; }},
    {"msecgw_tx_packets_total", "Packets the port accepted for transmission.",
     [](const stats::port_totals& p) { return p.tx_pkts; }},
    {"msecgw_tx_bytes_total", "Bytes of the frames the port accepted for transmission (without FCS).",
     [](const stats::port_totals& p) { return p.tx_bytes; }},
    {"msecgw_nic_imissed_total", "Packets the NIC dropped because the rx queues were full (ethdev imissed).",
     [](const stats::port_totals& p) { return p.nic.imissed; }},
    {"msecgw_nic_ierrors_total", "Erroneous packets the NIC received (ethdev ierrors).",
     [](const stats::port_totals& p) { return p.nic.ierrors; }},
    {"msecgw_nic_oerrors_total", "Packets the NIC failed to transmit (ethdev oerrors).",
     [](const stats::port_totals& p) { return p.nic.oerrors; }},
    {"msecgw_nic_rx_nombuf_total", "Receive buffer allocation failures (ethdev rx_nombuf).",
     [](const stats::port_totals& p) { return p.nic.rx_nombuf; }},
};

struct lcore_counter {
    const char* name;
    const char* help;
    uint64_t dataplane::lcore_stats::*field;
};

constexpr lcore_counter lcore_counters[] = {
    {"msecgw_bypassed_packets_total", "Packets forwarded unchanged by a bypass policy.",
     &dataplane::lcore_stats::bypassed},
    {"msecgw_sealed_packets_total", "Clear packets sent out as group ESP.", &dataplane::lcore_stats::sealed},
    {"msecgw_opened_packets_total", "ESP packets decrypted, checked and forwarded in clear.",
     &dataplane::lcore_stats::opened},
    {"msecgw_fragmented_packets_total", "ESP packets fragmented after encryption to fit the protected port MTU.",
     &dataplane::lcore_stats::fragmented},
    {"msecgw_fragments_out_total", "Outer fragments those ESP packets became.",
     &dataplane::lcore_stats::fragments_out},
    {"msecgw_reassembled_packets_total", "ESP datagrams reassembled from outer fragments before decryption.",
     &dataplane::lcore_stats::reassembled},
    {"msecgw_fragments_in_total", "Outer fragments that went into reassembled ESP datagrams.",
     &dataplane::lcore_stats::fragments_in},
    {"msecgw_srcauth_tagged_packets_total", "Clear packets tagged for source authentication.",
     &dataplane::lcore_stats::auth_tagged},
    {"msecgw_srcauth_control_sent_total", "Source-authentication control messages (bootstraps, disclosures, "
     "manifests) made and sent.", &dataplane::lcore_stats::auth_control_sent},
    {"msecgw_srcauth_released_packets_total", "Tagged packets whose source verified, forwarded in clear.",
     &dataplane::lcore_stats::auth_released},
    {"msecgw_srcauth_control_used_total", "Source-authentication control messages a verifier used.",
     &dataplane::lcore_stats::auth_control_used},
};

void add_ports(std::vector<MetricFamily>& out, const stats::totals& t)
{
    family info(out, "msecgw_port_info", "Configured port: side and DPDK driver (value 1).", MetricType::Gauge);
    for (const auto& p : t.ports) {
        info.add({{"port", std::to_string(p.port)}, {"side", p.side}, {"driver", p.driver}}, 1);
    }
    for (const auto& c : port_counters) {
        family f(out, c.name, c.help, MetricType::Counter);
        for (const auto& p : t.ports) {
            f.add({{"port", std::to_string(p.port)}, {"side", p.side}}, static_cast<double>(c.get(p)));
        }
    }
}

void add_lcores(std::vector<MetricFamily>& out, const stats::totals& t)
{
    family drops(out, "msecgw_drops_total", "Packets dropped, by worker lcore and reason (every reason listed).",
                 MetricType::Counter);
    for (const auto& [id, st] : t.lcores) {
        for (std::size_t r = 0; r < drop_reason_count; ++r) {
            drops.add({{"lcore", std::to_string(id)}, {"reason", std::string(drop_table[r].label)}},
                      static_cast<double>(st.drops[r]));
        }
    }
    for (const auto& c : lcore_counters) {
        family f(out, c.name, c.help, MetricType::Counter);
        for (const auto& [id, st] : t.lcores) {
            f.add({{"lcore", std::to_string(id)}}, static_cast<double>(st.*c.field));
        }
    }
    family rx(out, "msecgw_lcore_rx_packets_total", "Packets received by the worker lcore, all ports.",
              MetricType::Counter);
    family polls(out, "msecgw_lcore_polls_total",
                 "Receive polls of the worker lcore: busy (got packets) or idle.", MetricType::Counter);
    for (const auto& [id, st] : t.lcores) {
        uint64_t n = 0;
        for (auto v : st.rx_pkts) {
            n += v;
        }
        const std::string lc = std::to_string(id);
        rx.add({{"lcore", lc}}, static_cast<double>(n));
        polls.add({{"lcore", lc}, {"state", "busy"}}, static_cast<double>(st.busy_polls));
        polls.add({{"lcore", lc}, {"state", "idle"}}, static_cast<double>(st.idle_polls));
    }
}

void add_sas(std::vector<MetricFamily>& out, const std::vector<sa_sample>& sas)
{
    family pkts(out, "msecgw_sa_packets_total", "Packets sealed (dir out) or opened (dir in) under the SA.",
                MetricType::Counter);
    family bytes(out, "msecgw_sa_bytes_total", "Inner (clear) IP bytes of the packets sealed or opened under the SA.",
                 MetricType::Counter);
    for (const auto& s : sas) {
        char spi[11];
        std::snprintf(spi, sizeof spi, "0x%08x", s.spi);
        labels l{{"sa", s.name}, {"spi", spi}, {"dir", std::string(config::to_string(s.dir))}};
        pkts.add(l, static_cast<double>(s.packets));
        bytes.add(std::move(l), static_cast<double>(s.bytes));
    }
}

struct member_counter {
    const char* name;
    const char* help;
    uint64_t member_sample::*field;
};

constexpr member_counter member_counters[] = {
    {"msecgw_gkm_member_registrations_total", "Times this gateway's member of the group became registered.",
     &member_sample::registrations},
    {"msecgw_gkm_member_key_changes_total", "Times the SAs made from the group's keys changed (arrival, activation, removal).",
     &member_sample::key_changes},
    {"msecgw_gkm_member_rekeys_missed_total", "GSA_REKEY Message IDs skipped between two accepted rekeys.",
     &member_sample::rekeys_missed},
    {"msecgw_gkm_member_reregistrations_total", "Recoveries started (missed rekey, expired key, retry).",
     &member_sample::reregistrations},
    {"msecgw_gkm_member_key_server_failovers_total", "Registrations moved to the next key server after a timeout.",
     &member_sample::gcks_failovers},
};

void add_members(std::vector<MetricFamily>& out, const std::vector<member_sample>& members)
{
    if (members.empty()) {
        return;
    }
    family reg(out, "msecgw_gkm_member_registered", "1 while this gateway holds the group's keys from its key server.",
               MetricType::Gauge);
    family rekeys(out, "msecgw_gkm_member_rekeys_total",
                  "GSA_REKEY messages received, by result (accepted, forged: bad SPI/ICV/signature, replayed: old Message ID).",
                  MetricType::Counter);
    for (const auto& m : members) {
        reg.add({{"group", m.group}}, m.registered ? 1 : 0);
        rekeys.add({{"group", m.group}, {"result", "accepted"}}, static_cast<double>(m.rekeys_accepted));
        rekeys.add({{"group", m.group}, {"result", "forged"}}, static_cast<double>(m.rekeys_forged));
        rekeys.add({{"group", m.group}, {"result", "replayed"}}, static_cast<double>(m.rekeys_replayed));
    }
    for (const auto& c : member_counters) {
        family f(out, c.name, c.help, MetricType::Counter);
        for (const auto& m : members) {
            f.add({{"group", m.group}}, static_cast<double>(m.*c.field));
        }
    }
}

struct server_counter {
    const char* name;
    const char* help;
    uint64_t key_server_sample::*field;
};

constexpr server_counter server_counters[] = {
    {"msecgw_gkm_server_registrations_total", "GSA_AUTH requests answered with keys.", &key_server_sample::registrations},
    {"msecgw_gkm_server_rekeys_sent_total", "GSA_REKEY messages sent (one per member reached).", &key_server_sample::rekeys_sent},
    {"msecgw_gkm_server_periodic_rekeys_total", "Rekeys started by rekey_period_seconds.", &key_server_sample::periodic_rekeys},
    {"msecgw_gkm_server_restart_rekeys_total",
     "Rekeys at a start on stored state (a TEK committed just before a crash may not have reached the members).",
     &key_server_sample::restart_rekeys},
    {"msecgw_gkm_server_rekeys_failed_total", "Periodic rekeys that could not be made (e.g. the store failed).",
     &key_server_sample::rekeys_failed},
    {"msecgw_gkm_server_malformed_total", "Datagrams dropped as undecodable or undecryptable.", &key_server_sample::malformed},
    {"msecgw_gkm_server_registrations_with_previous_tek_total",
     "Registrations answered within registration_overlap_ms of a rekey, with the previous TEK too.",
     &key_server_sample::registrations_with_previous_tek},
    {"msecgw_gkm_server_ignored_total",
     "Well-formed datagrams left unanswered: responses, exchanges not served, requests outside the window.",
     &key_server_sample::ignored},
    {"msecgw_gkm_server_retransmissions_answered_total", "Retransmitted requests answered again.",
     &key_server_sample::retransmissions_answered},
    {"msecgw_gkm_server_cookies_sent_total", "IKE_SA_INIT answered with a COOKIE (RFC 7296 section 2.6), no state kept.",
     &key_server_sample::cookies_sent},
    {"msecgw_gkm_server_cookies_rejected_total", "IKE_SA_INIT with a wrong or stale COOKIE, dropped.",
     &key_server_sample::cookies_rejected},
    {"msecgw_gkm_server_half_open_dropped_total", "IKE_SA_INIT dropped at admission.max_half_open.",
     &key_server_sample::half_open_dropped},
    {"msecgw_gkm_server_half_open_address_dropped_total", "IKE_SA_INIT dropped at admission.max_half_open_per_address.",
     &key_server_sample::half_open_address_dropped},
    {"msecgw_gkm_server_half_open_expired_total", "Half-open IKE SAs removed after admission.half_open_timeout_ms.",
     &key_server_sample::half_open_expired},
    {"msecgw_gkm_server_leader_takeovers_total", "Times this key server became the leader of the key servers on etcd.",
     &key_server_sample::leader_takeovers},
    {"msecgw_gkm_server_leader_step_downs_total", "Times it stopped leading (lease lost or not renewable, etcd down).",
     &key_server_sample::leader_step_downs},
    {"msecgw_gkm_server_etcd_errors_total", "Election steps or state loads etcd did not answer (e.g. no quorum).",
     &key_server_sample::etcd_errors},
    {"msecgw_gkm_server_not_leader_dropped_total", "Datagrams left unanswered because this key server does not lead.",
     &key_server_sample::not_leader_dropped},
    {"msecgw_gkm_server_etcd_retries_deferred_total",
     "Election steps put off by the back-off after etcd errors (a standby waits, no busy loop).",
     &key_server_sample::etcd_retries_deferred},
};

void add_key_server(std::vector<MetricFamily>& out, const std::optional<key_server_sample>& ks)
{
    if (!ks) {
        return;
    }
    family refused(out, "msecgw_gkm_server_refusals_total", "Registrations refused, by the Notify sent.",
                   MetricType::Counter);
    refused.add({{"reason", "authorization_failed"}}, static_cast<double>(ks->authorization_failed))
        .add({{"reason", "authentication_failed"}}, static_cast<double>(ks->authentication_failed))
        .add({{"reason", "invalid_group_id"}}, static_cast<double>(ks->invalid_group))
        .add({{"reason", "no_proposal_chosen"}}, static_cast<double>(ks->no_proposal_chosen));
    for (const auto& c : server_counters) {
        family(out, c.name, c.help, MetricType::Counter).add({}, static_cast<double>(*ks.*c.field));
    }
    family(out, "msecgw_gkm_server_leading", "1 while this key server answers registrations (the etcd leader, or alone).",
           MetricType::Gauge)
        .add({}, ks->leading ? 1.0 : 0.0);
    family(out, "msecgw_gkm_server_etcd_consecutive_failures",
           "Election steps in a row etcd did not answer (no quorum, down); 0 while it answers.", MetricType::Gauge)
        .add({}, static_cast<double>(ks->etcd_consecutive_failures));
    family(out, "msecgw_gkm_server_etcd_backoff_seconds",
           "Wait before the next election step after etcd failures (doubling, bounded); 0 while etcd answers.",
           MetricType::Gauge)
        .add({}, ks->etcd_backoff_seconds);
    family(out, "msecgw_gkm_server_sessions", "IKE SAs the key server holds, half-open ones and all.", MetricType::Gauge)
        .add({{"state", "half_open"}}, static_cast<double>(ks->half_open_sessions))
        .add({{"state", "all"}}, static_cast<double>(ks->sessions));
    family members(out, "msecgw_gkm_server_group_members", "Member addresses the key server sends the group's rekeys to.",
                   MetricType::Gauge);
    for (const auto& [group, n] : ks->group_members) {
        members.add({{"group", group}}, static_cast<double>(n));
    }
}

} // namespace

std::vector<MetricFamily> families(const sample* s, const process_info& info)
{
    std::vector<MetricFamily> out;
    family(out, "msecgw_build_info", "msecgw build: version labels (value 1).", MetricType::Gauge)
        .add({{"version", info.version}, {"dpdk", info.dpdk_version}}, 1);
    family(out, "msecgw_start_time_seconds", "Unix time the gateway started.", MetricType::Gauge)
        .add({}, info.start_time_seconds);
    family(out, "msecgw_up", "1 when the control core answered this scrape with current counters, else 0.",
           MetricType::Gauge)
        .add({}, s != nullptr ? 1 : 0);
    if (s == nullptr) {
        return out;
    }
    add_ports(out, s->totals);
    add_lcores(out, s->totals);
    add_sas(out, s->sas);
    add_members(out, s->members);
    add_key_server(out, s->key_server);
    return out;
}

} // namespace msecgw::metrics
