#!/usr/bin/env bash
# Builds msecgw_<version>_<arch>.deb with meson install + dpkg-deb (the documented equivalent of
# dpkg-buildpackage: no debhelper needed). Installs /usr/bin/msecgw and msecgw-cli, the systemd
# unit, /etc/msecgw/msecgw.yaml and /etc/default/msecgw (conffiles), the port profiles and the docs.
# usage: packaging/build-deb.sh [OUTDIR]   (default: build-deb/)
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-build-deb}")
build=$out/build
root=$out/root
version=$(sed -n "s/^ *version : '\(.*\)',/\1/p" meson.build)
arch=$(dpkg --print-architecture)
rm -rf "$root"
mkdir -p "$out"
if [ ! -d "$build" ]; then
  meson setup "$build" --prefix=/usr -Dtests=false -Ddrivers_cfg_dir=/usr/share/msecgw/drivers_cfg >/dev/null
fi
meson compile -C "$build" msecgw msecgw-cli >/dev/null
install -D -m 0755 "$build/app/msecgw/msecgw" "$root/usr/bin/msecgw"
install -D -m 0755 "$build/app/msecgw-cli/msecgw-cli" "$root/usr/bin/msecgw-cli"
strip --strip-unneeded "$root/usr/bin/msecgw" "$root/usr/bin/msecgw-cli"
install -D -m 0644 packaging/msecgw.service "$root/lib/systemd/system/msecgw.service"
install -D -m 0600 packaging/msecgw.yaml "$root/etc/msecgw/msecgw.yaml"
install -D -m 0644 packaging/msecgw.default "$root/etc/default/msecgw"
mkdir -p "$root/usr/share/msecgw/drivers_cfg" "$root/usr/share/doc/msecgw"
cp drivers_cfg/*.yaml "$root/usr/share/msecgw/drivers_cfg/"
cp README.md docs/*.md "$root/usr/share/doc/msecgw/"
cp -r docs/grafana "$root/usr/share/doc/msecgw/"
# Depends: the Debian packages of every shared library the binaries load.
# (merged /usr: a library is registered under /lib or /usr/lib, whichever path its package used)
owner() {
  local lib=$1 alt
  for alt in "$lib" "${lib#/usr}" "/usr$lib" "$(realpath "$lib")"; do
    dpkg -S "$alt" 2>/dev/null | head -1 | cut -d: -f1 && return 0
  done
  return 0
}
deps=$(for lib in $(ldd "$root/usr/bin/msecgw" "$root/usr/bin/msecgw-cli" | awk '/=> \//{print $3}' | sort -u); do
         owner "$lib"
       done | sort -u | paste -sd, | sed 's/,/, /g')
mkdir -p "$root/DEBIAN"
cat > "$root/DEBIAN/control" <<CONTROL
Package: msecgw
Version: $version
Architecture: $arch
Maintainer: msecgw developers <msecgw@localhost>
Depends: $deps
Recommends: dpdk
Section: net
Priority: optional
Description: DPDK multicast security gateway (group ESP, AES-GCM)
 Protects IP multicast at the boundary of a key region: worker lcores classify flows against
 a security policy and seal or open them as group ESP; operated with msecgw-cli, Prometheus
 metrics, DPDK telemetry and dpdk-dumpcap.
CONTROL
printf '/etc/msecgw/msecgw.yaml\n/etc/default/msecgw\n' > "$root/DEBIAN/conffiles"
cat > "$root/DEBIAN/postinst" <<'POSTINST'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi
POSTINST
chmod 0755 "$root/DEBIAN/postinst"
deb="$out/msecgw_${version}_${arch}.deb"
dpkg-deb --root-owner-group --build "$root" "$deb" >/dev/null
echo "$deb"
