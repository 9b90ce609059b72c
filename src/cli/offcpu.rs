//! The off-CPU flags of `record`, `flame`, `report`, `diff` and `export`, flattened into their
//! argument structs.

use clap::Args;

/// `kprof record --off-cpu`.
#[derive(Debug, Args, Clone, Default)]
pub struct OffCpuRecordArgs {
    /// Also record every context switch and wake-up (sched:sched_switch and sched:sched_waking
    /// with their stacks, and switch-in records), for `flame --off-cpu`, `--wall`, `--wakers`
    /// and `report --off-cpu`. Use with -g or --call-graph dwarf. Rings default to 1024 pages.
    #[arg(long = "off-cpu")]
    pub off_cpu: bool,
}

/// `kprof flame --off-cpu | --wakers | --wall`.
#[derive(Debug, Args, Clone, Default)]
pub struct OffCpuFlameArgs {
    /// Blocked time (ns) on the stacks that went off the CPU, under a frame per state:
    /// `[S] sleeping`, `[D] uninterruptible (I/O)`, `[R] runnable, waiting for a CPU`. An
    /// interval runs from the thread's sched_switch to the sched_switch that runs it again when
    /// that was recorded (the thread before it is recorded too, or -a), else to its switch-in
    /// record, written after the context switch (microseconds later).
    #[arg(long = "off-cpu", conflicts_with = "wall")]
    pub off_cpu: bool,
    /// Off-wake: each blocked stack with the stack of the thread that woke it on top (after `--`).
    #[arg(long = "wakers", conflicts_with = "wall")]
    pub wakers: bool,
    /// Wall-clock time per thread: on-CPU samples as time (`[on-CPU]`) plus blocked time.
    #[arg(long = "wall")]
    pub wall: bool,
}

impl OffCpuFlameArgs {
    /// Whether any off-CPU view was asked for.
    pub fn active(&self) -> bool {
        self.off_cpu || self.wakers || self.wall
    }
}

/// `kprof report --off-cpu [--runq]`.
#[derive(Debug, Args, Clone, Default)]
pub struct OffCpuReportArgs {
    /// Blocked time by function and state (S, D, R) instead of samples.
    #[arg(long = "off-cpu")]
    pub off_cpu: bool,
    /// Per-thread run-queue latency: time from wake-up (or preemption) to running again.
    #[arg(long = "runq")]
    pub runq: bool,
}

impl OffCpuReportArgs {
    /// Whether an off-CPU report was asked for.
    pub fn active(&self) -> bool {
        self.off_cpu || self.runq
    }
}

/// `kprof diff --off-cpu | --wall` and `kprof export --off-cpu | --wall`.
#[derive(Debug, Args, Clone, Default)]
pub struct OffCpuProfileArgs {
    /// Blocked time (event `off-cpu`, nanoseconds) instead of samples.
    #[arg(long = "off-cpu", conflicts_with = "wall")]
    pub off_cpu: bool,
    /// Wall-clock time: on-CPU time (event `on-cpu`) plus blocked time (`off-cpu`), in ns.
    #[arg(long = "wall")]
    pub wall: bool,
}

impl OffCpuProfileArgs {
    /// Whether an off-CPU profile was asked for.
    pub fn active(&self) -> bool {
        self.off_cpu || self.wall
    }
}

#[cfg(test)]
mod tests {
    use crate::cli::{Cli, Command};
    use clap::Parser;

    // See: issue #16 point 1 and 3
    #[test]
    fn off_cpu_flags_parse_where_they_belong() {
        let cli = Cli::try_parse_from(["kprof", "record", "--off-cpu", "-g", "--", "ls"]).unwrap();
        let Command::Record(args) = cli.command else {
            panic!("not record")
        };
        assert!(args.off_cpu.off_cpu);
        let cli = Cli::try_parse_from(["kprof", "flame", "--wakers"]).unwrap();
        let Command::Flame(args) = cli.command else {
            panic!("not flame")
        };
        assert!(args.offcpu.active());
        assert!(Cli::try_parse_from(["kprof", "flame", "--off-cpu", "--wall"]).is_err());
        assert!(Cli::try_parse_from(["kprof", "report", "--off-cpu", "--runq"]).is_ok());
        assert!(Cli::try_parse_from(["kprof", "export", "--wall", "--format", "pprof"]).is_ok());
        assert!(Cli::try_parse_from(["kprof", "diff", "--off-cpu", "a", "b"]).is_ok());
    }
}
