#!/usr/bin/env bash
# Profile a benchmark on the base and on the change, draw flame graphs and a differential flame
# graph, write a Markdown summary, and fail when a function got slower.
#
#   profile-bench.sh BASE_CHECKOUT HEAD_CHECKOUT [OUT_DIR]
#
# In each checkout it runs `cargo bench` (in $BENCH_DIR) under `kprof record`, after building the
# benchmark first so the recording is of running it, not of compiling it. It writes to OUT_DIR
# (default: kprof-out):
#   base-N.data head-N.data   the recordings (N = 1..RUNS)
#   base.svg head.svg         flame graphs of the first run of each side
#   diff.svg                  differential flame graph (red: grew, blue: shrank)
#   diff.md                   the functions that changed most (grown first), as a Markdown table
#   diff.txt                  the same as text, from the regression gate
#
# Exit status: 0 no regression, 1 a function's total share (or time per run, when the runs did a
# fixed amount of work: `kprof diff` says which) grew by more than THRESHOLD points (and more than
# the run-to-run spread), 2 anything else went wrong.
#
# Environment:
#   KPROF            kprof binary (default: kprof on PATH)
#   BENCH_DIR        directory of the benchmarked package inside each checkout (default: .)
#   BENCH_ARGS       arguments for `cargo bench` on both sides, e.g. "--bench checksum"
#   BASE_BENCH_ARGS  ... on the base only (default: BENCH_ARGS)
#   HEAD_BENCH_ARGS  ... on the change only (default: BENCH_ARGS)
#   COMM             only samples of this command or thread name (e.g. the benchmark's thread)
#   FREQ             sampling frequency in Hz (default 999)
#   RUNS             recordings per side (default 1); more runs let kprof ignore noise
#   THRESHOLD        regression threshold in percentage points (default 5)
#   TOP              rows in the summary (default 10)
set -Eeuo pipefail

usage() {
    sed -n '2,5p' "$0" >&2
    exit 2
}
[[ $# -ge 2 && $# -le 3 ]] || usage

# Everything below that fails unexpectedly exits 2, never 1 (1 means "regression").
trap 'echo "profile-bench: failed at line $LINENO" >&2; exit 2' ERR

kprof=${KPROF:-kprof}
bench_dir=${BENCH_DIR:-.}
freq=${FREQ:-999}
runs=${RUNS:-1}
threshold=${THRESHOLD:-5}
top=${TOP:-10}
mkdir -p "${3:-kprof-out}"
out=$(cd "${3:-kprof-out}" && pwd)
base_dir=$(cd "$1/$bench_dir" && pwd)
head_dir=$(cd "$2/$bench_dir" && pwd)
read -r -a base_args <<<"${BASE_BENCH_ARGS-${BENCH_ARGS:-}}"
read -r -a head_args <<<"${HEAD_BENCH_ARGS-${BENCH_ARGS:-}}"
filter=()
if [[ -n ${COMM:-} ]]; then
    filter=(--comm "$COMM")
fi

# record SIDE DIR ARGS...: build, then record RUNS runs of `cargo bench ARGS` into SIDE-N.data.
record() {
    local side=$1 dir=$2
    shift 2
    echo "profile-bench: building the $side benchmark in $dir" >&2
    (cd "$dir" && cargo bench --no-run "$@")
    for ((run = 1; run <= runs; run++)); do
        echo "profile-bench: recording $side run $run" >&2
        (cd "$dir" && "$kprof" record -q -F "$freq" -g -o "$out/$side-$run.data" -- cargo bench "$@")
    done
}
record base "$base_dir" ${base_args[@]+"${base_args[@]}"}
record head "$head_dir" ${head_args[@]+"${head_args[@]}"}

sides=("$out/base-1.data" "$out/head-1.data")
for ((run = 2; run <= runs; run++)); do
    sides+=(--base "$out/base-$run.data" --new "$out/head-$run.data")
done

"$kprof" flame "${filter[@]}" -i "$out/base-1.data" --title "Base" -o "$out/base.svg"
"$kprof" flame "${filter[@]}" -i "$out/head-1.data" --title "Change" -o "$out/head.svg"
"$kprof" diff "${filter[@]}" "${sides[@]}" -o "$out/diff.svg"
"$kprof" diff "${filter[@]}" "${sides[@]}" --format markdown --top "$top" -o "$out/diff.md"

trap - ERR
status=0
"$kprof" diff "${filter[@]}" "${sides[@]}" --format text --top "$top" \
    --fail-on-regression "$threshold" -o "$out/diff.txt" || status=$?
cat "$out/diff.txt"
case $status in
    0) echo "profile-bench: no function grew by more than $threshold points" >&2 ;;
    1) echo "profile-bench: regression (threshold $threshold points); see $out/diff.svg" >&2 ;;
    *) echo "profile-bench: kprof diff failed ($status)" >&2; status=2 ;;
esac
exit "$status"
