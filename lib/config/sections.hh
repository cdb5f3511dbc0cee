#pragma once
// Internal: parsers of the config's top-level sections.

#include "yaml_fields.hh"

namespace msecgw::config::detail {

/// Needs nothing before it; ports, SAs and policies name these.
result<void> parse_regions(const at& a, gateway_cfg& cfg);
result<void> parse_ports(const at& a, gateway_cfg& cfg);
result<void> parse_sas(const at& a, gateway_cfg& cfg);
/// Needs the SAs and groups parsed first (a protect policy names one).
result<void> parse_policies(const at& a, gateway_cfg& cfg);
result<void> parse_groups(const at& a, gateway_cfg& cfg);
/// Need the groups parsed first.
result<void> parse_key_server(const at& a, gateway_cfg& cfg);
result<void> parse_member(const at& a, gateway_cfg& cfg);

/// Who reads a source_auth block: an outbound SA (signs), an inbound SA (verifies) or a group (both).
enum class auth_role : uint8_t { sender, verifier, group };
result<std::shared_ptr<source_auth_cfg>> parse_source_auth(const at& a, auth_role role);
/// Numbers `block` (its slot) and lists it in cfg.source_auth.
void add_source_auth(gateway_cfg& cfg, std::shared_ptr<const source_auth_cfg>& block);

} // namespace msecgw::config::detail
