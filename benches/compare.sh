#!/usr/bin/env bash
# Scripted comparison of kprof with Linux perf's own pipelines (issue #2, point 2; issue #4,
# point 3; issue #13, points 1-3).
#
#   benches/compare.sh                # every case below (long: the big one alone takes minutes)
#   benches/compare.sh small          # the small recordings: fp, lines, lines3k, dwarf, rust-dwarf
#   benches/compare.sh big            # a machine-wide -g recording of a build (>= 800k samples)
#   benches/compare.sh dwarf100k      # a 100k-sample DWARF recording of a multi-threaded Rust program
#   benches/compare.sh big dwarf100k  # several cases, in that order
#
# Recordings are made on first use (in $KPROF_BENCH_DIR, default target/bench-compare) and kept.
# KPROF_BIG_DATA=FILE times that file instead of making big.data (e.g. a recording of a bigger
# machine); KPROF_BASE=BINARY adds rows for another kprof build (a "before") to the big and
# dwarf100k cases, timed in the same alternation.
#
# Figures: wall clock (median of runs that alternate perf's pipeline and kprof, see
# benches/interleave.py), CPU time (big and dwarf100k: median over the same runs of user +
# system time of the command and its processes, what `perf stat -e task-clock` counts) and peak
# RSS (GNU time; for a pipeline, the sum of its stages' peaks, since they run at the same time).
# Each input is first dropped from the page cache and read
# back once, so both tools find it cached the same way (as after a reboot, or for a file
# copied from elsewhere; a file perf just wrote sits in the cache in smaller pieces, which makes
# mapping it slower for both). Results go to stdout as markdown, with the load average (a busy
# machine slows wall times, CPU times much less); copy them into benches/README.md. Needs perf,
# GNU time, a C compiler, Rust, and the inferno binaries (the script installs them into
# target/inferno if missing, from a copy in ../main/target/inferno when there is one).
set -euo pipefail
cd "$(dirname "$0")/.."
work=${KPROF_BENCH_DIR:-target/bench-compare}
mkdir -p "$work"
cases=("$@")
[[ ${#cases[@]} -gt 0 ]] || cases=(small big dwarf100k)
for case in "${cases[@]}"; do
  case $case in
    small | big | dwarf100k) ;;
    *) echo "unknown case '$case' (small, big, dwarf100k)" >&2; exit 2 ;;
  esac
done
cargo build --release --quiet
kprof=$PWD/target/release/kprof
export PATH="$PWD/target/inferno/bin:$PATH"
if ! command -v inferno-flamegraph >/dev/null; then
  if [[ -x ../main/target/inferno/bin/inferno-flamegraph ]]; then
    mkdir -p target/inferno
    cp -a ../main/target/inferno/bin target/inferno/
  else
    echo "installing inferno binaries into target/inferno" >&2
    cargo install inferno --locked --quiet --root target/inferno
  fi
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

case_small() {
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
    cargo build --profile workload --quiet --example busy
    perf record -q --no-bpf-event -F 4000 --call-graph dwarf -o "$work/rust-dwarf.data" -- \
      sh -c "target/workload/examples/busy 3 & target/workload/examples/busy 3; wait" >/dev/null
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
}

# rows RUNS NAME CMD [NAME CMD ...]: one table row per command (wall and CPU medians of
# alternating runs, peak RSS of one more run); the figures go to $work/last.rows, one line per
# command: wall cpu peak_kb; each round's wall times to $work/last.each, one line per round
rows() {
  local runs=$1 times line i=0 wall cpu peak
  shift
  local names=() commands=()
  while [[ $# -gt 0 ]]; do names+=("$1") commands+=("$2"); shift 2; done
  times=$(python3 benches/interleave.py --cpu --each "$work/last.each" "$runs" "${commands[@]}")
  : >"$work/last.rows"
  while read -r wall cpu; do
    peak=$(peak_kb "${commands[$i]}")
    printf '| %s | %.2f s | %.2f s | %s MiB |\n' "${names[$i]}" "$wall" "$cpu" "$(mib "$peak")"
    echo "$wall $cpu $peak" >>"$work/last.rows"
    i=$((i + 1))
  done <<<"$times"
}

load() { cut -d' ' -f1-3 /proc/loadavg; }

# Records $1: the whole machine (-a -g at 10 kHz) for 45 s while a multi-crate Rust build
# (kprof itself, from scratch, offline, in a scratch target dir: rustc and LLVM over ~70
# crates) and C compiles (cc1 on the workloads, over and over) keep both CPUs busy.
record_big() {
  local out=$1 build=$work/big-build
  rm -rf "$build"
  mkdir -p "$build"
  echo "recording $out: 45 s of the whole machine during a cargo build and C compiles" >&2
  # Each workload leads a process group of its own, so that it ends with all its children.
  setsid cargo build --release --offline -j2 --target-dir "$build/target" \
    >"$build/cargo.log" 2>&1 &
  local cargo_group=$!
  setsid bash -c 'while :; do for f in examples/workloads/*.c; do
      cc -O2 -c "$f" -o /dev/null || exit 1; done; done' >/dev/null 2>&1 &
  local cc_group=$!
  # shellcheck disable=SC2064 # the groups are known now
  trap "kill -- -$cargo_group -$cc_group 2>/dev/null" EXIT
  sleep 5 # past cargo's start-up, into the compilers
  perf record -q --no-bpf-event -F 10000 -a -g -o "$out" -- sleep 45 >/dev/null
  kill -- -"$cargo_group" -"$cc_group" 2>/dev/null || true
  wait "$cargo_group" "$cc_group" 2>/dev/null || true
  trap - EXIT
  rm -rf "$build"
}

# verdict VALUE TARGET AT_LEAST: "met" when VALUE >= TARGET (AT_LEAST=1) or <= TARGET (0)
verdict() { awk -v v="$1" -v t="$2" -v more="$3" 'BEGIN {
  ok = more ? v >= t : v <= t; printf "%s", ok ? "met" : "NOT met" }'; }

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a / b }'; }

# Issue #13 points 1 and 2: a machine-wide recording of a build.
case_big() {
  local data=${KPROF_BIG_DATA:-$work/big.data}
  if [[ ! -s $data ]]; then
    record_big "$data"
  fi
  local n
  n=$(samples "$data")
  ((n >= 800000)) || echo "warning: $data has $n samples, fewer than the 800k the case asks for" >&2
  local load_before
  load_before=$(load)
  echo "### Machine-wide \`-a -g\` recording of a build (\`benches/compare.sh big\`, $(date -u '+%Y-%m-%d %H:%M') UTC)"
  echo
  echo "$(basename "$data"): $n samples, $(du -m "$data" | cut -f1) MB," \
    "$("$kprof" flame --folded -i "$data" 2>/dev/null | wc -l) distinct folded stacks;" \
    "$(uname -m), $(nproc) CPUs, perf $(perf version | awk '{print $3}')."
  echo
  echo "| pipeline | wall (median) | CPU (median) | peak RSS |"
  echo "|---|---|---|---|"
  recache "$data"
  local base_rows=()
  if [[ -n ${KPROF_BASE:-} ]]; then
    base_rows=("kprof flame, base" "$KPROF_BASE flame -i $data -o /dev/null"
      "kprof flame, base, 1 thread" "env RAYON_NUM_THREADS=1 $KPROF_BASE flame -i $data -o /dev/null")
  fi
  rows "${KPROF_BIG_RUNS:-5}" \
    "perf script \| inferno-collapse-perf \| inferno-flamegraph" \
    "perf script -i $data | inferno-collapse-perf | inferno-flamegraph" \
    "perf report --no-children --sort sym --stdio" \
    "perf report --no-children --sort sym --stdio -i $data" \
    "kprof flame" "$kprof flame -i $data -o /dev/null" \
    "kprof flame, 1 thread (RAYON_NUM_THREADS=1)" \
    "env RAYON_NUM_THREADS=1 $kprof flame -i $data -o /dev/null" \
    "kprof report --no-children --sort sym" "$kprof report --no-children --sort sym -i $data" \
    "${base_rows[@]}"
  local pipe perf_report flame flame1 report
  {
    read -r -a pipe
    read -r -a perf_report
    read -r -a flame
    read -r -a flame1
    read -r -a report
  } <"$work/last.rows"
  echo
  echo "Load average (1, 5, 15 min): $load_before before, $(load) after."
  echo
  echo "- \`kprof flame\` against perf's flame-graph pipeline: **$(ratio "${pipe[0]}" "${flame[0]}")×**" \
    "in wall time, $(ratio "${pipe[1]}" "${flame[1]}")× in CPU time" \
    "(target ≥ 20× wall: $(verdict "$(ratio "${pipe[0]}" "${flame[0]}")" 20 1))."
  echo "- \`kprof flame\` against \`perf report\`: **$(ratio "${perf_report[0]}" "${flame[0]}")×** wall," \
    "$(ratio "${perf_report[1]}" "${flame[1]}")× CPU (target ≥ 5× wall:" \
    "$(verdict "$(ratio "${perf_report[0]}" "${flame[0]}")" 5 1)); \`kprof report\`:" \
    "$(ratio "${perf_report[0]}" "${report[0]}")× wall, $(ratio "${perf_report[1]}" "${report[1]}")× CPU."
  local share
  share=$(awk -v a="${flame[2]}" -v b="${perf_report[2]}" 'BEGIN { printf "%.2f", a / b }')
  echo "- Peak memory of \`kprof flame\`: **${share}** of \`perf report\`'s" \
    "(target ≤ 0.5: $(verdict "$share" 0.5 0))."
  echo "- Default threads ($(nproc) CPUs) against one: **$(ratio "${flame1[0]}" "${flame[0]}")×**" \
    "faster in wall time (target ≥ 1.7×: $(verdict "$(ratio "${flame1[0]}" "${flame[0]}")" 1.7 1))," \
    "for $(ratio "${flame[1]}" "${flame1[1]}")× the CPU time."
  # The two kprof flame rows run back to back in each round: their ratio round by round sees
  # the machine alike on both sides, where the medians may come from rounds of different load.
  echo "- The same, round by round (the two runs back to back): $(python3 - "$work/last.each" <<'PY'
import statistics, sys
ratios = sorted(float(r[3]) / float(r[2]) for r in map(str.split, open(sys.argv[1])))
print(f"median {statistics.median(ratios):.2f}×, from {ratios[0]:.2f}× to {ratios[-1]:.2f}× over {len(ratios)} rounds", end="")
PY
)."
}

# Issue #13 point 3: a 100k-sample DWARF recording of a multi-threaded Rust program.
case_dwarf100k() {
  local data=$work/dwarf100k.data
  if [[ ! -s $data ]]; then
    cargo build --profile workload --quiet --example workers
    # 4 kHz for 30 s of the program's CPU time (all threads): ~120k samples taken, over 100k
    # kept whatever the load (perf drops some when it falls behind; bigger rings, -m, help).
    echo "recording $data: 30 s of CPU time of examples/workers.rs with DWARF stacks" >&2
    perf record -q --no-bpf-event -F 4000 -m 16M --call-graph dwarf -o "$data" -- \
      target/workload/examples/workers 30 >/dev/null
  fi
  local n
  n=$(samples "$data")
  ((n >= 100000)) || echo "warning: $data has $n samples, fewer than the 100k the case asks for" >&2
  local load_before
  load_before=$(load)
  echo "### 100k-sample DWARF recording of a multi-threaded Rust program (\`benches/compare.sh dwarf100k\`, $(date -u '+%Y-%m-%d %H:%M') UTC)"
  echo
  echo "dwarf100k.data: $n samples, $(du -m "$data" | cut -f1) MB, \`perf record -F 4000" \
    "--call-graph dwarf\` of \`examples/workers.rs\` (release, no frame pointers; five threads:" \
    "hashing, sorting, formatting and parsing, a channel), $("$kprof" flame --folded -i "$data" 2>/dev/null | wc -l)" \
    "distinct folded stacks; $(uname -m), $(nproc) CPUs, perf $(perf version | awk '{print $3}')."
  echo
  echo "| pipeline | wall (median) | CPU (median) | peak RSS |"
  echo "|---|---|---|---|"
  recache "$data"
  local base_rows=()
  if [[ -n ${KPROF_BASE:-} ]]; then
    base_rows=("kprof flame, base" "$KPROF_BASE flame -i $data -o /dev/null")
  fi
  rows "${KPROF_DWARF_RUNS:-5}" \
    "perf script" "perf script -i $data" \
    "kprof flame" "$kprof flame -i $data -o /dev/null" \
    "kprof flame, 1 thread (RAYON_NUM_THREADS=1)" \
    "env RAYON_NUM_THREADS=1 $kprof flame -i $data -o /dev/null" \
    "${base_rows[@]}"
  local script flame flame1
  {
    read -r -a script
    read -r -a flame
    read -r -a flame1
  } <"$work/last.rows"
  echo
  echo "Load average (1, 5, 15 min): $load_before before, $(load) after."
  echo
  echo "- \`kprof flame\` against \`perf script\`: **$(ratio "${script[0]}" "${flame[0]}")×** wall," \
    "$(ratio "${script[1]}" "${flame[1]}")× CPU (target ≥ 20× wall:" \
    "$(verdict "$(ratio "${script[0]}" "${flame[0]}")" 20 1)); peak memory" \
    "$(mib "${flame[2]}") MiB against $(mib "${script[2]}") MiB (target: lower," \
    "$(verdict "${flame[2]}" "${script[2]}" 0)); one thread: $(ratio "${flame1[0]}" "${flame[0]}")×" \
    "slower in wall time."
}

for case in "${cases[@]}"; do
  "case_$case"
  echo
done
