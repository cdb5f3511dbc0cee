#pragma once
// The embedded default configuration: what `msecgw` runs without --config (scripts/demo.sh).

#include <string_view>

namespace msecgw::app {

inline constexpr std::string_view default_config_name = "<embedded default>";

inline constexpr std::string_view default_config = R"(# msecgw embedded default: port 0 clear, port 1 protected
state_dir: /var/tmp/msecgw-demo
ports:
  - {port: 0, side: clear}
  - {port: 1, side: protected, mtu: 1500}
policies:
  # admin-scoped groups never leave this region
  - {dir: out, dst: 239.255.0.0/16, action: discard}
  - {dir: out, dst: 224.0.0.0/4, action: bypass}
  - {dir: out, dst: ff00::/8, action: bypass}
  - {dir: in, dst: 224.0.0.0/4, action: bypass}
  - {dir: in, dst: ff00::/8, action: bypass}
  # no rule for unicast: discarded and counted as policy_no_match (RFC 4301 default)
)";

} // namespace msecgw::app
