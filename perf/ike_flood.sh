#!/usr/bin/env bash
# IKE flood against a real key server (docs/robustness.md "IKE flood"): starts `msecgw --gcks-only`
# (SQLite state) on 127.0.0.1, floods it with perf/ike_flood (10^5 IKE_SA_INIT from 127.0.0.2-17,
# 64 source ports, every COOKIE answered, one garbage datagram per 10 requests, as fast as the
# sockets take them), then stops it and prints the key server's counters and its peak resident
# memory (VmHWM). Loopback only. About 15 seconds.
#
#   perf/ike_flood.sh [ike_flood options, e.g. --requests 1000000 --rate 20000]
#
# Environment: MSECGW_BUILD_DIR (default build), PORT (default 18850).
set -euo pipefail
cd "$(dirname "$0")/.."
builddir=${MSECGW_BUILD_DIR:-build}
msecgw=$builddir/app/msecgw/msecgw
flood=$builddir/perf/ike_flood
port=${PORT:-18850}
[ -x "$msecgw" ] && [ -x "$flood" ] || { echo "ike_flood: build first (scripts/build.sh)" >&2; exit 1; }
work=$(mktemp -d /tmp/msecgw_ike_flood.XXXXXX)
trap 'kill "$ks" 2>/dev/null || true; rm -rf "$work"' EXIT
(umask 077; od -An -tx1 -N32 /dev/urandom | tr -d ' \n' > "$work/storage.key")
cat > "$work/gcks.yaml" <<YAML
groups:
  - {name: video, id: 7, dst: 239.1.0.0/16, members: [gw-a], senders: [gw-a]}
key_server:
  listen: 127.0.0.1:$port
  peers:
    - {identity: gw-a, psk: "0x$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')"}
  state_path: $work/gcks.db
  storage_key_file: $work/storage.key
YAML
"$msecgw" --gcks-only --config "$work/gcks.yaml" > "$work/gcks.log" 2>&1 &
ks=$!
for _ in $(seq 100); do grep -q "listening on" "$work/gcks.log" && break; sleep 0.05; done
echo "key server pid $ks, VmHWM at start $(awk '/^VmHWM/ {print $2}' /proc/$ks/status) KiB"
"$flood" --target "127.0.0.1:$port" --requests 100000 --sources 16 --ports 4 --garbage-every 10 --echo-cookies \
  --watch "$ks" "$@"
echo "key server VmHWM after the flood: $(awk '/^VmHWM/ {print $2}' /proc/$ks/status) KiB"
echo "key server CPU seconds: $(awk '{printf "%.2f", ($14 + $15) / 100}' /proc/$ks/stat)"
kill -TERM "$ks"
wait "$ks" || true
grep "key server:" "$work/gcks.log"
