#!/usr/bin/env bash
# kprof's quick start: build kprof, profile the bundled C workload, draw its flame graph.
#   ./examples/demo.sh            -> demo.data, demo.svg (and a top-10 report on the terminal)
# Needs: cargo, a C compiler, and permission to use perf_event_open (root, or
# kernel.perf_event_paranoid <= 1 for a user).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
out=${KPROF_DEMO_DIR:-.}
cc -O2 -g -fno-omit-frame-pointer examples/workloads/hot.c -o "$out/hot"
./target/release/kprof record -F 999 -g -o "$out/demo.data" -- "$out/hot" 2
./target/release/kprof report -i "$out/demo.data" --sort sym --top 10
./target/release/kprof flame -i "$out/demo.data" -o "$out/demo.svg"
echo "demo: flame graph written to $out/demo.svg (open it in a browser: search, click to zoom)"
