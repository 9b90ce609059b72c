#!/usr/bin/env bash
# Scripted comparison of kprof with Linux perf's own pipelines (issue #2, point 2; issue #4, point 3).
#
#   benches/compare.sh            # record the corpora if missing, then time everything
#
# Figures: wall clock (median of hyperfine runs) and peak RSS (GNU time; for a pipeline, the sum
# of its stages' peaks, since they run at the same time). Results go to stdout as a markdown table;
# copy them into benches/README.md. Needs perf, hyperfine, GNU time, a C compiler, and the inferno
# binaries (`cargo install inferno`; the script installs them into target/ if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
work=${KPROF_BENCH_DIR:-target/bench-compare}
mkdir -p "$work"
cargo build --release --quiet
kprof=$PWD/target/release/kprof
export PATH="$PWD/target/inferno/bin:$PATH"
if ! command -v inferno-flamegraph >/dev/null; then
  echo "installing inferno binaries into target/inferno" >&2
  cargo install inferno --locked --quiet --root target/inferno
fi
cc -O2 -g -fno-omit-frame-pointer examples/workloads/hot.c -o "$work/hot"
cc -O2 -g -fomit-frame-pointer examples/workloads/hot.c -o "$work/hot-nofp"

# A >= 100k-sample -g recording: both CPUs busy at 10 kHz for 6 s.
if [[ ! -s $work/fp.data ]]; then
  perf record -q --no-bpf-event -F 10000 -g -a -o "$work/fp.data" -- \
    sh -c "$work/hot 6 & $work/hot 6; wait" >/dev/null
fi
# A >= 20k-sample DWARF recording.
if [[ ! -s $work/dwarf.data ]]; then
  perf record -q --no-bpf-event -F 4000 --call-graph dwarf -o "$work/dwarf.data" -- \
    sh -c "$work/hot-nofp 3 & $work/hot-nofp 3; wait" >/dev/null
fi
# A smaller -g file for the srcline comparison (perf's srcline path is very slow).
if [[ ! -s $work/lines.data ]]; then
  perf record -q --no-bpf-event -F 2000 -g -o "$work/lines.data" -- "$work/hot" 5 >/dev/null
fi

samples() { "$kprof" report --header-only -i "$1" | awk -F': ' '/^# samples/ {print $2}'; }

# peak KB of a shell command (sum over a pipeline's stages)
peak_kb() {
  local cmd=$1 total=0 i=0
  IFS='|' read -ra stages <<<"$cmd"
  local wrapped=""
  for stage in "${stages[@]}"; do
    wrapped+="${wrapped:+ | }/usr/bin/time -f %M -o $work/rss.$i $stage"
    i=$((i + 1))
  done
  bash -c "$wrapped" >/dev/null 2>&1
  for ((j = 0; j < i; j++)); do total=$((total + $(tail -n1 "$work/rss.$j"))); done
  echo "$total"
}

# median seconds over runs
wall() { hyperfine --style none --runs "${2:-5}" --warmup 1 --export-json "$work/h.json" "$1" >/dev/null 2>&1
  python3 -c "import json;print('%.3f'%json.load(open('$work/h.json'))['results'][0]['median'])"; }

row() { # name, command, runs
  local t m; t=$(wall "$2" "${3:-5}"); m=$(peak_kb "$2")
  printf '| %s | %s s | %s MiB |\n' "$1" "$t" "$(awk -v k="$m" 'BEGIN{printf "%.1f", k/1024}')"
  echo "$t" >"$work/last.t"
}

echo "## kprof vs perf on $(uname -m), $(nproc) CPUs, $(date -u +%Y-%m-%d)"
echo
echo "fp.data: $(samples "$work/fp.data") samples (-g); dwarf.data: $(samples "$work/dwarf.data") samples (dwarf);" \
  "lines.data: $(samples "$work/lines.data") samples (-g)"
echo
echo "| pipeline | wall (median) | peak RSS |"
echo "|---|---|---|"
row "perf script \| inferno-collapse-perf \| inferno-flamegraph (fp.data)" \
  "perf script -i $work/fp.data | inferno-collapse-perf | inferno-flamegraph" 3; perf_fp=$(cat "$work/last.t")
row "kprof flame (fp.data)" "$kprof flame -i $work/fp.data -o /dev/null" 10; kprof_fp=$(cat "$work/last.t")
row "perf script -F +srcline (lines.data)" "perf script -F +srcline -i $work/lines.data" 1; perf_lines=$(cat "$work/last.t")
row "kprof flame --lines (lines.data)" "$kprof flame --lines -i $work/lines.data -o /dev/null" 10; kprof_lines=$(cat "$work/last.t")
row "perf script (dwarf.data)" "perf script -i $work/dwarf.data" 3; perf_dwarf=$(cat "$work/last.t")
row "kprof flame (dwarf.data)" "$kprof flame -i $work/dwarf.data -o /dev/null" 10; kprof_dwarf=$(cat "$work/last.t")
echo
python3 - "$perf_fp" "$kprof_fp" "$perf_lines" "$kprof_lines" "$perf_dwarf" "$kprof_dwarf" <<'PY'
import sys
a = list(map(float, sys.argv[1:]))
print(f"speed-up: flame {a[0]/a[1]:.1f}x (target >= 10x), --lines {a[2]/a[3]:.1f}x (target >= 50x), "
      f"dwarf {a[4]/a[5]:.1f}x (target >= 20x)")
PY
