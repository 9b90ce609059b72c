//! One sample's stack as leaf-first [`StackAddress`]es: its callchain read through the kernel's
//! `PERF_CONTEXT_*` markers, with the user part replaced by DWARF-unwound frames when there are
//! any. Pure functions, so the replay thread and the unwinding workers share them.

use kprof_perfdata::{CpuMode, Sample as PerfSample, U64Slice};

/// `PERF_CONTEXT_*` markers in a callchain are the values at and above this.
const PERF_CONTEXT_MAX: u64 = -4095i64 as u64;
const PERF_CONTEXT_KERNEL: u64 = -128i64 as u64;
const PERF_CONTEXT_USER: u64 = -512i64 as u64;
const PERF_CONTEXT_GUEST_KERNEL: u64 = -2176i64 as u64;
const PERF_CONTEXT_GUEST_USER: u64 = -2560i64 as u64;
const PERF_CONTEXT_HV: u64 = -32i64 as u64;

/// What a sample's stack is built from: its callchain (with its context markers), its
/// instruction pointer and where it was taken. Small, so samples can wait in a batch.
#[derive(Clone, Copy)]
pub struct ChainInput<'f> {
    /// The raw callchain, markers included.
    pub callchain: Option<U64Slice<'f>>,
    /// The sampled instruction.
    pub ip: Option<u64>,
    /// Where the sample was taken.
    pub cpumode: CpuMode,
}

impl<'f> ChainInput<'f> {
    /// The chain input of a decoded sample.
    pub fn of(sample: &PerfSample<'f>) -> Self {
        ChainInput {
            callchain: sample.callchain,
            ip: sample.ip,
            cpumode: sample.cpumode,
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
pub fn chain_addresses(
    sample: &ChainInput<'_>,
    user: Option<&[StackAddress]>,
    call_site_lookup: bool,
    out: &mut Vec<StackAddress>,
) -> ChainShape {
    let mut shape = ChainShape::default();
    let first = out.len();
    let sample_in_kernel = matches!(sample.cpumode, CpuMode::Kernel | CpuMode::GuestKernel);
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
                    if !kernel && user.is_some() {
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
            };
            let mut out = Vec::new();
            chain_addresses(&input, user, true, &mut out);
            assert_eq!(out, [StackAddress::at(0x401234, false)], "{user:?}");
        }
        let input = ChainInput {
            callchain: None,
            ip: Some(0x401234),
            cpumode: CpuMode::User,
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
        };
        for call_site in [false, true] {
            let mut out = Vec::new();
            chain_addresses(&input, None, call_site, &mut out);
            let shown: Vec<u64> = out.iter().map(|a| a.shown).collect();
            assert_eq!(shown, [0x401000, 0x402000], "call_site {call_site}");
        }
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
