#pragma once
// Internal: parsers of the config's top-level sections.

#include "yaml_fields.hh"

namespace msecgw::config::detail {

result<void> parse_ports(const at& a, gateway_cfg& cfg);
result<void> parse_sas(const at& a, gateway_cfg& cfg);
/// Needs the SAs parsed first (a protect policy names one).
result<void> parse_policies(const at& a, gateway_cfg& cfg);

} // namespace msecgw::config::detail
