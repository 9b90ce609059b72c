//! Probe arguments from a sample's user registers (and stack copy): `arg0`..`argN` and `retval`
//! by the calling convention (x86_64 System V, aarch64 AAPCS64), and USDT operands.

use super::globals::GlobalOperand;
use super::regs::Register;
use super::usdt::{Operand, UsdtArg};

/// Reads the global of a `sym(%rip)` operand from the probed process: its `size` bytes as a
/// word, `None` when unreadable (see [`super::globals`]).
pub type ReadGlobal<'a> = dyn FnMut(&GlobalOperand, u8) -> Option<u64> + 'a;

/// A [`ReadGlobal`] that reads nothing (a recording whose processes are gone).
pub fn no_globals(_: &GlobalOperand, _: u8) -> Option<u64> {
    None
}

/// The user registers of one sample, as `PERF_SAMPLE_REGS_USER` stores them: values in
/// ascending register-number order for the bits of `mask`.
#[derive(Debug, Clone, Copy)]
pub struct SampledRegs<'a> {
    /// The attr's `sample_regs_user`.
    pub mask: u64,
    /// The values (one per set bit).
    pub values: &'a [u64],
}

impl SampledRegs<'_> {
    /// The value of `reg`, when it was sampled.
    pub fn get(&self, reg: Register) -> Option<u64> {
        if reg.0 >= 64 || self.mask & reg.bit() == 0 {
            return None;
        }
        let below = (self.mask & (reg.bit() - 1)).count_ones();
        self.values.get(usize::try_from(below).ok()?).copied()
    }
}

/// The user stack copy of one sample (`PERF_SAMPLE_STACK_USER`): bytes from the sampled stack
/// pointer up.
#[derive(Debug, Clone, Copy)]
pub struct StackCopy<'a> {
    /// The stack pointer the copy starts at.
    pub sp: u64,
    /// The bytes copied (its `dyn_size`).
    pub bytes: &'a [u8],
}

impl StackCopy<'_> {
    /// `size` bytes at `address`, when the copy holds them.
    pub fn read(&self, address: u64, size: usize) -> Option<&[u8]> {
        let start = usize::try_from(address.checked_sub(self.sp)?).ok()?;
        self.bytes.get(start..start.checked_add(size)?)
    }
}

/// A decoded argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgValue {
    /// A signed value (a USDT argument with a negative size).
    Signed(i64),
    /// An unsigned value (registers by calling convention, unsigned USDT arguments).
    Unsigned(u64),
    /// A memory operand outside the captured stack copy: its address, value unknown.
    Unread {
        /// The operand's address.
        address: u64,
    },
    /// A register or the stack copy was not in the sample.
    Missing,
}

/// Truncates `raw` to `size` bytes, sign-extending when `signed`.
fn sized(raw: u64, size: u8, signed: bool) -> ArgValue {
    let bits = u32::from(size) * 8;
    if bits >= 64 {
        return if signed {
            ArgValue::Signed(raw as i64)
        } else {
            ArgValue::Unsigned(raw)
        };
    }
    let masked = raw & ((1u64 << bits) - 1);
    if signed {
        let shift = 64 - bits;
        ArgValue::Signed(((masked << shift) as i64) >> shift)
    } else {
        ArgValue::Unsigned(masked)
    }
}

/// The value of USDT argument `arg` in a sample; `sym(%rip)` operands through `globals`.
pub fn usdt_value(
    arg: &UsdtArg,
    regs: &SampledRegs<'_>,
    stack: Option<&StackCopy<'_>>,
    globals: &mut ReadGlobal<'_>,
) -> ArgValue {
    match &arg.operand {
        Operand::Immediate(v) => sized(*v as u64, arg.size, arg.signed),
        Operand::Register(r) => match regs.get(*r) {
            Some(v) => sized(v, arg.size, arg.signed),
            None => ArgValue::Missing,
        },
        Operand::Memory {
            base,
            index,
            displacement,
            symbol,
        } => {
            // `sym(%rip)` is a global: not in the stack copy; read from the process (its
            // link-time address, moved by the file's load bias there) when it can be.
            if symbol.is_some() {
                return match &arg.global {
                    Some(global) => match globals(global, arg.size) {
                        Some(raw) => sized(raw, arg.size, arg.signed),
                        None => ArgValue::Unread {
                            address: global.vaddr,
                        },
                    },
                    None => ArgValue::Unread {
                        address: *displacement as u64,
                    },
                };
            }
            let mut address = *displacement as u64;
            if let Some(b) = base {
                let Some(v) = regs.get(*b) else {
                    return ArgValue::Missing;
                };
                address = address.wrapping_add(v);
            }
            if let Some((i, scale)) = index {
                let Some(v) = regs.get(*i) else {
                    return ArgValue::Missing;
                };
                address = address.wrapping_add(v.wrapping_mul(u64::from(*scale)));
            }
            let bytes = stack.and_then(|s| s.read(address, usize::from(arg.size)));
            match bytes {
                Some(b) => {
                    let mut word = [0u8; 8];
                    if let Some(dst) = word.get_mut(..b.len()) {
                        dst.copy_from_slice(b);
                    }
                    sized(u64::from_ne_bytes(word), arg.size, arg.signed)
                }
                None => ArgValue::Unread { address },
            }
        }
    }
}

/// True when some argument is read from memory (the sample then needs a stack copy).
pub fn needs_stack(args: &[UsdtArg]) -> bool {
    args.iter().any(|a| {
        matches!(
            a.operand,
            Operand::Memory {
                base: Some(_),
                symbol: None,
                ..
            }
        )
    })
}

/// Field names `arg0`.. for the trace event contract.
pub const ARG_NAMES: [&str; 12] = [
    "arg0", "arg1", "arg2", "arg3", "arg4", "arg5", "arg6", "arg7", "arg8", "arg9", "arg10",
    "arg11",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::regs::Arch;
    use crate::probe::usdt::parse_arg;

    #[test]
    fn sampled_registers_are_indexed_by_mask_rank() {
        let mask = Arch::X86_64.function_probe_regs();
        // ax cx dx si di bp sp ip r8 r9 in perf number order.
        let values = [100, 2, 3, 4, 5, 6, 0x7000, 8, 16, 17];
        assert_eq!(mask.count_ones() as usize, values.len());
        let regs = SampledRegs {
            mask,
            values: &values,
        };
        let args: Vec<u64> = Arch::X86_64
            .argument_registers()
            .iter()
            .map(|r| regs.get(*r).unwrap())
            .collect();
        assert_eq!(args, [5, 4, 3, 2, 16, 17]);
        assert_eq!(regs.get(Arch::X86_64.return_register()), Some(100));
        assert_eq!(regs.get(Register(1)), None);
    }

    #[test]
    fn usdt_values_from_registers_stack_and_immediates() {
        let mask = Arch::X86_64.all_regs();
        let mut values = [0u64; 20];
        values[5] = 0xffff_fffe; // rdi: -2 as an int
        values[6] = 0x7010; // rbp
        values[7] = 0x7000; // rsp
        values[0] = 0x1234_5678_9abc_def0; // rax
        let regs = SampledRegs {
            mask,
            values: &values,
        };
        let mut stack = vec![0u8; 32];
        stack[0..8].copy_from_slice(&42u64.to_ne_bytes()); // at 0x7000 = rbp-16
        let copy = StackCopy {
            sp: 0x7000,
            bytes: &stack,
        };
        let v = |spec: &str| {
            usdt_value(
                &parse_arg(spec, Arch::X86_64).unwrap(),
                &regs,
                Some(&copy),
                &mut no_globals,
            )
        };
        assert_eq!(v("-4@%edi"), ArgValue::Signed(-2));
        assert_eq!(v("4@%edi"), ArgValue::Unsigned(0xffff_fffe));
        assert_eq!(v("8@-16(%rbp)"), ArgValue::Unsigned(42));
        assert_eq!(v("-4@$5"), ArgValue::Signed(5));
        assert_eq!(v("8@%rax"), ArgValue::Unsigned(0x1234_5678_9abc_def0));
        assert_eq!(v("2@%ax"), ArgValue::Unsigned(0xdef0));
        assert_eq!(v("8@64(%rbp)"), ArgValue::Unread { address: 0x7050 });
        assert_eq!(v("8@g(%rip)"), ArgValue::Unread { address: 0 });
        let none = usdt_value(
            &parse_arg("8@-16(%rbp)", Arch::X86_64).unwrap(),
            &regs,
            None,
            &mut no_globals,
        );
        assert_eq!(none, ArgValue::Unread { address: 0x7000 });
        // See: issue #15 (sym(%rip) operands read the global, not its address).
        let mut global = parse_arg("-4@answer(%rip)", Arch::X86_64).unwrap();
        global.global = Some(GlobalOperand {
            vaddr: 0x4020,
            first_load_offset: 0,
            first_load_vaddr: 0,
        });
        let mut asked = Vec::new();
        let mut memory = |g: &GlobalOperand, size: u8| {
            asked.push((g.vaddr, size));
            Some(0xffff_fff9)
        };
        assert_eq!(
            usdt_value(&global, &regs, None, &mut memory),
            ArgValue::Signed(-7)
        );
        assert_eq!(asked, [(0x4020, 4)]);
        assert_eq!(
            usdt_value(&global, &regs, None, &mut no_globals),
            ArgValue::Unread { address: 0x4020 }
        );
    }
}
