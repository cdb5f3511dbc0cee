#!/usr/bin/python3
"""Meson test (TAP) for one fuzz target: replays every file of its seed corpus, then, in a libFuzzer
build, fuzzes it for MSECGW_FUZZ_SECONDS (default 20) seconds from that corpus.
New inputs go to a temporary directory: the checked-in corpus is never modified.

usage: run_fuzz.py BINARY CORPUS_DIR replay|fuzz
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile


def tap(n, ok, what, out=""):
    print(f"{'ok' if ok else 'not ok'} {n} - {what}")
    if not ok:
        for line in out.splitlines()[-60:]:
            print(f"# {line}")


def main(binary, corpus, mode):
    files = sorted(os.path.join(corpus, f) for f in os.listdir(corpus))
    name = os.path.basename(corpus)
    print("1..2")
    r = subprocess.run([binary] + files, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       errors="replace")
    tap(1, r.returncode == 0 and len(files) > 0, f"{name}: {len(files)} corpus inputs replay cleanly", r.stdout)
    if mode != "fuzz":
        print("ok 2 # SKIP no libFuzzer build (configure with CXX=clang++ -Dfuzz=true)")
        return 0 if r.returncode == 0 else 1
    seconds = int(os.environ.get("MSECGW_FUZZ_SECONDS", "20"))
    work = tempfile.mkdtemp(prefix=f"msecgw-fuzz-{name}-")
    try:
        r2 = subprocess.run([binary, f"-max_total_time={seconds}", "-timeout=60", "-rss_limit_mb=2048",
                             "-print_final_stats=1", f"-artifact_prefix={work}/", work, corpus],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
        m = re.search(r"stat::number_of_executed_units:\s*(\d+)", r2.stdout)
        execs = m.group(1) if m else "?"
        crashes = [f for f in os.listdir(work) if re.match(r"(crash|leak|timeout|oom)-", f)]
        ok = r2.returncode == 0 and not crashes
        tap(2, ok, f"{name}: fuzzed {seconds} s, {execs} executions, no crash, leak or hang", r2.stdout)
        for c in crashes:
            keep = os.path.join(os.environ.get("MESON_BUILD_ROOT", "/tmp"), f"fuzz-{name}-{c}")
            shutil.copy(os.path.join(work, c), keep)
            print(f"# reproducer kept: {keep}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if r.returncode == 0 and ok else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
