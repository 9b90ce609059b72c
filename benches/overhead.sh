#!/usr/bin/env bash
# Recording overhead, kprof vs perf (issue #3, point 3):
#   - a fixed amount of CPU work (examples/workloads/fixed.c) timed bare, under `perf record` and
#     under `kprof record`, at 999 Hz and 4999 Hz with -g;
#   - start-up and shut-down cost: `kprof record -- true` vs `perf record -- true`.
# perf runs with --no-bpf-event (it otherwise spends ~0.9 s at exit on its BPF thread).
# Output: a markdown table for benches/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${KPROF_BENCH_DIR:-target/bench-overhead}
mkdir -p "$work"
cargo build --release --quiet
kprof=$PWD/target/release/kprof
cc -O2 -fno-omit-frame-pointer examples/workloads/fixed.c -o "$work/fixed"
iters=${KPROF_BENCH_ITERS:-1000}
runs=${KPROF_BENCH_RUNS:-7}

median() { hyperfine --style none --runs "$runs" --warmup 1 --export-json "$work/h.json" "$1" >/dev/null 2>&1
  python3 -c "import json;print('%.4f'%json.load(open('$work/h.json'))['results'][0]['median'])"; }

bare=$(median "$work/fixed $iters")
echo "## Recording overhead on $(uname -m), $(nproc) CPUs, $(date -u +%Y-%m-%d)"
echo
echo "Workload: \`fixed $iters\` (same instructions every run), bare median ${bare} s, $runs runs each."
echo
echo "| recorder | rate | median | slowdown |"
echo "|---|---|---|---|"
for hz in 999 4999; do
  p=$(median "perf record -q --no-bpf-event -F $hz -g -o $work/perf.data -- $work/fixed $iters")
  k=$(median "$kprof record -q -F $hz -g -o $work/kprof.data -- $work/fixed $iters")
  for who in perf kprof; do
    t=$([[ $who == perf ]] && echo "$p" || echo "$k")
    python3 -c "print('| $who | $hz Hz -g | %.4f s | %+.2f%% |' % ($t, ($t/$bare-1)*100))"
  done
done
echo
echo "| start-up + shut-down | median |"
echo "|---|---|"
echo "| perf record -- true | $(median "perf record -q --no-bpf-event -o $work/perf.data -- true") s |"
echo "| kprof record -- true | $(median "$kprof record -q -o $work/kprof.data -- true") s |"
