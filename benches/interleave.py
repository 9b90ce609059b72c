#!/usr/bin/env python3
"""Median wall-clock seconds of shell commands run alternately: A B A B ...

    benches/interleave.py [--cpu] [--each FILE] RUNS 'command A' 'command B' ...

Prints one median per command, in order; with `--each FILE`, FILE gets one line per round, the
wall times of that round's commands in order (for ratios of commands run back to back). With
`--cpu`, each line is the median wall time and
the median CPU time (user + system of the command and all its processes, the sum of their
run times: what `perf stat -e task-clock` counts), in seconds. Alternating (rather than all
runs of A, then all of B, as hyperfine does) keeps slow drifts of a shared machine (other
tenants, CPU frequency) from favouring one command; CPU time is also what a busy machine
changes least. One untimed warm-up run each comes first; output goes to /dev/null, as with
hyperfine. Commands with a `|` run under `sh -c`, others directly.
"""
import os
import shlex
import statistics
import subprocess
import sys
import time


def cpu_of_children():
    usage = os.times()
    return usage.children_user + usage.children_system


def run(command):
    """Wall and CPU seconds of one run."""
    # A pipeline needs a shell; a plain command runs without one, so a shell's start-up
    # (about a millisecond) is not added to it.
    pipeline = "|" in command
    args = command if pipeline else shlex.split(command)
    cpu = cpu_of_children()
    start = time.perf_counter()
    subprocess.run(args, shell=pipeline, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=True)
    return time.perf_counter() - start, cpu_of_children() - cpu


def main():
    args = sys.argv[1:]
    with_cpu = args[0] == "--cpu"
    if with_cpu:
        args = args[1:]
    each = None
    if args[0] == "--each":
        each = args[1]
        args = args[2:]
    runs = int(args[0])
    commands = args[1:]
    for command in commands:
        run(command)
    walls = [[] for _ in commands]
    cpus = [[] for _ in commands]
    for _ in range(runs):
        for i, command in enumerate(commands):
            wall, cpu = run(command)
            walls[i].append(wall)
            cpus[i].append(cpu)
    if each:
        with open(each, "w") as out:
            for round_walls in zip(*walls):
                out.write(" ".join("%.4f" % wall for wall in round_walls) + "\n")
    for wall, cpu in zip(walls, cpus):
        if with_cpu:
            print("%.4f %.4f" % (statistics.median(wall), statistics.median(cpu)))
        else:
            print("%.4f" % statistics.median(wall))


if __name__ == "__main__":
    main()
