#!/usr/bin/env bash
# Cost of off-CPU recording (issue #16 point 3): `perf bench sched pipe` (two tasks passing a
# byte through pipes: a context-switch storm) timed bare, under `kprof record --off-cpu -g`, and
# under the off-CPU bpftrace script (benches/offcpu.bt, the one tests/offcpu.rs compares with).
# The bench's own usecs/op is the measure (median of RUNS runs). Lost events are exact: kprof's
# LOST counts and unknown intervals, as `kprof flame --off-cpu` states them; bpftrace sums in
# kernel maps, so it has no event stream to lose (its map limits would show as errors).
# Output: a markdown table for benches/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${KPROF_BENCH_DIR:-target/bench-offcpu}
mkdir -p "$work"
cargo build --release --quiet --bin kprof
kprof=$PWD/target/release/kprof
loops=${KPROF_BENCH_LOOPS:-50000}
runs=${KPROF_BENCH_RUNS:-5}

usecs() { grep -o '[0-9.]* usecs/op' | cut -d' ' -f1; }
median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

# The three are interleaved, run after run, so that they share whatever else the machine does.
bare_runs=() kprof_runs=() bt_runs=()
for i in $(seq "$runs"); do
  bare_runs+=("$(perf bench sched pipe -l "$loops" 2>&1 | usecs)")
  "$kprof" record --off-cpu -g ${KPROF_BENCH_KPROF_ARGS:-} -o "$work/off.data" -- perf bench sched pipe -l "$loops" \
    >"$work/kprof-$i.out" 2>"$work/kprof-$i.err"
  kprof_runs+=("$(usecs <"$work/kprof-$i.out")")
  bpftrace benches/offcpu.bt perf >"$work/bt-$i.out" 2>/dev/null &
  bt=$!
  until grep -q tracing "$work/bt-$i.out" 2>/dev/null; do sleep 0.1; done
  bt_runs+=("$(perf bench sched pipe -l "$loops" 2>&1 | usecs)")
  kill -INT "$bt"
  wait "$bt" || true
done
bare=$(printf '%s\n' "${bare_runs[@]}" | median)
kprof_median=$(printf '%s\n' "${kprof_runs[@]}" | median)
bt_median=$(printf '%s\n' "${bt_runs[@]}" | median)
# The last kprof run's losses: records the kernel dropped, and the intervals left unknown.
lost=$(grep -o '[0-9]* lost' "$work/kprof-$runs.err" | head -1 | cut -d' ' -f1)
samples=$(grep -o 'wrote [0-9]* samples' "$work/kprof-$runs.err" | cut -d' ' -f2)
note=$("$kprof" flame --off-cpu --folded -i "$work/off.data" 2>&1 >/dev/null | grep -o 'off-CPU: .*')

echo "## Off-CPU recording cost on $(uname -m), $(nproc) CPUs, $(date -u +%Y-%m-%d)"
echo
echo "\`perf bench sched pipe -l $loops\` ($((2 * loops)) context switches each way), median of $runs interleaved runs."
echo
echo "| recorder | usecs/op | slowdown | lost |"
echo "|---|---|---|---|"
echo "| bare | $bare | | |"
python3 -c "print('| kprof record --off-cpu -g | $kprof_median | %+.1f%% | $lost records lost of $samples kept; $note |' % (($kprof_median/$bare-1)*100))"
python3 -c "print('| bpftrace benches/offcpu.bt | $bt_median | %+.1f%% | none (sums in kernel maps) |' % (($bt_median/$bare-1)*100))"
