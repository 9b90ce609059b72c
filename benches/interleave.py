#!/usr/bin/env python3
"""Median wall-clock seconds of shell commands run alternately: A B A B ...

    benches/interleave.py RUNS 'command A' 'command B' ...

Prints one median per command, in order. Alternating (rather than all runs of A, then all of
B, as hyperfine does) keeps slow drifts of a shared machine (other tenants, CPU frequency)
from favouring one command. One untimed warm-up run each comes first; output goes to
/dev/null, as with hyperfine. Commands with a `|` run under `sh -c`, others directly.
"""
import shlex
import statistics
import subprocess
import sys
import time


def run(command):
    # A pipeline needs a shell; a plain command runs without one, so a shell's start-up
    # (about a millisecond) is not added to it.
    pipeline = "|" in command
    args = command if pipeline else shlex.split(command)
    start = time.perf_counter()
    subprocess.run(args, shell=pipeline, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=True)
    return time.perf_counter() - start


def main():
    runs = int(sys.argv[1])
    commands = sys.argv[2:]
    for command in commands:
        run(command)
    times = [[] for _ in commands]
    for _ in range(runs):
        for i, command in enumerate(commands):
            times[i].append(run(command))
    for samples in times:
        print("%.4f" % statistics.median(samples))


if __name__ == "__main__":
    main()
