#include "commands.hh"

#include <rte_log.h>

#include <cstdio>
#include <regex>

#include "common/log.hh"
#include "text.hh"

namespace msecgw::cli {

namespace {

constexpr const char* show_objects = "port, sa, policy, group, stats, drops, lcore, log";

const char* log_levels[] = {"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"};

reply ok(std::string text) { return {status::ok, std::move(text)}; }
reply failed(std::string text) { return {status::failed, std::move(text) + "\n"}; }
reply usage(std::string text) { return {status::usage, std::move(text) + "\n"}; }

std::string u64(uint64_t v) { return std::to_string(v); }

uint64_t since(uint64_t now, uint64_t base) { return now >= base ? now - base : now; }

std::string prefix_or_any(const std::optional<config::ip_prefix>& p)
{
    return p ? config::to_string(*p) : "any";
}

/// The name of region `index`; empty on a gateway without `regions` (one implicit region).
std::string region_name(const config::gateway_cfg& cfg, uint16_t index)
{
    return index < cfg.regions.size() ? cfg.regions[index] : std::string();
}

/// Tables of SAs and policies get a "region" column at `pos` on a gateway with `regions`.
void with_region_column(const config::gateway_cfg& cfg, std::vector<std::string>& header, std::size_t pos)
{
    if (!cfg.regions.empty()) {
        header.insert(header.begin() + static_cast<std::ptrdiff_t>(pos), "region");
    }
}

void with_region_column(const config::gateway_cfg& cfg, std::vector<std::string>& row, std::size_t pos, uint16_t region)
{
    if (!cfg.regions.empty()) {
        row.insert(row.begin() + static_cast<std::ptrdiff_t>(pos), region_name(cfg, region));
    }
}

std::string range(const config::u16_range& r, uint16_t lo, uint16_t hi)
{
    if (r.lo == lo && r.hi == hi) {
        return "any";
    }
    if (r.lo == config::vlan_untagged) {
        return "none";
    }
    return r.lo == r.hi ? std::to_string(r.lo) : std::to_string(r.lo) + "-" + std::to_string(r.hi);
}

std::string proto_name(const std::optional<uint8_t>& p)
{
    if (!p) {
        return "any";
    }
    switch (*p) {
    case 17: return "udp";
    case 6: return "tcp";
    case 132: return "sctp";
    case 50: return "esp";
    case 1: return "icmp";
    case 58: return "icmpv6";
    default: return std::to_string(*p);
    }
}

uint64_t sum(const std::array<uint64_t, dataplane::max_ports>& a)
{
    uint64_t s = 0;
    for (auto v : a) {
        s += v;
    }
    return s;
}

uint64_t drops_of(const dataplane::lcore_stats& st)
{
    uint64_t s = 0;
    for (auto v : st.drops) {
        s += v;
    }
    return s;
}

std::string load_pct(const dataplane::lcore_stats& st)
{
    const uint64_t all = st.busy_polls + st.idle_polls;
    char buf[16];
    std::snprintf(buf, sizeof buf, "%.1f", all == 0 ? 0.0 : 100.0 * static_cast<double>(st.busy_polls) / static_cast<double>(all));
    return buf;
}

/// Every rte_log type with its level, from rte_log_dump (DPDK has no other listing).
std::vector<std::pair<std::string, std::string>> log_types()
{
    char* buf = nullptr;
    std::size_t len = 0;
    std::FILE* f = open_memstream(&buf, &len);
    if (f == nullptr) {
        return {};
    }
    rte_log_dump(f);
    std::fclose(f);
    std::vector<std::pair<std::string, std::string>> out;
    static const std::regex line(R"(id \d+: ([^,\s]+), level is (\w+))");
    const std::string text(buf, len);
    std::free(buf);
    for (std::sregex_iterator it(text.begin(), text.end(), line), e; it != e; ++it) {
        out.emplace_back((*it)[1].str(), (*it)[2].str());
    }
    return out;
}

} // namespace

const std::vector<command_info>& command_list()
{
    static const std::vector<command_info> list = {
        {"show stats", "packets received, forwarded, sealed, opened and dropped (since start or clear stats)"},
        {"show port", "per port: side, driver, MTU, rx/tx packets and bytes, NIC losses"},
        {"show lcore", "per worker lcore: rx, tx, bypassed, sealed, opened, drops, busy/idle polls, load"},
        {"show drops", "non-zero drop counters by reason (all reasons with --json)"},
        {"show sa", "SAs: name, dir, SPI, AEAD, selectors, Sender-ID, replay window, counters (never keys)"},
        {"show policy", "policies in first-match order, with their numbers"},
        {"show group", "multicast groups protected by a policy, their SA and key source"},
        {"show log", "rte_log types and their levels"},
        {"clear stats", "restart the CLI's counters from zero (metrics and --stats-json keep run totals)"},
        {"set log <type> <level>", "rte_log level of a type or glob (msecgw.*, lib.eal): emerg..debug"},
        {"add sa name=N dir=out|in spi=S aead=A key=0x… [dst=P] [src=P] [replay_window=W] "
         "[sender_id=I sender_id_bits=B] [region=R]", "install an SA (RCU, no packet loss); region: default the first"},
        {"del sa <name>", "remove an SA no policy names"},
        {"add policy [at=N] dir=out|in [src=P] [dst=P] [proto=X] [sport=R] [dport=R] [vlan=R] "
         "action=protect|bypass|discard [sa=N] [region=R]", "insert a policy before policy N (default: last)"},
        {"del policy <N>", "remove policy N (see show policy)"},
        {"rekey group <group>", "rekey a group through its key server"},
        {"help", "this list"},
        {"quit", "drain the workers and exit 0 (as SIGTERM)"},
    };
    return list;
}

reply engine::run(std::vector<std::string> words, bool as_json)
{
    std::erase_if(words, [&](const std::string& w) {
        if (w == "--json" || w == "json") {
            as_json = true;
            return true;
        }
        return w.empty();
    });
    if (words.empty()) {
        return usage("no command (try help)");
    }
    const std::string& verb = words[0];
    // verb and object only: `add sa` carries key material in its arguments
    MSECGW_LOG(DEBUG, cli, "command: %s %s", shown(verb).c_str(), words.size() > 1 ? shown(words[1]).c_str() : "");
    if (verb == "help" || verb == "?") {
        std::string text = "commands (msecgw-cli: add --json for JSON output):\n";
        for (const auto& c : command_list()) {
            text += "  " + std::string(c.syntax) + "\n      " + c.help + "\n";
        }
        return ok(text);
    }
    if (verb == "show") {
        return show(words, as_json);
    }
    if (verb == "clear") {
        return clear(words);
    }
    if (verb == "set") {
        return set_log(words);
    }
    if (verb == "add") {
        return add(words);
    }
    if (verb == "del") {
        return del(words);
    }
    if (verb == "rekey") {
        return rekey(words);
    }
    if (verb == "quit" || verb == "exit") {
        if (words.size() != 1) {
            return usage("quit: takes no argument");
        }
        _b.quit();
        return ok(as_json ? "{\"quit\": true}\n" : "msecgw: quitting: draining the workers\n");
    }
    return usage("unknown command '" + shown(verb) + "' (try help)");
}

reply engine::show(const std::vector<std::string>& w, bool as_json)
{
    if (w.size() != 2) {
        return usage("show: expected one of " + std::string(show_objects));
    }
    const std::string& o = w[1];
    if (o == "stats") return show_stats(as_json);
    if (o == "port" || o == "ports") return show_port(as_json);
    if (o == "lcore" || o == "lcores") return show_lcore(as_json);
    if (o == "drops") return show_drops(as_json);
    if (o == "sa" || o == "sas") return show_sa(as_json);
    if (o == "policy" || o == "policies") return show_policy(as_json);
    if (o == "group" || o == "groups") return show_group(as_json);
    if (o == "log") return show_log(as_json);
    return usage("show " + shown(o) + ": unknown object (expected one of " + std::string(show_objects) + ")");
}

stats::totals engine::since_clear()
{
    stats::totals now = _b.totals();
    return _cleared ? subtract(now, _base) : now;
}

reply engine::show_stats(bool as_json)
{
    const stats::totals t = since_clear();
    if (as_json) {
        return ok(stats::to_json(t));
    }
    const uint64_t expected = stats::expected_out(t);
    fields f;
    f.add("since", _cleared ? "clear stats" : "start");
    char secs[32];
    std::snprintf(secs, sizeof secs, "%.1f", t.seconds);
    f.add("seconds", secs);
    f.add("rx_packets", t.rx_pkts);
    f.add("tx_packets", t.tx_pkts);
    f.add("bypassed", t.bypassed);
    f.add("sealed", t.sealed);
    f.add("opened", t.opened);
    f.add("fragmented", t.fragmented);
    f.add("fragments_out", t.fragments_out);
    f.add("reassembled", t.reassembled);
    f.add("fragments_in", t.fragments_in);
    f.add("drops_total", t.drops_total);
    f.add("in_flight", expected >= t.tx_pkts + t.drops_total ? expected - t.tx_pkts - t.drops_total : 0);
    return ok("Gateway statistics\n" + f.str());
}

reply engine::show_port(bool as_json)
{
    const stats::totals t = since_clear();
    const auto& cfg = _b.running();
    auto mtu_of = [&](uint16_t port) {
        for (const auto& p : cfg.ports) {
            if (p.port == port) {
                return p.mtu;
            }
        }
        return uint16_t{0};
    };
    if (as_json) {
        json j;
        j.arr();
        for (const auto& p : t.ports) {
            j.obj().kv("port", uint64_t{p.port}).kv("side", p.side).kv("driver", p.driver).kv("mtu", uint64_t{mtu_of(p.port)})
                .kv("rx_packets", p.rx_pkts).kv("rx_bytes", p.rx_bytes).kv("tx_packets", p.tx_pkts).kv("tx_bytes", p.tx_bytes)
                .kv("nic_imissed", p.nic.imissed).kv("nic_ierrors", p.nic.ierrors).kv("nic_oerrors", p.nic.oerrors)
                .kv("nic_rx_nombuf", p.nic.rx_nombuf).end();
        }
        return ok(j.end().take());
    }
    table tb({"port", "side", "driver", "mtu", "rx_packets", "rx_bytes", "tx_packets", "tx_bytes", "imissed", "ierrors",
              "oerrors", "rx_nombuf"});
    for (const auto& p : t.ports) {
        tb.row({u64(p.port), p.side, p.driver, u64(mtu_of(p.port)), u64(p.rx_pkts), u64(p.rx_bytes), u64(p.tx_pkts),
                u64(p.tx_bytes), u64(p.nic.imissed), u64(p.nic.ierrors), u64(p.nic.oerrors), u64(p.nic.rx_nombuf)});
    }
    return ok(tb.str());
}

reply engine::show_lcore(bool as_json)
{
    const stats::totals t = since_clear();
    if (as_json) {
        json j;
        j.arr();
        for (const auto& [id, st] : t.lcores) {
            j.obj().kv("lcore", uint64_t{id}).kv("rx_packets", sum(st.rx_pkts)).kv("tx_packets", sum(st.tx_pkts))
                .kv("bypassed", st.bypassed).kv("sealed", st.sealed).kv("opened", st.opened)
                .kv("drops_total", drops_of(st)).kv("busy_polls", st.busy_polls).kv("idle_polls", st.idle_polls).end();
        }
        return ok(j.end().take());
    }
    table tb({"lcore", "rx_packets", "tx_packets", "bypassed", "sealed", "opened", "drops", "busy_polls", "idle_polls",
              "load%"});
    for (const auto& [id, st] : t.lcores) {
        tb.row({u64(id), u64(sum(st.rx_pkts)), u64(sum(st.tx_pkts)), u64(st.bypassed), u64(st.sealed), u64(st.opened),
                u64(drops_of(st)), u64(st.busy_polls), u64(st.idle_polls), load_pct(st)});
    }
    return ok(tb.str());
}

reply engine::show_drops(bool as_json)
{
    const stats::totals t = since_clear();
    if (as_json) {
        json j;
        j.obj().kv("drops_total", t.drops_total).key("drops").obj();
        for (std::size_t r = 0; r < drop_reason_count; ++r) {
            j.kv(drop_table[r].label, t.drops[r]);
        }
        return ok(j.end().end().take());
    }
    table tb({"reason", "packets", "meaning"});
    for (std::size_t r = 0; r < drop_reason_count; ++r) {
        if (t.drops[r] != 0) {
            tb.row({std::string(drop_table[r].label), u64(t.drops[r]), std::string(drop_table[r].help)});
        }
    }
    return ok(tb.empty() ? "no drops (drops_total 0)\n" : tb.str() + "drops_total " + u64(t.drops_total) + "\n");
}

reply engine::show_sa(bool as_json)
{
    const auto& cfg = _b.running();
    const auto live = _b.sas();
    struct row {
        const config::sa_cfg* c;
        const sa_counters* n;
    };
    std::vector<row> rows;
    for (const auto& c : cfg.sas) {
        const sa_counters* n = nullptr;
        for (const auto& l : live) {
            if (l.name == c.name && l.dir == c.dir) {
                n = &l;
            }
        }
        rows.push_back({&c, n});
    }
    auto counted = [&](const sa_counters* n) -> std::pair<uint64_t, uint64_t> {
        if (n == nullptr) {
            return {0, 0};
        }
        auto it = _sa_base.find(n->uid);
        return it == _sa_base.end() ? std::pair{n->packets, n->bytes}
                                    : std::pair{since(n->packets, it->second.first), since(n->bytes, it->second.second)};
    };
    auto sender = [](const config::sa_cfg& c) {
        return c.sender_id_bits == 0 ? std::string("-")
                                     : std::to_string(c.sender_id) + "/" + std::to_string(c.sender_id_bits);
    };
    if (as_json) {
        json j;
        j.arr();
        for (const auto& r : rows) {
            const auto [p, b] = counted(r.n);
            j.obj().kv("name", r.c->name).kv("dir", config::to_string(r.c->dir)).kv("spi", hex32(r.c->spi))
                .kv("aead", config::to_string(r.c->aead)).kv("dst", prefix_or_any(r.c->dst))
                .kv("src", prefix_or_any(r.c->src)).kv("sender_id", uint64_t{r.c->sender_id})
                .kv("sender_id_bits", uint64_t{r.c->sender_id_bits}).kv("replay_window", uint64_t{r.c->replay_window})
                .kv("region", region_name(cfg, r.c->region)).kv("packets", p).kv("bytes", b)
                .kv("state", r.n ? r.n->state : "not installed").end();
        }
        return ok(j.end().take());
    }
    std::vector<std::string> columns{"name", "dir", "spi", "aead", "dst", "src", "sender_id", "replay", "packets",
                                     "bytes", "state"};
    with_region_column(cfg, columns, 2);
    table tb(columns);
    for (const auto& r : rows) {
        const auto [p, b] = counted(r.n);
        std::vector<std::string> row{r.c->name, std::string(config::to_string(r.c->dir)), hex32(r.c->spi),
                                     std::string(config::to_string(r.c->aead)), prefix_or_any(r.c->dst),
                                     prefix_or_any(r.c->src), sender(*r.c),
                                     r.c->dir == config::direction::in ? u64(r.c->replay_window) : "-", u64(p), u64(b),
                                     r.n ? r.n->state : "not installed"};
        with_region_column(cfg, row, 2, r.c->region);
        tb.row(std::move(row));
    }
    return ok(tb.empty() ? "no SAs\n" : tb.str());
}

reply engine::show_policy(bool as_json)
{
    const auto& cfg = _b.running();
    if (as_json) {
        json j;
        j.arr();
        for (std::size_t i = 0; i < cfg.policies.size(); ++i) {
            const auto& p = cfg.policies[i];
            j.obj().kv("index", uint64_t{i}).kv("dir", config::to_string(p.dir)).kv("src", config::to_string(p.src))
                .kv("dst", config::to_string(p.dst)).kv("proto", proto_name(p.proto))
                .kv("sport", range(p.sport, 0, 0xffff)).kv("dport", range(p.dport, 0, 0xffff))
                .kv("vlan", range(p.vlan, 0, 0xffff)).kv("action", config::to_string(p.action))
                .kv("region", region_name(cfg, p.region));
            if (p.action == config::policy_action::protect) {
                j.kv("sa", p.sa);
            } else {
                j.key("sa").null();
            }
            j.end();
        }
        return ok(j.end().take());
    }
    std::vector<std::string> columns{"#", "dir", "src", "dst", "proto", "sport", "dport", "vlan", "action", "sa"};
    with_region_column(cfg, columns, 2);
    table tb(columns);
    for (std::size_t i = 0; i < cfg.policies.size(); ++i) {
        const auto& p = cfg.policies[i];
        std::vector<std::string> row{u64(i), std::string(config::to_string(p.dir)), config::to_string(p.src),
                                     config::to_string(p.dst), proto_name(p.proto), range(p.sport, 0, 0xffff),
                                     range(p.dport, 0, 0xffff), range(p.vlan, 0, 0xffff),
                                     std::string(config::to_string(p.action)), p.sa.empty() ? "-" : p.sa};
        with_region_column(cfg, row, 2, p.region);
        tb.row(std::move(row));
    }
    return ok(tb.empty() ? "no policies (everything is discarded: policy_no_match)\n" : tb.str());
}

reply engine::show_group(bool as_json)
{
    const auto& cfg = _b.running();
    const std::vector<group_info> groups = _b.groups();
    json j;
    j.obj().key("groups").arr();
    const bool regions = std::any_of(groups.begin(), groups.end(), [](const group_info& g) { return !g.region.empty(); });
    std::vector<std::string> columns{"group", "id", "member", "sender-id", "sealing", "opening", "rekeys", "key server"};
    if (regions) {
        columns.insert(columns.begin() + 2, "region");
    }
    table kt(columns);
    for (const auto& g : groups) {
        std::string opening;
        for (uint32_t spi : g.in_spis) {
            if (!opening.empty()) {
                opening += ',';
            }
            opening += hex32(spi);
        }
        std::string sid = "-", server = "-", rekeys = u64(g.rekeys_accepted);
        if (g.sender_id) {
            sid = u64(*g.sender_id);
            sid.append("/").append(u64(g.sender_id_bits));
        }
        if (g.key_server) {
            server = "tek ";
            server.append(hex32(g.server_tek_spi)).append(", ").append(u64(g.server_members)).append(" members");
        }
        if (g.rekeys_rejected != 0) {
            rekeys.append(" (").append(u64(g.rekeys_rejected)).append(" refused)");
        }
        std::string member = g.member_state.empty() ? "-" : g.member_state;
        if (!g.member_key_server.empty()) {
            member.append(" via ").append(g.member_key_server);
        }
        std::vector<std::string> row{g.name, u64(g.id), member, sid, g.out_spi ? hex32(*g.out_spi) : "-",
                                     opening.empty() ? "-" : opening, rekeys, server};
        if (regions) {
            row.insert(row.begin() + 2, g.region);
        }
        kt.row(row);
        j.obj().kv("group", g.name).kv("id", uint64_t{g.id}).kv("region", g.region).kv("member_state", g.member_state)
            .kv("member_key_server", g.member_key_server).key("sender_id");
        (g.sender_id ? j.num(*g.sender_id) : j.null()).kv("sender_id_bits", uint64_t{g.sender_id_bits});
        j.kv("sealing_spi", g.out_spi ? hex32(*g.out_spi) : "").kv("opening_spis", opening)
            .kv("rekeys_accepted", g.rekeys_accepted).kv("rekeys_rejected", g.rekeys_rejected)
            .kv("reregistrations", g.reregistrations).key("key_server").boolean(g.key_server)
            .kv("server_tek_spi", g.key_server ? hex32(g.server_tek_spi) : "").kv("server_members", g.server_members).end();
    }
    j.end().key("policies").arr();
    table tb({"group", "dir", "policy", "sa", "spi", "keys"});
    for (std::size_t i = 0; i < cfg.policies.size(); ++i) {
        const auto& p = cfg.policies[i];
        if (p.action != config::policy_action::protect) {
            continue;
        }
        const config::sa_cfg* sa = cfg.find_sa(p.sa);
        const std::string spi = sa ? hex32(sa->spi) : "-";
        const std::string keys = p.group.empty() ? "manual" : "group " + p.group;
        const std::string sa_name = p.sa.empty() ? "-" : p.sa;
        tb.row({config::to_string(p.dst), std::string(config::to_string(p.dir)), u64(i), sa_name, spi, keys});
        j.obj().kv("group", config::to_string(p.dst)).kv("dir", config::to_string(p.dir)).kv("policy", uint64_t{i})
            .kv("sa", p.sa).kv("spi", spi).kv("keys", keys).end();
    }
    if (as_json) {
        return ok(j.end().end().take());
    }
    std::string text = groups.empty() ? "" : kt.str() + "\n";
    return ok(text + (tb.empty() ? "no protected groups\n" : tb.str()));
}

reply engine::show_log(bool as_json)
{
    json j;
    j.arr();
    table tb({"type", "level"});
    for (const auto& [type, level] : log_types()) {
        tb.row({type, level});
        j.obj().kv("type", type).kv("level", level).end();
    }
    return ok(as_json ? j.end().take() : tb.str());
}

reply engine::clear(const std::vector<std::string>& w)
{
    if (w.size() != 2 || w[1] != "stats") {
        return usage("clear: expected 'clear stats'");
    }
    _base = _b.totals();
    _sa_base.clear();
    for (const auto& s : _b.sas()) {
        _sa_base[s.uid] = {s.packets, s.bytes};
    }
    _cleared = true;
    return ok("statistics cleared (CLI view; metrics and --stats-json keep run totals)\n");
}

reply engine::set_log(const std::vector<std::string>& w)
{
    if (w.size() != 4 || w[1] != "log") {
        return usage("set: expected 'set log <type> <level>'");
    }
    const std::string type = shown(w[2]);
    const std::string level = shown(w[3]);
    uint32_t lvl = 0;
    for (uint32_t i = 0; i < std::size(log_levels); ++i) {
        if (w[3] == log_levels[i] || w[3] == std::to_string(i + 1)) {
            lvl = i + 1; // RTE_LOG_EMERG = 1 .. RTE_LOG_DEBUG = 8
        }
    }
    if (lvl == 0) {
        return usage("set log " + type + ": unknown level '" + level +
                     "' (expected emerg, alert, crit, err, warning, notice, info, debug)");
    }
    bool found = false;
    const bool glob = w[2].find_first_of("*?[") != std::string::npos;
    for (const auto& [t, l] : log_types()) {
        found = found || t == w[2];
    }
    if (!found && !glob) {
        return failed("set log " + type + ": no such log type (see show log; globs like msecgw.* work)");
    }
    if (rte_log_set_level_pattern(w[2].c_str(), lvl) != 0) {
        return failed("set log " + type + ": rte_log refused the level");
    }
    return ok("log level of " + type + " set to " + level + "\n");
}

reply engine::add(const std::vector<std::string>& w)
{
    if (w.size() < 2 || (w[1] != "sa" && w[1] != "policy")) {
        return usage("add: expected 'add sa KEY=VALUE…' or 'add policy KEY=VALUE…' (see help)");
    }
    const std::vector<std::string> kv(w.begin() + 2, w.end());
    auto next = w[1] == "sa" ? with_sa_added(_b.running(), kv) : with_policy_added(_b.running(), kv);
    if (!next) {
        return next.err().code == errc::config_reference || next.err().code == errc::config_duplicate
                   ? failed(next.err().detail)
                   : usage(next.err().detail);
    }
    const std::string what = w[1] == "sa" ? "SA " + next->sas.back().name : "policy";
    if (auto r = _b.apply(std::move(next.value())); !r) {
        return failed("add " + w[1] + ": refused, the running configuration is unchanged: " + r.err().detail);
    }
    return ok("added " + what + "\n");
}

reply engine::del(const std::vector<std::string>& w)
{
    if (w.size() != 3 || (w[1] != "sa" && w[1] != "policy")) {
        return usage("del: expected 'del sa NAME' or 'del policy N'");
    }
    auto next = w[1] == "sa" ? with_sa_deleted(_b.running(), w[2]) : with_policy_deleted(_b.running(), w[2]);
    const std::string what = "del " + w[1] + " " + shown(w[2]);
    if (!next) {
        return next.err().code == errc::config_bad_value ? usage(next.err().detail) : failed(next.err().detail);
    }
    if (auto r = _b.apply(std::move(next.value())); !r) {
        return failed(what + ": refused, the running configuration is unchanged: " + r.err().detail);
    }
    return ok("deleted " + w[1] + " " + shown(w[2]) + "\n");
}

reply engine::rekey(const std::vector<std::string>& w)
{
    if (w.size() != 3 || w[1] != "group") {
        return usage("rekey: expected 'rekey group <group>'");
    }
    const std::string group = shown(w[2]);
    if (auto r = _b.rekey(w[2]); !r) {
        return failed("rekey group " + group + ": " + r.err().detail +
                      (r.err().code == errc::unsupported && _b.groups().empty()
                           ? " (its SAs are keyed manually: replace them with add sa / del sa, or edit the "
                             "configuration and send SIGHUP)"
                           : ""));
    }
    return ok("rekeyed group " + group + "\n");
}

stats::totals subtract(const stats::totals& now, const stats::totals& base)
{
    stats::totals t = now;
    t.seconds = now.seconds - base.seconds;
    for (auto& p : t.ports) {
        for (const auto& b : base.ports) {
            if (b.port == p.port) {
                p.rx_pkts = since(p.rx_pkts, b.rx_pkts);
                p.rx_bytes = since(p.rx_bytes, b.rx_bytes);
                p.tx_pkts = since(p.tx_pkts, b.tx_pkts);
                p.tx_bytes = since(p.tx_bytes, b.tx_bytes);
                p.nic.imissed = since(p.nic.imissed, b.nic.imissed);
                p.nic.ierrors = since(p.nic.ierrors, b.nic.ierrors);
                p.nic.oerrors = since(p.nic.oerrors, b.nic.oerrors);
                p.nic.rx_nombuf = since(p.nic.rx_nombuf, b.nic.rx_nombuf);
            }
        }
    }
    for (auto& [id, st] : t.lcores) {
        for (const auto& [bid, b] : base.lcores) {
            if (bid != id) {
                continue;
            }
            for (std::size_t i = 0; i < dataplane::max_ports; ++i) {
                st.rx_pkts[i] = since(st.rx_pkts[i], b.rx_pkts[i]);
                st.rx_bytes[i] = since(st.rx_bytes[i], b.rx_bytes[i]);
                st.tx_pkts[i] = since(st.tx_pkts[i], b.tx_pkts[i]);
                st.tx_bytes[i] = since(st.tx_bytes[i], b.tx_bytes[i]);
            }
            for (std::size_t r = 0; r < drop_reason_count; ++r) {
                st.drops[r] = since(st.drops[r], b.drops[r]);
            }
            st.bypassed = since(st.bypassed, b.bypassed);
            st.sealed = since(st.sealed, b.sealed);
            st.opened = since(st.opened, b.opened);
            st.fragmented = since(st.fragmented, b.fragmented);
            st.fragments_out = since(st.fragments_out, b.fragments_out);
            st.reassembled = since(st.reassembled, b.reassembled);
            st.fragments_in = since(st.fragments_in, b.fragments_in);
            st.auth_tagged = since(st.auth_tagged, b.auth_tagged);
            st.auth_control_sent = since(st.auth_control_sent, b.auth_control_sent);
            st.auth_released = since(st.auth_released, b.auth_released);
            st.auth_control_used = since(st.auth_control_used, b.auth_control_used);
            st.busy_polls = since(st.busy_polls, b.busy_polls);
            st.idle_polls = since(st.idle_polls, b.idle_polls);
        }
    }
    for (auto [f, bf] : {std::pair{&t.rx_pkts, base.rx_pkts}, {&t.tx_pkts, base.tx_pkts}, {&t.bypassed, base.bypassed},
                         {&t.sealed, base.sealed}, {&t.opened, base.opened}, {&t.fragmented, base.fragmented},
                         {&t.fragments_out, base.fragments_out}, {&t.reassembled, base.reassembled},
                         {&t.fragments_in, base.fragments_in}, {&t.auth_tagged, base.auth_tagged},
                         {&t.auth_control_sent, base.auth_control_sent}, {&t.auth_released, base.auth_released},
                         {&t.auth_control_used, base.auth_control_used}, {&t.drops_total, base.drops_total}}) {
        *f = since(*f, bf);
    }
    for (std::size_t r = 0; r < drop_reason_count; ++r) {
        t.drops[r] = since(t.drops[r], base.drops[r]);
    }
    return t;
}

} // namespace msecgw::cli
