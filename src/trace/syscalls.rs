//! `--syscalls`: per process and syscall, calls, errors and total/min/avg/max time, as `perf trace -s`.
