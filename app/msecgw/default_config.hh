#pragma once
// The embedded default configuration: what `msecgw` runs without --config (scripts/demo.sh).
// One config serves both demo gateways: the sender side seals with demo-out, the receiver side
// opens with demo-in (same SPI and key). The key is a published demo key, for demos only.

#include <string_view>

namespace msecgw::app {

inline constexpr std::string_view default_config_name = "<embedded default>";

inline constexpr std::string_view default_config = R"(# msecgw embedded default: port 0 clear, port 1 protected
state_dir: /var/tmp/msecgw-demo
ports:
  - {port: 0, side: clear}
  - {port: 1, side: protected, mtu: 1500}
sas:
  # DEMO KEY: published in the source, never use it for real traffic.
  - {name: demo-out, dir: out, spi: 0x00001001, aead: aes-128-gcm,
     key: "0x000102030405060708090a0b0c0d0e0fdeadbeef"}
  - {name: demo-in, dir: in, spi: 0x00001001, aead: aes-128-gcm,
     key: "0x000102030405060708090a0b0c0d0e0fdeadbeef"}
policies:
  # admin-scoped groups never leave this region
  - {dir: out, dst: 239.255.0.0/16, action: discard}
  - {dir: out, dst: 239.0.0.0/8, action: protect, sa: demo-out}
  - {dir: out, dst: 'ff3e::/16', action: protect, sa: demo-out}
  - {dir: out, dst: 224.0.0.0/4, action: bypass}
  - {dir: out, dst: 'ff00::/8', action: bypass}
  - {dir: in, dst: 239.0.0.0/8, action: protect, sa: demo-in}
  - {dir: in, dst: 'ff3e::/16', action: protect, sa: demo-in}
  - {dir: in, dst: 224.0.0.0/4, action: bypass}
  - {dir: in, dst: 'ff00::/8', action: bypass}
  # no rule for unicast: discarded and counted as policy_no_match (RFC 4301 default)
)";

} // namespace msecgw::app
