# Sourced by the perf/*_bench.sh scripts: picks the EAL memory arguments for every DPDK process of
# one benchmark run and sets $mem and $note (what to record with the results). $bench names the
# caller in messages.
#
# Hugepages when we can (root): 512 x 2 MB, hugetlbfs on /dev/hugepages. Otherwise --no-huge.
# NO_HUGE=1 forces --no-huge.
mem="--no-huge -m 1024"
note="no hugepages (--no-huge -m 1024, 4 KB pages)"
if [ "${NO_HUGE:-0}" != 1 ] && [ "$(id -u)" = 0 ]; then
  if [ "$(cat /proc/sys/vm/nr_hugepages)" -lt 512 ]; then
    echo 512 > /proc/sys/vm/nr_hugepages 2>/dev/null || true
  fi
  if ! grep -qs ' /dev/hugepages hugetlbfs ' /proc/mounts; then
    mkdir -p /dev/hugepages
    mount -t hugetlbfs none /dev/hugepages 2>/dev/null || true
  fi
  free=$(awk '/^HugePages_Free:/ {print $2}' /proc/meminfo)
  size_kb=$(awk '/^Hugepagesize:/ {print $2}' /proc/meminfo)
  if grep -qs ' /dev/hugepages hugetlbfs ' /proc/mounts && [ "${free:-0}" -ge 192 ] && [ "${size_kb:-0}" = 2048 ]; then
    # --huge-unlink: the pages go back to the pool when each run exits.
    mem="-m 256 --huge-unlink"
    note="hugepages: 2 MB pages, ${free} free of $(cat /proc/sys/vm/nr_hugepages) (-m 256 --huge-unlink)"
  fi
fi
echo "$bench: memory: $note"
[ "$mem" = "--no-huge -m 1024" ] && echo "$bench: falling back to --no-huge (not root, or no hugepages could be reserved)"
true
