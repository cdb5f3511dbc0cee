#pragma once
/// The CLI's commands (DESIGN.md §5): one engine serves the interactive rte_cmdline prompt and
/// the unix socket. It runs on the control core only, between two polls of the control loop:
/// it reads the workers' plain counters the way --stats-json does and changes SAs and policies
/// only through the gateway's RCU reload (make-before-break). No key material is ever printed:
/// SAs are shown by name, direction, SPI, algorithm, selectors, Sender-ID and counters.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/result.hh"
#include "config/config.hh"
#include "stats/report.hh"

namespace msecgw::cli {

/// Exit codes of a command (and of msecgw-cli).
enum class status : int { ok = 0, failed = 1, usage = 2 };

struct reply {
    status code = status::ok;
    std::string text; ///< what to print (stdout when ok, stderr otherwise)
};

/// Counters of one installed SA (summed over its worker lanes).
struct sa_counters {
    uint32_t uid = 0; ///< unique per installed SA object: a replaced SA restarts its counters
    std::string name;
    config::direction dir = config::direction::out;
    uint64_t packets = 0;
    uint64_t bytes = 0;
    std::string state; ///< "active", "stopped", "expired", "exhausted"
};

/// One key-managed group (RFC 9838) as this box sees it: as a member, as the key server, or both.
struct group_info {
    std::string name;
    uint32_t id = 0;
    std::string region;                   ///< the key region whose key server keys it; empty: one region
    std::string member_state;             ///< "registered", "gsa_auth_sent", ... ; empty: not a member
    std::string member_key_server;        ///< address:port this member registers with now
    std::optional<uint32_t> sender_id;
    uint8_t sender_id_bits = 0;
    std::optional<uint32_t> out_spi;      ///< TEK outbound packets are sealed with
    std::vector<uint32_t> in_spis;        ///< TEKs inbound packets are opened with, newest first
    uint64_t rekeys_accepted = 0;
    uint64_t rekeys_rejected = 0;         ///< forged + replayed
    uint64_t reregistrations = 0;
    bool key_server = false;              ///< this box is the group's key server
    uint32_t server_tek_spi = 0;          ///< the key server's current TEK
    uint64_t server_members = 0;          ///< addresses its rekeys go to
};

/// What the engine needs from the running gateway (implemented by the application).
class backend {
public:
    virtual ~backend() = default;
    virtual stats::totals totals() = 0;
    virtual const config::gateway_cfg& running() const = 0;
    virtual std::vector<sa_counters> sas() = 0;
    /// Applies a modified copy of the running configuration through the RCU reload path.
    virtual result<void> apply(config::gateway_cfg cfg) = 0;
    /// Drain and exit 0, as on SIGTERM.
    virtual void quit() = 0;
    /// Key-managed groups (none without key management).
    virtual std::vector<group_info> groups() const { return {}; }
    /// On-demand rekey of a group by this box's key server.
    virtual result<void> rekey(const std::string& group)
    {
        return error{errc::unsupported, "no key server for group " + group};
    }
};

/// One command's syntax and meaning, for `help` and the interactive prompt.
struct command_info {
    const char* syntax;
    const char* help;
};
const std::vector<command_info>& command_list();

class engine {
public:
    explicit engine(backend& b) : _b(b) {}

    /// Runs one command given as words (`show stats`); a word `--json` anywhere asks for JSON.
    reply run(std::vector<std::string> words, bool as_json = false);

private:
    reply show(const std::vector<std::string>& w, bool as_json);
    reply show_stats(bool as_json);
    reply show_port(bool as_json);
    reply show_lcore(bool as_json);
    reply show_drops(bool as_json);
    reply show_sa(bool as_json);
    reply show_policy(bool as_json);
    reply show_group(bool as_json);
    reply show_log(bool as_json);
    reply clear(const std::vector<std::string>& w);
    reply set_log(const std::vector<std::string>& w);
    reply add(const std::vector<std::string>& w);
    reply del(const std::vector<std::string>& w);
    reply rekey(const std::vector<std::string>& w);
    /// The totals minus the `clear stats` baseline.
    stats::totals since_clear();

    backend& _b;
    bool _cleared = false;
    stats::totals _base;
    std::map<uint32_t, std::pair<uint64_t, uint64_t>> _sa_base; ///< by SA uid: packets, bytes
};

/// The configuration after `add sa WORDS` / `del sa NAME` / `add policy WORDS` / `del policy N`
/// (words after the verb and object), or the error to print. Pure: nothing is applied.
result<config::gateway_cfg> with_sa_added(const config::gateway_cfg& running, const std::vector<std::string>& kv);
result<config::gateway_cfg> with_sa_deleted(const config::gateway_cfg& running, const std::string& name);
result<config::gateway_cfg> with_policy_added(const config::gateway_cfg& running, const std::vector<std::string>& kv);
result<config::gateway_cfg> with_policy_deleted(const config::gateway_cfg& running, const std::string& index);

/// Totals `now` minus `base` (per port by id, per lcore by id; fields that went backwards count from 0).
stats::totals subtract(const stats::totals& now, const stats::totals& base);

} // namespace msecgw::cli
