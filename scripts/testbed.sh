#!/usr/bin/env bash
# The multi-gateway testbed (docs/regions.md): Linux network namespaces joined by veth pairs and
# two bridges, four msecgw processes (edge A, boundary 1, boundary 2, edge B) on net_af_packet,
# kernel multicast hosts on both ends, and an unauthorised host on the trunk.
#
#   scripts/testbed.sh up       create namespaces and links, start the gateways (idempotent)
#   scripts/testbed.sh down     stop the gateways this script started, delete the namespaces
#   scripts/testbed.sh status   namespaces, gateway processes, their counters
#
#   [hA] sender ─ [gw-a] edge ═ESP leaf A═ [gw-1] boundary ═ESP trunk (br-t, + [hC] without key)═
#     [gw-2] boundary ═ESP leaf B═ [gw-b] edge ─ br-b ─ [hB1] [hB2] receivers
# (the full picture, addresses and SPIs: docs/regions.md). Every box is a namespace $PREFIX-<box>.
#
# Environment: TESTBED_PREFIX (namespace prefix, default "tb"), TESTBED_DIR (configs, logs,
# CLI sockets, state; default /tmp/msecgw-testbed-$TESTBED_PREFIX), MSECGW_BUILD_DIR (default
# build), TESTBED_CPUS ("main,worker" CPUs every gateway uses; default the first and last CPU
# this shell may run on). Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
P=${TESTBED_PREFIX:-tb}
dir=${TESTBED_DIR:-/tmp/msecgw-testbed-$P}
bin=${MSECGW_BIN:-"$root/${MSECGW_BUILD_DIR:-build}/app/msecgw/msecgw"}
cli=${MSECGW_CLI_BIN:-"$root/${MSECGW_BUILD_DIR:-build}/app/msecgw-cli/msecgw-cli"}
gateways=(gw-a gw-1 gw-2 gw-b)
hosts=(hA hB1 hB2 hC)

ns() { echo "$P-$1"; }
in_ns() { local n=$1; shift; ip netns exec "$(ns "$n")" "$@"; }

# veth: namespace:name:ifindex namespace:name:ifindex. Each gateway's ends get ifindexes in
# their own range: DPDK 22.11's net_af_packet uses (pid ^ ifindex) & 0xffff as its fanout id.
veth() {
  IFS=: read -r na a ia <<<"$1"
  IFS=: read -r nb b ib <<<"$2"
  in_ns "$na" ip link show "$a" >/dev/null 2>&1 && return 0
  in_ns "$na" ip link add "$a" index "$ia" type veth peer name "$b" index "$ib" netns "$(ns "$nb")"
  in_ns "$na" ip link set "$a" up
  in_ns "$nb" ip link set "$b" up
}

bridge() { # switch-namespace bridge name, ports...
  local br=$1; shift
  in_ns sw ip link show "$br" >/dev/null 2>&1 ||
    in_ns sw ip link add "$br" type bridge mcast_snooping 0
  in_ns sw ip link set "$br" up
  for p in "$@"; do in_ns sw ip link set "$p" master "$br"; done
}

host_addr() { # host, ifname, IPv4/len, IPv6/len
  in_ns "$1" ip addr replace "$3" dev "$2"
  in_ns "$1" ip -6 addr replace "$4" dev "$2" nodad
  # Multicast from senders in other leaves arrives here with their source address: no
  # reverse-path filter, and routes to every testbed prefix on the segment.
  in_ns "$1" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 "net.ipv4.conf.$2.rp_filter=0"
  in_ns "$1" ip route replace 10.0.0.0/8 dev "$2"
  in_ns "$1" ip -6 route replace fd00::/8 dev "$2"
  # A veth hands a kernel UDP datagram on with its checksum still to be filled in (tx offload);
  # across the gateways nobody fills it in, and the receivers' kernels would drop the datagram.
  in_ns "$1" ethtool -K "$2" tx off >/dev/null
}

gw_running() { [ -f "$dir/$1.pid" ] && kill -0 "$(cat "$dir/$1.pid")" 2>/dev/null; }

start_gateway() { # name, iface of port 0, iface of port 1
  local name=$1 cpus main worker
  gw_running "$name" && return 0
  cpus=${TESTBED_CPUS:-$(taskset -pc $$ | sed 's/.*: //' | tr ',-' '  ' | awk '{print $1","$NF}')}
  IFS=, read -r main worker <<<"$cpus"
  mkdir -p "$dir/state-$name"
  sed "s|@STATE@|$dir/state-$name|" "scripts/testbed/$name.yaml" >"$dir/$name.yaml"
  rm -f "$dir/$name.sock" "$dir/$name.keylog"
  # Every gateway: main lcore on CPU $main, its one worker on CPU $worker (shared by all four;
  # idle_sleep_us in the configs lets them take turns at low rates).
  # Not through in_ns (a function would run in a subshell whose pid $! is): `ip netns exec` execs
  # the gateway, so the pid file holds the gateway's pid (SIGHUP reloads, down stops it).
  ip netns exec "$(ns "$name")" "$bin" --no-huge -m 512 --no-pci --lcores "0@$main,1@$worker" --file-prefix "$P-$name" \
    --log-level 'lib.*:warning' --vdev "net_af_packet0,iface=$2,framecnt=2048" \
    --vdev "net_af_packet1,iface=$3,framecnt=2048" -- --config "$dir/$name.yaml" \
    --cli-socket "$dir/$name.sock" --keylog "$dir/$name.keylog" --stats-json "$dir/$name.json" \
    >"$dir/$name.log" 2>&1 &
  echo $! >"$dir/$name.pid"
}

up() {
  [ -x "$bin" ] || { echo "testbed: $bin not built (scripts/build.sh)" >&2; exit 1; }
  command -v ethtool >/dev/null || { echo "testbed: needs ethtool (scripts/install-deps.sh)" >&2; exit 1; }
  mkdir -p "$dir"
  for n in sw "${gateways[@]}" "${hosts[@]}"; do
    ip netns list | grep -qx "$(ns "$n")\( .*\)\?" || ip netns add "$(ns "$n")"
    in_ns "$n" ip link set lo up
  done
  # Gateways and the switch speak no IPv6 themselves (no router solicitations or MLD reports
  # of their own on the segments); hosts do.
  for n in sw "${gateways[@]}"; do
    in_ns "$n" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  done
  veth hA:eth0:8001 gw-a:a0:4352
  veth gw-a:a1:4353 gw-1:p0:4608
  veth gw-1:p1:4609 sw:t1:8101
  veth gw-2:p0:4864 sw:t2:8102
  veth hC:eth0:8003 sw:tc:8103
  veth gw-2:p1:4865 gw-b:b1:5120
  veth gw-b:b0:5121 sw:b0:8201
  veth hB1:eth0:8011 sw:b1:8202
  veth hB2:eth0:8012 sw:b2:8203
  for n in gw-a gw-1 gw-2 gw-b; do
    for i in $(in_ns "$n" ls /sys/class/net); do
      [ "$i" = lo ] || in_ns "$n" sysctl -qw "net.ipv6.conf.$i.disable_ipv6=1" 2>/dev/null || true
    done
  done
  bridge br-t t1 t2 tc
  bridge br-b b0 b1 b2
  host_addr hA eth0 10.1.0.1/24 fd00:a::1/64
  host_addr hC eth0 10.3.0.1/24 fd00:c::1/64
  host_addr hB1 eth0 10.2.0.11/24 fd00:b::11/64
  host_addr hB2 eth0 10.2.0.12/24 fd00:b::12/64
  start_gateway gw-a a0 a1
  start_gateway gw-1 p0 p1
  start_gateway gw-2 p0 p1
  start_gateway gw-b b0 b1
  for name in "${gateways[@]}"; do
    # up: its keylog is written (the gateway is built) and its CLI answers
    for _ in $(seq 600); do
      [ -s "$dir/$name.keylog" ] && "$cli" --socket "$dir/$name.sock" show stats >/dev/null 2>&1 && break
      gw_running "$name" || { echo "testbed: $name exited:" >&2; tail -20 "$dir/$name.log" >&2; exit 1; }
      sleep 0.1
    done
    [ -s "$dir/$name.keylog" ] || { echo "testbed: $name did not come up" >&2; exit 1; }
  done
  echo "testbed $P up: gateways ${gateways[*]} (CLI sockets, logs, keylogs in $dir)"
}

down() {
  for name in "${gateways[@]}"; do
    if gw_running "$name"; then
      kill "$(cat "$dir/$name.pid")"
      for _ in $(seq 100); do gw_running "$name" || break; sleep 0.1; done
    fi
    rm -f "$dir/$name.pid"
    rm -rf "/var/run/dpdk/$P-$name"
  done
  for n in sw "${gateways[@]}" "${hosts[@]}"; do
    ip netns del "$(ns "$n")" 2>/dev/null || true
  done
  echo "testbed $P down"
}

status() {
  for n in sw "${gateways[@]}" "${hosts[@]}"; do
    printf '%-8s %s\n' "$(ns "$n")" "$(ip netns list | grep -q "^$(ns "$n")\b" && echo present || echo absent)"
  done
  for name in "${gateways[@]}"; do
    if gw_running "$name"; then
      echo "== $name (pid $(cat "$dir/$name.pid"))"
      "$cli" --socket "$dir/$name.sock" show stats 2>/dev/null | head -20 || true
    else
      echo "== $name not running"
    fi
  done
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
