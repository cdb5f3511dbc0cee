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

struct dp_state {
    std::unique_ptr<policy::table> out_policies;
    std::unique_ptr<policy::table> in_policies;
    std::vector<std::shared_ptr<sa::out_sa>> out_sas;
    std::vector<std::shared_ptr<sa::in_sa>> in_sas;
    std::vector<uint32_t> out_rule_sa; ///< by out rule id: index into out_sas, or no_sa
    std::vector<uint32_t> in_rule_sa;  ///< by in rule id: index into in_sas, or no_sa
    std::vector<std::vector<policy::rule_id>> in_sa_rules; ///< by in SA: the protect rules naming it
    sa::sad sad;                       ///< inbound lookup -> index into in_sas
};

} // namespace msecgw::dataplane
