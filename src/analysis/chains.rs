//! One sample's stack as leaf-first [`StackAddress`]es: its callchain read through the kernel's
//! `PERF_CONTEXT_*` markers, with the user part replaced by DWARF-unwound frames when there are
//! any, or by the LBR call stack (`--call-graph lbr`) when the event records one. Pure
//! functions, so the replay thread and the unwinding workers share them.

use kprof_perfdata::kinds::context::{
    GUEST_KERNEL as PERF_CONTEXT_GUEST_KERNEL, GUEST_USER as PERF_CONTEXT_GUEST_USER,
    HV as PERF_CONTEXT_HV, KERNEL as PERF_CONTEXT_KERNEL, MAX as PERF_CONTEXT_MAX,
    USER as PERF_CONTEXT_USER,
};
use kprof_perfdata::kinds::{branch, sample as sample_bits};
use kprof_perfdata::{BranchStack, CpuMode, EventAttr, Sample as PerfSample, U64Slice};

/// What a sample's stack is built from: its callchain (with its context markers), its
/// instruction pointer, where it was taken, and its LBR call stack. Small, so samples can wait
/// in a batch.
#[derive(Clone, Copy)]
pub struct ChainInput<'f> {
    /// The raw callchain, markers included.
    pub callchain: Option<U64Slice<'f>>,
    /// The sampled instruction.
    pub ip: Option<u64>,
    /// Where the sample was taken.
    pub cpumode: CpuMode,
    /// The sample's branch stack when its event records LBR call stacks
    /// ([`records_call_stacks`]), else `None`.
    pub call_stack: Option<BranchStack<'f>>,
}

impl<'f> ChainInput<'f> {
    /// The chain input of a decoded sample; `call_stacks` tells whether its event records LBR
    /// call stacks ([`records_call_stacks`] of its attr).
    pub fn of(sample: &PerfSample<'f>, call_stacks: bool) -> Self {
        ChainInput {
            callchain: sample.callchain,
            ip: sample.ip,
            cpumode: sample.cpumode,
            call_stack: sample.branch_stack.filter(|_| call_stacks),
        }
    }
}

/// One frame of a sample's stack: the address to symbolize and the address `perf script`
/// prints for it. They differ for callers when inline frames or lines are wanted (looked up
/// inside the call instruction, at the return address minus one), and for DWARF-unwound callers,
/// which perf prints at the return address minus one whatever is looked up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StackAddress {
    /// The address to symbolize.
    pub lookup: u64,
    /// The address as perf prints it.
    pub shown: u64,
    /// A kernel address.
    pub kernel: bool,
}

impl StackAddress {
    /// A frame looked up and shown at `address`.
    pub fn at(address: u64, kernel: bool) -> Self {
        StackAddress {
            lookup: address,
            shown: address,
            kernel,
        }
    }
}

/// True when the event's samples carry an LBR call stack (`perf record --call-graph lbr`):
/// BRANCH_STACK sampled with `PERF_SAMPLE_BRANCH_CALL_STACK`, as perf's
/// `evsel__has_branch_callstack` decides.
pub fn records_call_stacks(attr: &EventAttr) -> bool {
    attr.sample_type & sample_bits::BRANCH_STACK != 0
        && attr.branch_sample_type & branch::CALL_STACK != 0
}

/// What [`chain_addresses`] found out about the chain besides its addresses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ChainShape {
    /// The callchain held a marker the kernel never writes: only the sampled ip was kept.
    pub broken: bool,
    /// User frames came from the recorded callchain (frame pointers), not from unwinding.
    pub fp_user_frames: bool,
}

/// Appends the leaf-first frames of a sample to `out`, each shown at its callchain entry.
/// Callers after the leaf are looked up at `ra - 1` when `call_site_lookup` (inline frames and
/// lines need the call instruction), else at the return address itself, as perf does: the
/// function is the same for real return addresses, and garbage entries of frame-pointer chains
/// then get the same names as in `perf report`. `user`, when given, replaces the user part of
/// the callchain: the unwinder already chose each frame's addresses.
///
/// Without `user`, a sample's LBR call stack replaces the user part of its callchain, by perf's
/// rule (`resolve_lbr_callchain_sample` in perf's `util/machine.c`): the kernel part of the
/// callchain, then the function the innermost open call entered (the first entry's `to`), then
/// the call instruction of every open call (each entry's `from`), innermost first. Those are
/// instruction addresses, looked up and shown as they are, in user space. perf does this only
/// when the callchain has a user part; an empty call stack (perf then reads past the record)
/// keeps the frame-pointer user part.
pub fn chain_addresses(
    sample: &ChainInput<'_>,
    user: Option<&[StackAddress]>,
    call_site_lookup: bool,
    out: &mut Vec<StackAddress>,
) -> ChainShape {
    let mut shape = ChainShape::default();
    let first = out.len();
    let sample_in_kernel = matches!(sample.cpumode, CpuMode::Kernel | CpuMode::GuestKernel);
    let call_stack = match (user, sample.call_stack, &sample.callchain) {
        (None, Some(stack), Some(chain))
            if !stack.is_empty() && chain.iter().any(|entry| entry == PERF_CONTEXT_USER) =>
        {
            Some(stack)
        }
        _ => None,
    };
    let replace_user = user.is_some() || call_stack.is_some();
    match &sample.callchain {
        Some(chain) if !chain.is_empty() => {
            let mut kernel = sample_in_kernel;
            for entry in chain.iter() {
                if entry >= PERF_CONTEXT_MAX {
                    kernel = match entry {
                        PERF_CONTEXT_KERNEL | PERF_CONTEXT_GUEST_KERNEL | PERF_CONTEXT_HV => true,
                        PERF_CONTEXT_USER | PERF_CONTEXT_GUEST_USER => false,
                        // Not a context the kernel writes: the chain is garbage. Keep only
                        // the sampled instruction, as perf does.
                        _ => {
                            out.truncate(first);
                            if let Some(ip) = sample.ip {
                                out.push(StackAddress::at(ip, sample_in_kernel));
                            }
                            return ChainShape {
                                broken: true,
                                fp_user_frames: false,
                            };
                        }
                    };
                    if !kernel && replace_user {
                        break;
                    }
                    continue;
                }
                let lookup = if out.len() == first || !call_site_lookup {
                    entry
                } else {
                    entry.wrapping_sub(1)
                };
                shape.fp_user_frames |= !kernel;
                out.push(StackAddress {
                    lookup,
                    shown: entry,
                    kernel,
                });
            }
        }
        _ => {
            if let Some(ip) = sample.ip {
                if user.is_none() || sample_in_kernel {
                    out.push(StackAddress::at(ip, sample_in_kernel));
                }
            }
        }
    }
    if let Some(user) = user {
        out.extend_from_slice(user);
    } else if let Some(stack) = call_stack {
        if let Some((_, entered, _)) = stack.get(0) {
            out.push(StackAddress::at(entered, false));
        }
        out.extend((0..stack.len()).filter_map(|i| Some(StackAddress::at(stack.get(i)?.0, false))));
    }
    if out.len() == first {
        // Nothing on the chain (only context markers, or an unwind that found no frame, as
        // right after an exec): the sampled instruction still places the sample, as in perf
        // report. See: issue #10 point 7
        if let Some(ip) = sample.ip {
            out.push(StackAddress::at(ip, sample_in_kernel));
        }
    }
    shape
}

#[cfg(test)]
mod tests {
    use super::*;
    use kprof_perfdata::Endian;

    fn chain_of(entries: &[u64]) -> Vec<u8> {
        entries.iter().flat_map(|e| e.to_le_bytes()).collect()
    }

    fn addresses(
        entries: &[u64],
        user: Option<&[StackAddress]>,
        call_site: bool,
    ) -> (Vec<(u64, bool)>, ChainShape) {
        let bytes = chain_of(entries);
        let input = ChainInput {
            callchain: Some(U64Slice::new(&bytes, Endian::Little)),
            ip: entries.get(1).copied(),
            cpumode: CpuMode::Kernel,
            call_stack: None,
        };
        let mut out = vec![StackAddress::at(7, true)];
        let shape = chain_addresses(&input, user, call_site, &mut out);
        out.remove(0);
        let lookups = out.iter().map(|a| (a.lookup, a.kernel)).collect();
        (lookups, shape)
    }

    #[test]
    fn kernel_and_user_parts_follow_the_markers() {
        let (out, shape) = addresses(
            &[
                PERF_CONTEXT_KERNEL,
                0xffff_1000,
                0xffff_2000,
                PERF_CONTEXT_USER,
                0x401000,
                0x402000,
            ],
            None,
            true,
        );
        assert_eq!(
            out,
            [
                (0xffff_1000, true),
                (0xffff_1fff, true),
                (0x400fff, false),
                (0x401fff, false)
            ]
        );
        assert!(shape.fp_user_frames && !shape.broken);
    }

    #[test]
    fn unwound_frames_replace_the_user_part() {
        let (out, shape) = addresses(
            &[
                PERF_CONTEXT_KERNEL,
                0xffff_1000,
                PERF_CONTEXT_USER,
                0x401000,
                0x402000,
            ],
            Some(&[
                StackAddress::at(0x500000, false),
                StackAddress::at(0x500100, false),
            ]),
            false,
        );
        assert_eq!(
            out,
            [(0xffff_1000, true), (0x500000, false), (0x500100, false)]
        );
        assert!(!shape.fp_user_frames);
    }

    // See: issue #10 point 7
    #[test]
    fn a_chain_without_addresses_keeps_the_ip() {
        // Only a context marker, and no unwound user frame either.
        for user in [None, Some(&[][..])] {
            let bytes = chain_of(&[PERF_CONTEXT_USER]);
            let input = ChainInput {
                callchain: Some(U64Slice::new(&bytes, Endian::Little)),
                ip: Some(0x401234),
                cpumode: CpuMode::User,
                call_stack: None,
            };
            let mut out = Vec::new();
            chain_addresses(&input, user, true, &mut out);
            assert_eq!(out, [StackAddress::at(0x401234, false)], "{user:?}");
        }
        let input = ChainInput {
            callchain: None,
            ip: Some(0x401234),
            cpumode: CpuMode::User,
            call_stack: None,
        };
        let mut out = Vec::new();
        chain_addresses(&input, Some(&[]), false, &mut out);
        assert_eq!(out, [StackAddress::at(0x401234, false)]);
    }

    #[test]
    fn callers_are_shown_at_their_entries_whatever_is_looked_up() {
        // See: issue #10 point 2
        let bytes = chain_of(&[PERF_CONTEXT_USER, 0x401000, 0x402000]);
        let input = ChainInput {
            callchain: Some(U64Slice::new(&bytes, Endian::Little)),
            ip: Some(0x401000),
            cpumode: CpuMode::User,
            call_stack: None,
        };
        for call_site in [false, true] {
            let mut out = Vec::new();
            chain_addresses(&input, None, call_site, &mut out);
            let shown: Vec<u64> = out.iter().map(|a| a.shown).collect();
            assert_eq!(shown, [0x401000, 0x402000], "call_site {call_site}");
        }
    }

    /// A user-mode sample of an LBR event: `entries` as the callchain, `branches` as
    /// `(from, to)` pairs of its call stack.
    fn lbr_addresses(entries: &[u64], branches: &[(u64, u64)]) -> (Vec<(u64, bool)>, ChainShape) {
        let chain = chain_of(entries);
        let stack: Vec<u8> = branches
            .iter()
            .flat_map(|&(from, to)| [from, to, 0])
            .flat_map(u64::to_le_bytes)
            .collect();
        let input = ChainInput {
            callchain: Some(U64Slice::new(&chain, Endian::Little)),
            ip: Some(0x401234),
            cpumode: CpuMode::User,
            call_stack: Some(BranchStack {
                hw_idx: None,
                entries: U64Slice::new(&stack, Endian::Little),
                counters: None,
            }),
        };
        let mut out = Vec::new();
        let shape = chain_addresses(&input, None, true, &mut out);
        // LBR addresses are instructions: shown where they are looked up.
        assert!(
            branches.is_empty()
                || out
                    .iter()
                    .filter(|a| !a.kernel)
                    .all(|a| a.shown == a.lookup),
            "{out:?}"
        );
        let lookups = out.iter().map(|a| (a.lookup, a.kernel)).collect();
        (lookups, shape)
    }

    // See: issue #10 point 4
    #[test]
    fn lbr_call_stack_replaces_the_user_part_as_perf_does() {
        let (out, shape) = lbr_addresses(
            &[
                PERF_CONTEXT_KERNEL,
                0xffff_1000,
                0xffff_2000,
                PERF_CONTEXT_USER,
                0x401234,
                0x9999,
            ],
            &[(0x401581, 0x41b3b0), (0x42089e, 0x4014e0)],
        );
        // Kernel part, the function the innermost call entered, then the call sites, each
        // looked up as it is.
        assert_eq!(
            out,
            [
                (0xffff_1000, true),
                (0xffff_1fff, true),
                (0x41b3b0, false),
                (0x401581, false),
                (0x42089e, false),
            ]
        );
        assert!(!shape.fp_user_frames && !shape.broken);
    }

    #[test]
    fn an_empty_lbr_call_stack_keeps_the_frame_pointer_user_part() {
        let (out, shape) = lbr_addresses(&[PERF_CONTEXT_USER, 0x401234, 0x402000], &[]);
        assert_eq!(out, [(0x401234, false), (0x401fff, false)]);
        assert!(shape.fp_user_frames);
    }

    #[test]
    fn an_lbr_call_stack_without_a_user_callchain_is_not_used() {
        let (out, _) = lbr_addresses(&[PERF_CONTEXT_KERNEL, 0xffff_1000], &[(0x401581, 0x41b3b0)]);
        assert_eq!(out, [(0xffff_1000, true)]);
    }

    #[test]
    fn an_unknown_marker_keeps_only_the_ip() {
        let (out, shape) = addresses(
            &[PERF_CONTEXT_KERNEL, 0xffff_1000, -1000i64 as u64],
            None,
            false,
        );
        assert_eq!(out, [(0xffff_1000, true)]);
        assert!(shape.broken);
    }
}
