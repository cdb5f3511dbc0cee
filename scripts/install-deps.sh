#!/usr/bin/env bash
# Installs the Debian 12 packages msecgw needs to build, test and demo.
# Idempotent and quiet: does nothing when everything is already there.
set -euo pipefail

packages=(
  build-essential pkg-config meson ninja-build
  libdpdk-dev dpdk dpdk-dev libipsec-mb-dev libssl-dev libyaml-cpp-dev
  libgtest-dev libgmock-dev libpcap-dev libnuma-dev prometheus-cpp-dev libsqlite3-dev
  clang libclang-rt-14-dev  # libFuzzer and the sanitizer runtimes for fuzz/ (scripts/fuzz.sh)
  python3 python3-scapy python3-cryptography python3-numpy tshark
  prometheus  # the metrics test scrapes the gateway with a real server and promtool
  iproute2 procps
  ethtool  # [C] testbed: kernel hosts on veths send with real UDP checksums (tx offload off)
  etcd-server etcd-client libcpp-httplib-dev nlohmann-json3-dev  # [H] key servers on etcd (JSON gateway), real 3-member clusters in tests
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages (${missing[*]}); run as root or install them" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
