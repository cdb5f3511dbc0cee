#pragma once
/// Everything workers read that the control plane may change: policies and SAs, as one immutable
/// snapshot published through RCU (DESIGN.md invariant 3). The control core builds a new
/// snapshot, swaps the pointer, waits for a QSBR grace period and only then frees the old one;
/// SA objects shared by both snapshots (same name, SPI, key and Sender-ID) keep their lanes and counters.

#include <cstdint>
#include <memory>
#include <vector>

#include "policy/policy.hh"
#include "sa/sa_rt.hh"
#include "sa/sad.hh"

namespace msecgw::dataplane {

inline constexpr uint32_t no_sa = UINT32_MAX;

/// The lookup tables of one key region (docs/regions.md): its policies, and its SAD over the
/// inbound SAs of that region. A port's region picks the tables for what it receives (inbound)
/// or sends (outbound); a boundary gateway uses two regions' tables on one packet.
struct region_tables {
    std::unique_ptr<policy::table> out_policies;
    std::unique_ptr<policy::table> in_policies;
    std::vector<uint32_t> out_rule_sa; ///< by out rule id: index into dp_state::out_sas, or no_sa
    std::vector<uint32_t> in_rule_sa;  ///< by in rule id: index into dp_state::in_sas, or no_sa
    std::vector<std::vector<policy::rule_id>> in_sa_rules; ///< by in SA (all regions'): its protect rules here
    sa::sad sad;                       ///< this region's inbound SAs -> index into dp_state::in_sas
};

struct dp_state {
    std::vector<std::shared_ptr<sa::out_sa>> out_sas; ///< every region's
    std::vector<std::shared_ptr<sa::in_sa>> in_sas;   ///< every region's
    std::vector<region_tables> regions;               ///< by config region index; at least one
};

} // namespace msecgw::dataplane
