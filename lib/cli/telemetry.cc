#include "telemetry.hh"

#include <rte_telemetry.h>
#include <rte_version.h>

#include <cstdlib>
#include <mutex>

#include "common/log.hh"
#include "text.hh"

namespace msecgw::cli {

namespace {

struct sa_row {
    std::string name, dir, spi, aead, dst, src, state;
    uint64_t packets = 0, bytes = 0, replay_window = 0;
};

} // namespace

/// What the callbacks read: written by the control loop, read by the telemetry thread.
struct telemetry::state {
    std::mutex mu;
    bool live = false;
    std::string version;
    stats::totals totals;
    std::vector<sa_row> sas;
    std::size_t policies = 0;
};

namespace {

telemetry::state g_state; // the callbacks take no user pointer

void add_u64(rte_tel_data* d, const char* name, uint64_t v)
{
    rte_tel_data_add_dict_u64(d, name, v);
}

/// "port,3" -> 3; false when absent or not a number.
bool param_id(const char* params, unsigned long* id)
{
    if (params == nullptr || *params == '\0') {
        return false;
    }
    char* end = nullptr;
    *id = std::strtoul(params, &end, 10);
    return end != params && *end == '\0';
}

int cb_info(const char*, const char*, rte_tel_data* d)
{
    std::lock_guard lk(g_state.mu);
    rte_tel_data_start_dict(d);
    rte_tel_data_add_dict_string(d, "version", g_state.version.c_str());
    rte_tel_data_add_dict_string(d, "dpdk", rte_version());
    add_u64(d, "running", g_state.live ? 1 : 0);
    add_u64(d, "uptime_seconds", static_cast<uint64_t>(g_state.totals.seconds));
    add_u64(d, "workers", g_state.totals.lcores.size());
    add_u64(d, "sas", g_state.sas.size());
    add_u64(d, "policies", g_state.policies);
    return 0;
}

int cb_stats(const char*, const char*, rte_tel_data* d)
{
    std::lock_guard lk(g_state.mu);
    const auto& t = g_state.totals;
    rte_tel_data_start_dict(d);
    add_u64(d, "rx_packets", t.rx_pkts);
    add_u64(d, "tx_packets", t.tx_pkts);
    add_u64(d, "bypassed", t.bypassed);
    add_u64(d, "sealed", t.sealed);
    add_u64(d, "opened", t.opened);
    add_u64(d, "fragmented", t.fragmented);
    add_u64(d, "fragments_out", t.fragments_out);
    add_u64(d, "reassembled", t.reassembled);
    add_u64(d, "fragments_in", t.fragments_in);
    add_u64(d, "drops_total", t.drops_total);
    return 0;
}

int cb_drops(const char*, const char*, rte_tel_data* d)
{
    std::lock_guard lk(g_state.mu);
    rte_tel_data_start_dict(d);
    for (std::size_t r = 0; r < drop_reason_count; ++r) {
        add_u64(d, std::string(drop_table[r].label).c_str(), g_state.totals.drops[r]);
    }
    return 0;
}

int cb_port(const char*, const char* params, rte_tel_data* d)
{
    std::lock_guard lk(g_state.mu);
    unsigned long id = 0;
    if (!param_id(params, &id)) {
        rte_tel_data_start_array(d, RTE_TEL_INT_VAL);
        for (const auto& p : g_state.totals.ports) {
            rte_tel_data_add_array_int(d, p.port);
        }
        return 0;
    }
    for (const auto& p : g_state.totals.ports) {
        if (p.port == id) {
            rte_tel_data_start_dict(d);
            rte_tel_data_add_dict_string(d, "side", p.side.c_str());
            rte_tel_data_add_dict_string(d, "driver", p.driver.c_str());
            add_u64(d, "rx_packets", p.rx_pkts);
            add_u64(d, "rx_bytes", p.rx_bytes);
            add_u64(d, "tx_packets", p.tx_pkts);
            add_u64(d, "tx_bytes", p.tx_bytes);
            add_u64(d, "nic_imissed", p.nic.imissed);
            add_u64(d, "nic_ierrors", p.nic.ierrors);
            add_u64(d, "nic_oerrors", p.nic.oerrors);
            add_u64(d, "nic_rx_nombuf", p.nic.rx_nombuf);
            return 0;
        }
    }
    return -1; // telemetry answers null: no such port
}

int cb_lcore(const char*, const char* params, rte_tel_data* d)
{
    std::lock_guard lk(g_state.mu);
    unsigned long id = 0;
    if (!param_id(params, &id)) {
        rte_tel_data_start_array(d, RTE_TEL_INT_VAL);
        for (const auto& [lc, st] : g_state.totals.lcores) {
            rte_tel_data_add_array_int(d, static_cast<int>(lc));
        }
        return 0;
    }
    for (const auto& [lc, st] : g_state.totals.lcores) {
        if (lc != id) {
            continue;
        }
        uint64_t rx = 0, tx = 0, drops = 0;
        for (std::size_t i = 0; i < dataplane::max_ports; ++i) {
            rx += st.rx_pkts[i];
            tx += st.tx_pkts[i];
        }
        for (auto v : st.drops) {
            drops += v;
        }
        rte_tel_data_start_dict(d);
        add_u64(d, "rx_packets", rx);
        add_u64(d, "tx_packets", tx);
        add_u64(d, "bypassed", st.bypassed);
        add_u64(d, "sealed", st.sealed);
        add_u64(d, "opened", st.opened);
        add_u64(d, "drops_total", drops);
        add_u64(d, "busy_polls", st.busy_polls);
        add_u64(d, "idle_polls", st.idle_polls);
        return 0;
    }
    return -1;
}

int cb_sa(const char*, const char* params, rte_tel_data* d)
{
    std::lock_guard lk(g_state.mu);
    if (params == nullptr || *params == '\0') {
        rte_tel_data_start_array(d, RTE_TEL_STRING_VAL);
        for (const auto& s : g_state.sas) {
            rte_tel_data_add_array_string(d, s.name.c_str());
        }
        return 0;
    }
    for (const auto& s : g_state.sas) {
        if (s.name == params) {
            rte_tel_data_start_dict(d);
            rte_tel_data_add_dict_string(d, "name", s.name.c_str());
            rte_tel_data_add_dict_string(d, "dir", s.dir.c_str());
            rte_tel_data_add_dict_string(d, "spi", s.spi.c_str());
            rte_tel_data_add_dict_string(d, "aead", s.aead.c_str());
            rte_tel_data_add_dict_string(d, "dst", s.dst.c_str());
            rte_tel_data_add_dict_string(d, "src", s.src.c_str());
            add_u64(d, "replay_window", s.replay_window);
            add_u64(d, "packets", s.packets);
            add_u64(d, "bytes", s.bytes);
            rte_tel_data_add_dict_string(d, "state", s.state.c_str());
            return 0;
        }
    }
    return -1;
}

} // namespace

result<std::unique_ptr<telemetry>> telemetry::start(std::string version)
{
    static bool registered = false;
    {
        std::lock_guard lk(g_state.mu);
        g_state.version = std::move(version);
        g_state.live = true;
    }
    if (!registered) {
        const struct {
            const char* cmd;
            telemetry_cb fn;
            const char* help;
        } cmds[] = {
            {"/msecgw/info", cb_info, "msecgw version, uptime, workers, SA and policy counts. No parameters"},
            {"/msecgw/stats", cb_stats, "msecgw run totals: rx, tx, bypassed, sealed, opened, drops. No parameters"},
            {"/msecgw/drops", cb_drops, "msecgw drops by reason. No parameters"},
            {"/msecgw/port", cb_port, "msecgw port ids, or one port's counters. Parameters: int port_id"},
            {"/msecgw/lcore", cb_lcore, "msecgw worker lcores, or one worker's counters. Parameters: int lcore_id"},
            {"/msecgw/sa", cb_sa, "msecgw SA names, or one SA's parameters and counters (no keys). Parameters: string name"},
        };
        for (const auto& c : cmds) {
            if (rte_telemetry_register_cmd(c.cmd, c.fn, c.help) != 0) {
                return error{errc::dpdk, std::string("telemetry: cannot register ") + c.cmd};
            }
        }
        registered = true;
    }
    return std::unique_ptr<telemetry>(new telemetry());
}

telemetry::~telemetry()
{
    std::lock_guard lk(g_state.mu);
    g_state.live = false;
}

void telemetry::refresh(backend& b, std::chrono::milliseconds period)
{
    const auto now = std::chrono::steady_clock::now();
    if (now - _last < period) {
        return;
    }
    _last = now;
    // Sampled outside the lock (the control core's own reads); published under it.
    stats::totals t = b.totals();
    const auto live = b.sas();
    const auto& cfg = b.running();
    std::vector<sa_row> rows;
    for (const auto& c : cfg.sas) {
        sa_row r{c.name, std::string(config::to_string(c.dir)), hex32(c.spi), std::string(config::to_string(c.aead)),
                 c.dst ? config::to_string(*c.dst) : "any", c.src ? config::to_string(*c.src) : "any", "not installed",
                 0, 0, c.replay_window};
        for (const auto& l : live) {
            if (l.name == c.name && l.dir == c.dir) {
                r.packets = l.packets;
                r.bytes = l.bytes;
                r.state = l.state;
            }
        }
        rows.push_back(std::move(r));
    }
    std::lock_guard lk(g_state.mu);
    g_state.totals = std::move(t);
    g_state.sas = std::move(rows);
    g_state.policies = cfg.policies.size();
}

} // namespace msecgw::cli
