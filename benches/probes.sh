#!/usr/bin/env bash
# Cost of uprobe counting, kprof vs bpftrace (issue #15, done means 5):
#   a call-heavy program (examples/workloads/probe_calls.c: N calls of a tiny `work`, no malloc)
#   timed bare, under `kprof stat -e u:PROG:work` (counting), under `kprof record -e u:PROG:work`
#   (a sample with registers per hit) and under bpftrace's `uprobe:PROG:work { @ = count(); }`.
# The program times its own loop (loop_ns), so the tools' start-up (bpftrace compiles its
# program first) is not counted. Per-hit cost = (probed loop - bare loop) / N.
# Output: a markdown table for benches/README.md. Needs root (uprobes), bpftrace, cc, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${KPROF_BENCH_DIR:-target/bench-probes}
mkdir -p "$work"
cargo build --release --quiet
kprof=$PWD/target/release/kprof
prog=$PWD/$work/probe_calls
cc -O2 -g examples/workloads/probe_calls.c -o "$prog"
calls=${KPROF_BENCH_CALLS:-2000000}
runs=${KPROF_BENCH_RUNS:-5}

# Median loop_ns of `runs` runs of the command "$@" (the program's output goes to stdout).
loop_median() {
  for _ in $(seq "$runs"); do "$@" 2>/dev/null | grep -o 'loop_ns=[0-9]*' | cut -d= -f2; done |
    python3 -c "import sys,statistics;print(int(statistics.median(int(l) for l in sys.stdin)))"
}

bare=$(loop_median "$prog" "$calls" 0)
stat=$(loop_median "$kprof" stat -e "u:$prog:work" -- "$prog" "$calls" 0)
record=$(loop_median "$kprof" record -q -m 1024 -o "$work/k.data" -e "u:$prog:work" -- "$prog" "$calls" 0)
bpf=$(loop_median bpftrace -e "uprobe:$prog:work { @c = count(); }" -c "$prog $calls 0")

echo "## uprobe counting cost on $(uname -m), $(nproc) CPUs, Linux $(uname -r), $(date -u +%Y-%m-%d)"
echo
echo "Workload: \`probe_calls $calls 0\` ($calls calls of \`work\`), loop time as the program measures it, median of $runs runs."
echo
echo "| tool | loop | slowdown | per hit |"
echo "|---|---|---|---|"
for row in "bare:$bare" "kprof stat -e u:…:work:$stat" "kprof record -e u:…:work:$record" "bpftrace uprobe count():$bpf"; do
  name=${row%:*}; t=${row##*:}
  python3 -c "b=$bare;t=$t;n=$calls;print('| $name | %.1f ms | %s | %s |' % (t/1e6, '—' if t==b else '%+.0f%%' % ((t/b-1)*100), '—' if t==b else '%.0f ns' % ((t-b)/n)))"
done
