//! Whom `record`, `stat` and `trace` watch: the shared `-a`/`-C`/`-p`/`-t`/`-G` flags and the
//! command after `--`, turned into the profiler's [`Target`] in one place.

use std::ffi::OsString;

use anyhow::{Context, Result, bail};
use clap::Args;
use kprof_profiler::Target;

/// The target flags, flattened into each command that runs or attaches to tasks.
#[derive(Debug, Args, Clone, Default)]
pub struct TargetArgs {
    /// Every task on every CPU (system-wide); with a command, while it runs.
    #[arg(short = 'a', long = "all-cpus")]
    pub all_cpus: bool,
    /// Only these CPUs, e.g. `0-3,6` (implies system-wide).
    #[arg(short = 'C', long = "cpu", value_name = "LIST")]
    pub cpus: Option<String>,
    /// Attach to these processes (comma-separated PIDs) and all their threads.
    #[arg(short = 'p', long = "pid", value_delimiter = ',', value_name = "PID")]
    pub pids: Vec<u32>,
    /// Attach to these threads only (comma-separated TIDs).
    #[arg(short = 't', long = "tid", value_delimiter = ',', value_name = "TID")]
    pub tids: Vec<u32>,
    /// Only tasks in this cgroup (a path relative to the cgroup mount, as perf's -G); implies -a.
    #[arg(short = 'G', long = "cgroup", value_name = "PATH")]
    pub cgroup: Option<String>,
    // No `allow_hyphen_values` here: with it, clap takes `stat -x,` (`,` is not a flag letter)
    // for the command. `trailing_var_arg` still passes the command's own flags through.
    /// The command to run (after `--`).
    #[arg(trailing_var_arg = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

/// What the target flags ask for, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedTarget {
    /// A command, processes, threads or the whole system.
    pub target: Target,
    /// `-a`, `-C` or `-G`: every task on the CPUs.
    pub system_wide: bool,
    /// `-C LIST`, parsed.
    pub cpus: Option<Vec<u32>>,
    /// `-G PATH`.
    pub cgroup: Option<String>,
}

impl TargetArgs {
    /// Checks the flags and turns them into the profiler's target. `verb` names what the
    /// command does (`profile`, `count`, `trace`) for the message when nothing is given.
    pub fn to_target(&self, verb: &str) -> Result<ResolvedTarget> {
        let cpus = match &self.cpus {
            Some(list) => {
                Some(kprof_profiler::parse_cpu_list(list).with_context(|| format!("-C {list}"))?)
            }
            None => None,
        };
        let system_wide = self.all_cpus || cpus.is_some() || self.cgroup.is_some();
        let attach = !self.pids.is_empty() || !self.tids.is_empty();
        if attach && !self.command.is_empty() {
            bail!("give either a command or -p/-t, not both");
        }
        if attach && system_wide {
            bail!("give either -p/-t or -a/-C/-G, not both");
        }
        let target = if !self.command.is_empty() {
            Target::Command(self.command.clone())
        } else if !self.pids.is_empty() {
            Target::Pids(self.pids.clone())
        } else if !self.tids.is_empty() {
            Target::Tids(self.tids.clone())
        } else if system_wide {
            Target::SystemWide
        } else {
            bail!("nothing to {verb}: give a command after --, -p PID, -t TID or -a");
        };
        Ok(ResolvedTarget {
            target,
            system_wide,
            cpus,
            cgroup: self.cgroup.clone(),
        })
    }

    /// The program's name when a command is given (for messages), else empty.
    pub fn program(&self) -> String {
        self.command
            .first()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// What perf stat's title names: `'CMD ARGS'`, `'system wide'`, `'CPU(s) LIST'`,
    /// `process id 'PIDS'` or `thread id 'TIDS'`.
    pub fn description(&self) -> String {
        let join = |ids: &[u32]| ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
        if self.all_cpus || self.cgroup.is_some() {
            "'system wide'".to_owned()
        } else if let Some(cpus) = &self.cpus {
            format!("'CPU(s) {cpus}'")
        } else if !self.command.is_empty() {
            let words: Vec<String> = self
                .command
                .iter()
                .map(|w| w.to_string_lossy().into_owned())
                .collect();
            format!("'{}'", words.join(" "))
        } else if !self.pids.is_empty() {
            format!("process id '{}'", join(&self.pids))
        } else {
            format!("thread id '{}'", join(&self.tids))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(f: impl FnOnce(&mut TargetArgs)) -> TargetArgs {
        let mut a = TargetArgs::default();
        f(&mut a);
        a
    }

    #[test]
    fn flags_become_one_target() {
        let t = args(|a| a.command = vec!["ls".into()])
            .to_target("trace")
            .unwrap();
        assert_eq!(t.target, Target::Command(vec!["ls".into()]));
        assert!(!t.system_wide);
        let t = args(|a| a.cpus = Some("0-1".into()))
            .to_target("trace")
            .unwrap();
        assert_eq!(
            (t.target, t.system_wide, t.cpus),
            (Target::SystemWide, true, Some(vec![0, 1]))
        );
        let t = args(|a| a.cgroup = Some("g".into()))
            .to_target("trace")
            .unwrap();
        assert!(t.system_wide);
        let t = args(|a| a.pids = vec![1]).to_target("trace").unwrap();
        assert_eq!(t.target, Target::Pids(vec![1]));
        let err = TargetArgs::default().to_target("trace").unwrap_err();
        assert!(err.to_string().starts_with("nothing to trace"), "{err}");
        assert!(
            args(|a| {
                a.pids = vec![1];
                a.command = vec!["ls".into()];
            })
            .to_target("trace")
            .is_err()
        );
        assert!(
            args(|a| {
                a.tids = vec![1];
                a.all_cpus = true;
            })
            .to_target("trace")
            .is_err()
        );
    }
}
