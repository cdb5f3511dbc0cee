#pragma once
// The embedded default configuration: what `msecgw` runs without --config (scripts/demo.sh):
// the built-in key server and a member of its groups that seals and opens them. The demo's second
// gateway (scripts/demo-receiver.yaml) is another member. The pre-shared keys are published demo
// keys, for demos only.

#include <string_view>

namespace msecgw::app {

inline constexpr std::string_view default_config_name = "<embedded default>";

inline constexpr std::string_view default_config = R"(# msecgw embedded default: port 0 clear, port 1 protected; keys from the built-in key server
state_dir: /var/tmp/msecgw-demo
ports:
  - {port: 0, side: clear}
  - {port: 1, side: protected, mtu: 1500}
groups:
  # Every 4 s a new group key, so that a short demo shows rekeys under traffic.
  - {name: demo4, id: 1, dst: 239.0.0.0/8, members: [demo-a, demo-b], senders: [demo-a, demo-b],
     tek_lifetime_seconds: 60, rekey_period_seconds: 4}
  - {name: demo6, id: 2, dst: 'ff3e::/16', members: [demo-a, demo-b], senders: [demo-a, demo-b],
     tek_lifetime_seconds: 60, rekey_period_seconds: 4}
# DEMO PRE-SHARED KEYS: published in the source, never use them for real.
key_server:
  listen: 127.0.0.1:848
  peers:
    - {identity: demo-a, psk: "0x64656d6f2d612d70736b2d6e6f742d736563726574"}
    - {identity: demo-b, psk: "0x64656d6f2d622d70736b2d6e6f742d736563726574"}
member:
  identity: demo-a
  psk: "0x64656d6f2d612d70736b2d6e6f742d736563726574"
  key_server: 127.0.0.1:848
  activation_delay_ms: 500
  deactivation_delay_ms: 1000
policies:
  # admin-scoped groups never leave this region
  - {dir: out, dst: 239.255.0.0/16, action: discard}
  - {dir: out, dst: 239.0.0.0/8, action: protect, group: demo4}
  - {dir: out, dst: 'ff3e::/16', action: protect, group: demo6}
  - {dir: out, dst: 224.0.0.0/4, action: bypass}
  - {dir: out, dst: 'ff00::/8', action: bypass}
  - {dir: in, dst: 239.0.0.0/8, action: protect, group: demo4}
  - {dir: in, dst: 'ff3e::/16', action: protect, group: demo6}
  - {dir: in, dst: 224.0.0.0/4, action: bypass}
  - {dir: in, dst: 'ff00::/8', action: bypass}
  # no rule for unicast: discarded and counted as policy_no_match (RFC 4301 default)
)";

} // namespace msecgw::app
