#!/usr/bin/env bash
# Cost of `kprof trace` aggregations against bpftrace doing the same (issue #14, point 3):
#   - slowdown of a syscall-heavy workload (examples/workloads/iosizes.c: N one-byte reads of
#     /dev/zero, plus 1/1000 of them of 4 KiB) under `kprof trace --hist count` and under
#     bpftrace's `hist(args->count)`, both filtered to the workload;
#   - the same with a filter that rejects 99.9% of the events (kprof: `--filter 'count > 1'`
#     set in the kernel; bpftrace: the same predicate in its BPF program);
#   - start-up + shut-down: tracing `true`;
#   - an event storm through a small ring: kprof's printed lost count must make the histogram's
#     total add up to the number of reads perf stat counts on an identical run.
# Needs root, bpftrace, perf, a C compiler, Python 3 and Rust. Output: markdown for
# benches/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${KPROF_BENCH_DIR:-target/bench-trace}
mkdir -p "$work"
cargo build --release --quiet
kprof=$PWD/target/release/kprof
cc -O2 examples/workloads/iosizes.c -o "$work/iosizes"
n=${KPROF_BENCH_READS:-1000000}
runs=${KPROF_BENCH_RUNS:-5}
big=$((n / 1000))
load="$work/iosizes reads 1:$n,4096:$big"

# median wall seconds of `runs` runs of a shell command (its output discarded)
median() {
  python3 - "$runs" "$1" <<'EOF'
import subprocess, sys, time
runs, cmd = int(sys.argv[1]), sys.argv[2]
times = []
for _ in range(runs):
    t = time.perf_counter()
    subprocess.run(cmd, shell=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    times.append(time.perf_counter() - t)
times.sort()
print("%.4f" % times[len(times) // 2])
EOF
}

bt_hist='tracepoint:syscalls:sys_enter_read /pid == cpid/ { @ = hist(args->count); }'
bt_filtered='tracepoint:syscalls:sys_enter_read /pid == cpid && args->count > 1/ { @ = hist(args->count); }'

bare=$(median "$load")
bt=$(median "bpftrace -e '$bt_hist' -c '$load'")
kp=$(median "$kprof trace -q -e syscalls:sys_enter_read --hist count -- $load")
btf=$(median "bpftrace -e '$bt_filtered' -c '$load'")
kpf=$(median "$kprof trace -q -e syscalls:sys_enter_read --filter 'count > 1' --hist count -- $load")
bt0=$(median "bpftrace -e '$bt_hist' -c /bin/true")
kp0=$(median "$kprof trace -q -e syscalls:sys_enter_read --hist count -- /bin/true")

row() { python3 -c 'import sys; t, b = float(sys.argv[2]), float(sys.argv[3]); print("| %s | %.3f s | %.2f× |" % (sys.argv[1], t, t / b))' "$1" "$2" "$bare"; }
echo "## kprof trace vs bpftrace on $(uname -m), $(nproc) CPUs, Linux $(uname -r | cut -d- -f1), $(date -u +%Y-%m-%d)"
echo
echo "Workload: \`iosizes reads 1:$n,4096:$big\` ($((n + big)) reads), median of $runs runs; bare ${bare} s."
echo
echo "| tracer | wall | slowdown (× bare) |"
echo "|---|---|---|"
row "bpftrace \`hist(args->count)\`" "$bt"
row "kprof trace \`--hist count\`" "$kp"
row "bpftrace, predicate \`args->count > 1\`" "$btf"
row "kprof trace \`--filter 'count > 1' --hist count\`" "$kpf"
echo
echo "| start-up + shut-down (tracing \`true\`) | wall |"
echo "|---|---|"
echo "| bpftrace -e '…hist(args->count)' -c true | ${bt0} s |"
echo "| kprof trace -e syscalls:sys_enter_read --hist count -- true | ${kp0} s |"

# Event storm through a 1-page ring: counted + lost must equal what perf stat counts.
storm="$work/iosizes reads 1:$((n * 2))"
expected=$(perf stat -x, -e syscalls:sys_enter_read -- $storm 2>&1 >/dev/null | awk -F, '/sys_enter_read/ {print $1}')
"$kprof" trace -e syscalls:sys_enter_read --hist count --json -m 1 -- $storm >"$work/storm.json" 2>"$work/storm.err" || true
python3 - "$work/storm.json" "$expected" "$work/storm.err" <<'EOF'
import json, sys
doc = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
expected = int(sys.argv[2])
counted = sum(b["count"] for e in doc["maps"][0]["entries"] for b in e["buckets"])
lost = doc["lost"]
note = open(sys.argv[3]).read().strip().replace("\n", " ")
print()
print("Event storm (`-m 1`, %d reads): counted %d + lost %d = %d; perf stat counts %d: %s." % (
    expected, counted, lost, counted + lost, expected,
    "exact" if counted + lost == expected else "MISMATCH"))
print("kprof's note: `%s`" % note)
EOF
