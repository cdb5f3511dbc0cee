#pragma once
/// Security-policy classification (RFC 4301 SPD, first match wins) over whole bursts, built on
/// DPDK's ACL library so the per-packet cost stays flat from 10 to 10,000 rules.
///
/// One `table` holds the rules of one direction for IPv4 and IPv6. It is built on the control core
/// and read-only afterwards: any number of worker lcores may classify through one table at once.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/burst.hh"
#include "common/result.hh"
#include "config/config.hh"
#include "packet/packet.hh"

struct rte_acl_ctx;

namespace msecgw::policy {

/// Classification result: 0 = no rule matched, otherwise the rule id (see table::rule).
using rule_id = uint32_t;
inline constexpr rule_id no_match = 0;

/// Whether two rules select the same traffic (addresses, protocol, ports, VLAN, direction).
bool same_selectors(const config::policy_cfg& a, const config::policy_cfg& b);

class table {
public:
    /// Builds the table of `dir` from the policies of `cfg` (file order = priority). `tag` makes
    /// the ACL context names unique in the process (e.g. "out", "in").
    static result<std::unique_ptr<table>> build(const std::vector<config::policy_cfg>& policies,
                                                config::direction dir, const std::string& tag,
                                                int socket_id);
    ~table();
    table(const table&) = delete;
    table& operator=(const table&) = delete;

    /// Classifies `n` (<= max_burst) parsed packets: out[i] is the first rule matching
    /// (metas[i], frames[i]), or no_match. Safe to call from any lcore concurrently.
    void classify(const packet::pkt_meta* metas, const uint8_t* const* frames, uint16_t n,
                  rule_id* out) const;

    /// The policy behind a rule id (id != no_match).
    const config::policy_cfg& rule(rule_id id) const { return _rules[id - 1]; }
    std::size_t size() const { return _rules.size(); }
    /// Unique per table built in this process (never reused, unlike an address).
    uint64_t id() const { return _id; }

private:
    table() = default;
    result<void> build_family(config::ip_family fam, const std::string& name, int socket_id);

    config::direction _dir = config::direction::out;
    uint64_t _id = 0;
    std::vector<config::policy_cfg> _rules; ///< this direction's rules; id = index + 1
    rte_acl_ctx* _v4 = nullptr;             ///< nullptr when no rule applies to IPv4
    rte_acl_ctx* _v6 = nullptr;
};

} // namespace msecgw::policy
