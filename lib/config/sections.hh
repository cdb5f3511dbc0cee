#pragma once
// Internal: parsers of the config's top-level sections.

#include "yaml_fields.hh"

namespace msecgw::config::detail {

result<void> parse_ports(const at& a, gateway_cfg& cfg);
result<void> parse_sas(const at& a, gateway_cfg& cfg);
/// Needs the SAs and groups parsed first (a protect policy names one).
result<void> parse_policies(const at& a, gateway_cfg& cfg);
result<void> parse_groups(const at& a, gateway_cfg& cfg);
/// Need the groups parsed first.
result<void> parse_key_server(const at& a, gateway_cfg& cfg);
result<void> parse_member(const at& a, gateway_cfg& cfg);

} // namespace msecgw::config::detail
