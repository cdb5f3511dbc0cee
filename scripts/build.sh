#!/usr/bin/env bash
# Configures (once) and builds msecgw into $MSECGW_BUILD_DIR (default: build/, release).
set -euo pipefail
cd "$(dirname "$0")/.."
builddir=${MSECGW_BUILD_DIR:-build}
if [ ! -f "$builddir/build.ninja" ]; then
  meson setup "$builddir" --buildtype=release ${MSECGW_MESON_ARGS:-} >/dev/null
fi
meson compile -C "$builddir" >/dev/null || meson compile -C "$builddir"
