//! Frame-pointer walks over the copied stack, and joining a DWARF walk with the kernel's fp chain.

use super::regs::UserRegs;
use super::types::{Arch, FrameAddress, StackBytes, UnwindEnd, Unwound};
use crate::process::Avma;

/// Walks the frame-pointer chain inside `stack`, starting at the sampled pc and `rbp` / `x29`.
///
/// Each frame record is `[saved fp, return address]` at fp (x86_64 `push rbp; mov rbp, rsp`,
/// aarch64 `stp x29, x30`). The walk stops with [`UnwindEnd::ReachedRoot`] when fp or the return
/// address is 0, [`UnwindEnd::Loop`] when fp does not strictly increase,
/// [`UnwindEnd::StackExhausted`] when `fp + 16` overflows or a read falls outside the copy (also
/// when no frame pointer was recorded), and [`UnwindEnd::DepthLimit`] at `max_frames` frames.
///
/// The leaf's caller is missed when the sample hit a function's prologue or a function without a
/// frame record; on aarch64 the link register is not consulted.
pub fn unwind_frame_pointers(
    arch: Arch,
    regs: &UserRegs,
    stack: &StackBytes<'_>,
    max_frames: usize,
) -> Unwound {
    let _ = arch; // both supported layouts are [fp, ra] at fp
    let mut frames = Vec::new();
    if max_frames == 0 {
        return Unwound {
            frames,
            end: UnwindEnd::DepthLimit,
        };
    }
    frames.push(FrameAddress::InstructionPointer(Avma(regs.pc())));
    let Some(mut fp) = regs.fp() else {
        return Unwound {
            frames,
            end: UnwindEnd::StackExhausted,
        };
    };
    let end = loop {
        if fp == 0 {
            break UnwindEnd::ReachedRoot;
        }
        if frames.len() >= max_frames {
            break UnwindEnd::DepthLimit;
        }
        let Some(ra_slot) = fp
            .checked_add(8)
            .filter(|slot| slot.checked_add(8).is_some())
        else {
            break UnwindEnd::StackExhausted;
        };
        let (Some(next_fp), Some(return_address)) = (stack.read_u64(fp), stack.read_u64(ra_slot))
        else {
            break UnwindEnd::StackExhausted;
        };
        if return_address == 0 {
            break UnwindEnd::ReachedRoot;
        }
        frames.push(FrameAddress::ReturnAddress(Avma(return_address)));
        if next_fp == 0 {
            break UnwindEnd::ReachedRoot;
        }
        if next_fp <= fp {
            break UnwindEnd::Loop;
        }
        fp = next_fp;
    };
    Unwound { frames, end }
}

/// Continues a DWARF walk that stopped at [`UnwindEnd::StackExhausted`] with the user part of
/// the sample's `PERF_SAMPLE_CALLCHAIN` (the frame-pointer chain the kernel walked).
///
/// `user_chain` is that user part alone, leaf first: the caller takes it out of the raw
/// callchain, whose context markers are perf's format, not this crate's (kprof uses
/// `kprof_perfdata::kinds::context::user_entries`). The deepest DWARF frame's address is
/// searched in it; when found at position `j`, the entries after `j` are appended as return
/// addresses (up to `max_frames` in total, stopping at a 0) and the end becomes
/// [`UnwindEnd::JoinedFramePointerChain`] (or [`UnwindEnd::DepthLimit`]). Any other walk, or
/// one whose last frame is not in the chain, is returned unchanged.
pub fn join_with_fp_chain(unwound: Unwound, user_chain: &[u64], max_frames: usize) -> Unwound {
    if unwound.end != UnwindEnd::StackExhausted {
        return unwound;
    }
    let Some(last) = unwound.frames.last().map(|frame| frame.address().0) else {
        return unwound;
    };
    let Some(position) = user_chain.iter().position(|&address| address == last) else {
        return unwound;
    };
    let mut joined = unwound;
    let mut end = UnwindEnd::JoinedFramePointerChain;
    for &address in user_chain.iter().skip(position + 1) {
        if joined.frames.len() >= max_frames {
            end = UnwindEnd::DepthLimit;
            break;
        }
        if address == 0 {
            break;
        }
        joined
            .frames
            .push(FrameAddress::ReturnAddress(Avma(address)));
    }
    joined.end = end;
    joined
}

#[cfg(test)]
mod tests {
    use super::*;

    const STACK_START: u64 = 0x7fff_0000;

    fn x86_regs(pc: u64, sp: u64, fp: u64) -> UserRegs {
        UserRegs::new(Arch::X86_64, pc, sp).with_dwarf_register(6, fp)
    }

    fn stack_of(words: &[u64]) -> Vec<u8> {
        words.iter().flat_map(|word| word.to_le_bytes()).collect()
    }

    fn addr(word_index: u64) -> u64 {
        STACK_START + 8 * word_index
    }

    #[test]
    fn walks_a_well_formed_chain_to_the_root() {
        // Records at words 2 and 6; the outer one ends the chain with fp = 0.
        let words = [0, 0, addr(6), 0x1111, 0, 0, 0, 0x2222];
        let bytes = stack_of(&words);
        let stack = StackBytes {
            start: STACK_START,
            bytes: &bytes,
        };
        let unwound = unwind_frame_pointers(
            Arch::X86_64,
            &x86_regs(0x9999, STACK_START, addr(2)),
            &stack,
            64,
        );
        assert_eq!(
            unwound.frames,
            [
                FrameAddress::InstructionPointer(Avma(0x9999)),
                FrameAddress::ReturnAddress(Avma(0x1111)),
                FrameAddress::ReturnAddress(Avma(0x2222)),
            ]
        );
        assert_eq!(unwound.end, UnwindEnd::ReachedRoot);
    }

    #[test]
    fn fp_pointing_to_itself_stops_as_loop() {
        let words = [addr(0), 0x1111];
        let bytes = stack_of(&words);
        let stack = StackBytes {
            start: STACK_START,
            bytes: &bytes,
        };
        let unwound = unwind_frame_pointers(
            Arch::X86_64,
            &x86_regs(1, STACK_START, addr(0)),
            &stack,
            1000,
        );
        assert_eq!(unwound.end, UnwindEnd::Loop);
        assert_eq!(unwound.frames.len(), 2);
        assert!(unwound.end.is_truncated());
    }

    #[test]
    fn fp_going_downward_stops_as_loop() {
        let words = [0, 0, addr(0), 0x1111];
        let bytes = stack_of(&words);
        let stack = StackBytes {
            start: STACK_START,
            bytes: &bytes,
        };
        let unwound = unwind_frame_pointers(
            Arch::X86_64,
            &x86_regs(1, STACK_START, addr(2)),
            &stack,
            1000,
        );
        assert_eq!(unwound.end, UnwindEnd::Loop);
    }

    #[test]
    fn fp_zero_is_the_root() {
        let bytes = stack_of(&[0, 0]);
        let stack = StackBytes {
            start: STACK_START,
            bytes: &bytes,
        };
        let unwound = unwind_frame_pointers(Arch::X86_64, &x86_regs(7, STACK_START, 0), &stack, 10);
        assert_eq!(unwound.frames, [FrameAddress::InstructionPointer(Avma(7))]);
        assert_eq!(unwound.end, UnwindEnd::ReachedRoot);
    }

    #[test]
    fn fp_near_u64_max_does_not_overflow() {
        let bytes = stack_of(&[0, 0]);
        let stack = StackBytes {
            start: STACK_START,
            bytes: &bytes,
        };
        for fp in [u64::MAX - 7, u64::MAX - 15, u64::MAX] {
            let unwound =
                unwind_frame_pointers(Arch::X86_64, &x86_regs(7, STACK_START, fp), &stack, 10);
            assert_eq!(unwound.end, UnwindEnd::StackExhausted, "fp {fp:#x}");
            assert_eq!(unwound.frames.len(), 1);
        }
    }

    #[test]
    fn fp_outside_the_copy_is_stack_exhausted() {
        let bytes = stack_of(&[0, 0, addr(100), 0x5]);
        let stack = StackBytes {
            start: STACK_START,
            bytes: &bytes,
        };
        let unwound =
            unwind_frame_pointers(Arch::X86_64, &x86_regs(7, STACK_START, addr(2)), &stack, 10);
        assert_eq!(unwound.frames.len(), 2);
        assert_eq!(unwound.end, UnwindEnd::StackExhausted);
        // Below the copy.
        let unwound = unwind_frame_pointers(Arch::X86_64, &x86_regs(7, STACK_START, 8), &stack, 10);
        assert_eq!(unwound.end, UnwindEnd::StackExhausted);
    }

    #[test]
    fn depth_limit_is_respected() {
        // A long increasing chain: record i at word 2i points to word 2i+2.
        let words: Vec<u64> = (0..400u64)
            .flat_map(|i| [addr(2 * i + 2), 0x1000 + i])
            .collect();
        let bytes = stack_of(&words);
        let stack = StackBytes {
            start: STACK_START,
            bytes: &bytes,
        };
        for max in [0, 1, 2, 17] {
            let unwound = unwind_frame_pointers(
                Arch::X86_64,
                &x86_regs(7, STACK_START, addr(0)),
                &stack,
                max,
            );
            assert_eq!(unwound.frames.len(), max);
            assert_eq!(unwound.end, UnwindEnd::DepthLimit);
        }
    }

    #[test]
    fn missing_frame_pointer_register() {
        let regs = UserRegs::new(Arch::Aarch64, 0x10, STACK_START);
        let stack = StackBytes {
            start: STACK_START,
            bytes: &[],
        };
        let unwound = unwind_frame_pointers(Arch::Aarch64, &regs, &stack, 10);
        assert_eq!(
            unwound.frames,
            [FrameAddress::InstructionPointer(Avma(0x10))]
        );
        assert_eq!(unwound.end, UnwindEnd::StackExhausted);
    }

    #[test]
    fn garbage_stacks_never_exceed_the_limit() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2000 {
            let words: Vec<u64> = (0..64)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    // Mix plausible stack pointers with junk.
                    if state % 3 == 0 {
                        STACK_START + (state % 600)
                    } else {
                        state
                    }
                })
                .collect();
            let bytes = stack_of(&words);
            let stack = StackBytes {
                start: STACK_START,
                bytes: &bytes,
            };
            let fp = words[0];
            let unwound =
                unwind_frame_pointers(Arch::X86_64, &x86_regs(1, STACK_START, fp), &stack, 32);
            assert!(unwound.frames.len() <= 32);
            if unwound.end == UnwindEnd::DepthLimit {
                assert_eq!(unwound.frames.len(), 32);
            }
        }
    }

    #[test]
    fn join_appends_the_kernel_chain_after_the_last_dwarf_frame() {
        let dwarf = Unwound {
            frames: vec![
                FrameAddress::InstructionPointer(Avma(0x10)),
                FrameAddress::ReturnAddress(Avma(0x20)),
                FrameAddress::ReturnAddress(Avma(0x30)),
            ],
            end: UnwindEnd::StackExhausted,
        };
        let callchain = [
            0x10, 0xdead, // garbage from an omitted frame pointer
            0x30, 0x40, 0x50,
        ];
        let joined = join_with_fp_chain(dwarf.clone(), &callchain, 64);
        assert_eq!(joined.end, UnwindEnd::JoinedFramePointerChain);
        assert_eq!(
            &joined.frames[3..],
            [
                FrameAddress::ReturnAddress(Avma(0x40)),
                FrameAddress::ReturnAddress(Avma(0x50))
            ]
        );
        let limited = join_with_fp_chain(dwarf.clone(), &callchain, 4);
        assert_eq!(limited.frames.len(), 4);
        assert_eq!(limited.end, UnwindEnd::DepthLimit);
        // No user part, or one without the last frame → unchanged.
        assert_eq!(join_with_fp_chain(dwarf.clone(), &[], 64), dwarf);
        assert_eq!(
            join_with_fp_chain(dwarf.clone(), &callchain[..2], 64),
            dwarf
        );
        // Other ends are left alone.
        let complete = Unwound {
            end: UnwindEnd::ReachedRoot,
            ..dwarf
        };
        assert_eq!(
            join_with_fp_chain(complete.clone(), &callchain, 64),
            complete
        );
    }
}
