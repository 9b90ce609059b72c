#!/usr/bin/env bash
# Scripted comparison of kprof with Linux perf's own pipelines (issue #2, point 2; issue #4, point 3).
#
#   benches/compare.sh            # record the corpora if missing, then time everything
#
# Figures: wall clock (median of runs that alternate perf's pipeline and kprof, see
# benches/interleave.py) and peak RSS (GNU time; for a pipeline, the sum of its stages' peaks,
# since they run at the same time). Each input is first dropped from the page cache and read
# back once, so both tools find it cached the same way (as after a reboot, or for a file
# copied from elsewhere; a file perf just wrote sits in the cache in smaller pieces, which makes
# mapping it slower for both). Results go to stdout as a markdown table; copy them into
# benches/README.md. Needs perf, GNU time, a C compiler, Rust, and the inferno binaries
# (`cargo install inferno`; the script installs them into target/ if missing).
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
cc -O2 -g -fno-omit-frame-pointer examples/workloads/strings.c -o "$work/strings"

# A >= 100k-sample -g recording: both CPUs busy at 10 kHz for 6 s.
if [[ ! -s $work/fp.data ]]; then
  perf record -q --no-bpf-event -F 10000 -g -a -o "$work/fp.data" -- \
    sh -c "$work/hot 6 & $work/hot 6; wait" >/dev/null
fi
# Two >= 20k-sample DWARF recordings: the C workload (stacks 5-8 frames deep) and the Rust
# release workload (through libstd: 20-40 frames, as in most real programs).
if [[ ! -s $work/dwarf.data ]]; then
  perf record -q --no-bpf-event -F 4000 --call-graph dwarf -o "$work/dwarf.data" -- \
    sh -c "$work/hot-nofp 3 & $work/hot-nofp 3; wait" >/dev/null
fi
if [[ ! -s $work/rust-dwarf.data ]]; then
  cargo build --release --quiet --example busy
  perf record -q --no-bpf-event -F 4000 --call-graph dwarf -o "$work/rust-dwarf.data" -- \
    sh -c "target/release/examples/busy 3 & target/release/examples/busy 3; wait" >/dev/null
fi
# A smaller -g file for the srcline comparison (perf's srcline path is very slow).
if [[ ! -s $work/lines.data ]]; then
  perf record -q --no-bpf-event -F 2000 -g -o "$work/lines.data" -- "$work/hot" 5 >/dev/null
fi

# A ~3k-sample -g recording of a program that spends its time in libc, as ordinary programs do:
# `--lines` then reads libc's separate debug file (Debian: libc6-dbg, zlib-compressed sections;
# without it, only the program's own DWARF is read and the case measures little).
if [[ ! -s $work/lines3k.data ]]; then
  perf record -q --no-bpf-event -F 1000 -g -o "$work/lines3k.data" -- "$work/strings" 3 >/dev/null
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

# Drops a file from the page cache and reads it back (see the top of this script).
recache() { dd if="$1" iflag=nocache count=0 status=none; cat "$1" >/dev/null; }

mib() { awk -v k="$1" 'BEGIN{printf "%.1f", k/1024}'; }

# pair NAME_A CMD_A NAME_B CMD_B RUNS: both rows, timed alternately; the two medians go to
# $work/last.t (A then B)
pair() {
  local times ta tb
  times=$(python3 benches/interleave.py "$5" "$2" "$4")
  ta=$(echo "$times" | sed -n 1p); tb=$(echo "$times" | sed -n 2p)
  printf '| %s | %.3f s | %s MiB |\n' "$1" "$ta" "$(mib "$(peak_kb "$2")")"
  printf '| %s | %.3f s | %s MiB |\n' "$3" "$tb" "$(mib "$(peak_kb "$4")")"
  echo "$ta $tb" >"$work/last.t"
}

# trio NAME_A CMD_A NAME_B CMD_B NAME_C CMD_C RUNS: like pair, for three commands
trio() {
  local times t
  times=$(python3 benches/interleave.py "$7" "$2" "$4" "$6")
  for i in 1 2 3; do
    t=$(echo "$times" | sed -n "${i}p")
    local name_var=$((2 * i - 1)) cmd_var=$((2 * i))
    printf '| %s | %.3f s | %s MiB |\n' "${!name_var}" "$t" "$(mib "$(peak_kb "${!cmd_var}")")"
  done
  paste -sd" " <<<"$times" >"$work/last.t"
}

echo "## kprof vs perf on $(uname -m), $(nproc) CPUs, $(date -u +%Y-%m-%d)"
echo
echo "fp.data: $(samples "$work/fp.data") samples (-g); lines.data: $(samples "$work/lines.data") samples (-g);" \
  "lines3k.data: $(samples "$work/lines3k.data") samples (-g, in libc);" \
  "dwarf.data: $(samples "$work/dwarf.data") samples (dwarf, C);" \
  "rust-dwarf.data: $(samples "$work/rust-dwarf.data") samples (dwarf, Rust)"
echo
echo "| pipeline | wall (median) | peak RSS |"
echo "|---|---|---|"
for f in fp lines lines3k dwarf rust-dwarf; do recache "$work/$f.data"; done
pair "perf script \| inferno-collapse-perf \| inferno-flamegraph (fp.data)" \
  "perf script -i $work/fp.data | inferno-collapse-perf | inferno-flamegraph" \
  "kprof flame (fp.data)" "$kprof flame -i $work/fp.data -o /dev/null" 5
read -r perf_fp kprof_fp <"$work/last.t"
trio "perf script -F +srcline (lines.data)" "perf script -F +srcline -i $work/lines.data" \
  "kprof flame --lines (lines.data)" "$kprof flame --lines -i $work/lines.data -o /dev/null" \
  "kprof flame (lines.data)" "$kprof flame -i $work/lines.data -o /dev/null" 3
read -r perf_lines kprof_lines kprof_flame_lines <"$work/last.t"
trio "perf script -F +srcline (lines3k.data)" "perf script -F +srcline -i $work/lines3k.data" \
  "kprof flame --lines (lines3k.data)" "$kprof flame --lines -i $work/lines3k.data -o /dev/null" \
  "kprof flame (lines3k.data)" "$kprof flame -i $work/lines3k.data -o /dev/null" 3
read -r perf_lines3k kprof_lines3k kprof_flame3k <"$work/last.t"
pair "perf script (dwarf.data)" "perf script -i $work/dwarf.data" \
  "kprof flame (dwarf.data)" "$kprof flame -i $work/dwarf.data -o /dev/null" 10
read -r perf_dwarf kprof_dwarf <"$work/last.t"
pair "perf script (rust-dwarf.data)" "perf script -i $work/rust-dwarf.data" \
  "kprof flame (rust-dwarf.data)" "$kprof flame -i $work/rust-dwarf.data -o /dev/null" 5
read -r perf_rust kprof_rust <"$work/last.t"
echo
python3 - "$perf_fp" "$kprof_fp" "$perf_lines" "$kprof_lines" "$perf_dwarf" "$kprof_dwarf" \
  "$perf_rust" "$kprof_rust" "$perf_lines3k" "$kprof_lines3k" "$kprof_flame3k" \
  "$kprof_flame_lines" <<'PY'
import sys
a = list(map(float, sys.argv[1:]))
print(f"speed-up: flame {a[0]/a[1]:.1f}x (target >= 10x), --lines {a[2]/a[3]:.1f}x (target >= 50x, "
      f"{a[3]/a[11]:.2f}x kprof flame), "
      f"dwarf C {a[4]/a[5]:.1f}x, dwarf Rust {a[6]/a[7]:.1f}x (target >= 20x); "
      f"lines3k: --lines {a[8]/a[9]:.1f}x perf's srcline (target >= 50x), "
      f"{a[9]/a[10]:.2f}x kprof flame without --lines (target <= 2x)")
PY
