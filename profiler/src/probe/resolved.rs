//! One probe site ready to open: where it is, what the PMU needs, and how its arguments are
//! read from a sample.

use std::path::PathBuf;

use super::args::{self, ArgValue, SampledRegs, StackCopy};
use super::regs::Arch;
use super::spec::ProbeKind;
use super::usdt::UsdtArg;

/// User stack bytes captured per sample for USDT memory operands (`8@-16(%rbp)` reads from
/// the frame, which lies within this much of the stack pointer in practice; farther operands
/// show their address instead).
pub const USDT_STACK_BYTES: u32 = 512;

/// One probe site ready to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedProbe {
    /// Entry, return, USDT, kernel.
    pub kind: ProbeKind,
    /// The event's name: the spec with the resolved path (`u:/lib/x86_64-linux-gnu/libc.so.6:malloc`).
    pub name: String,
    /// The file (empty for kernel probes).
    pub path: PathBuf,
    /// Whose registers and calling convention the arguments follow.
    pub arch: Arch,
    /// What `config1` points to: the file's path, or the kernel function.
    pub target: String,
    /// `config2`: the file offset, or the offset into the kernel function.
    pub offset: u64,
    /// The function probed, when a symbol named it.
    pub function: Option<String>,
    /// The USDT semaphore's file offset, when the probe is guarded by one.
    pub ref_ctr_offset: Option<u64>,
    /// The USDT arguments (an operand kprof cannot read is kept as its text and why).
    pub usdt_args: Vec<Result<UsdtArg, String>>,
}

impl ResolvedProbe {
    /// `sample_regs_user` this probe's arguments need.
    pub fn sample_regs(&self) -> u64 {
        if self.kind == ProbeKind::Usdt {
            self.arch.all_regs()
        } else {
            self.arch.function_probe_regs()
        }
    }

    /// Bytes of user stack each sample needs (USDT memory operands), 0 for none.
    pub fn stack_bytes(&self) -> u32 {
        let args: Vec<UsdtArg> = self
            .usdt_args
            .iter()
            .filter_map(|a| a.clone().ok())
            .collect();
        if args::needs_stack(&args) {
            USDT_STACK_BYTES
        } else {
            0
        }
    }

    /// The arguments of one sample, named as the trace event contract names them: `arg0`..
    /// (USDT operands, or the calling convention's registers for a uprobe), `retval` for a
    /// return probe. Values kprof cannot read are left out.
    pub fn arguments(
        &self,
        regs: &SampledRegs<'_>,
        stack: Option<&StackCopy<'_>>,
    ) -> Vec<(&'static str, ArgValue)> {
        self.arguments_reading(regs, stack, &mut args::no_globals)
    }

    /// [`Self::arguments`], with USDT `sym(%rip)` operands read through `globals`.
    pub fn arguments_reading(
        &self,
        regs: &SampledRegs<'_>,
        stack: Option<&StackCopy<'_>>,
        globals: &mut args::ReadGlobal<'_>,
    ) -> Vec<(&'static str, ArgValue)> {
        let mut out = Vec::new();
        match self.kind {
            ProbeKind::Usdt => {
                for (name, arg) in args::ARG_NAMES.iter().zip(&self.usdt_args) {
                    if let Ok(arg) = arg {
                        out.push((*name, args::usdt_value(arg, regs, stack, globals)));
                    }
                }
            }
            ProbeKind::Uretprobe | ProbeKind::Kretprobe => {
                if let Some(v) = regs.get(self.arch.return_register()) {
                    out.push(("retval", ArgValue::Unsigned(v)));
                }
            }
            ProbeKind::Uprobe | ProbeKind::Kprobe => {
                for (name, reg) in args::ARG_NAMES.iter().zip(self.arch.argument_registers()) {
                    if let Some(v) = regs.get(*reg) {
                        out.push((*name, ArgValue::Unsigned(v)));
                    }
                }
            }
        }
        out.retain(|(_, v)| *v != ArgValue::Missing);
        out
    }

    /// True when some USDT argument is a global (`sym(%rip)`), read from the process.
    pub fn reads_globals(&self) -> bool {
        self.usdt_args
            .iter()
            .any(|a| a.as_ref().is_ok_and(|a| a.global.is_some()))
    }
}
