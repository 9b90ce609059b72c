//! Registers of the probed instruction set: each architecture's argument and return
//! registers, and registers by their perf numbers and assembler names.

/// The instruction set of the probed file (its registers and calling convention).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arch {
    /// x86_64, System V calling convention.
    X86_64,
    /// aarch64, AAPCS64.
    Aarch64,
}

impl Arch {
    /// The architecture kprof runs on, if it knows its registers.
    pub fn native() -> Option<Arch> {
        if cfg!(target_arch = "x86_64") {
            Some(Arch::X86_64)
        } else if cfg!(target_arch = "aarch64") {
            Some(Arch::Aarch64)
        } else {
            None
        }
    }

    /// The registers carrying integer arguments, in order (their perf register numbers).
    pub fn argument_registers(self) -> &'static [Register] {
        match self {
            Arch::X86_64 => &[DI, SI, DX, CX, R8, R9],
            Arch::Aarch64 => &[
                Register(0),
                Register(1),
                Register(2),
                Register(3),
                Register(4),
                Register(5),
                Register(6),
                Register(7),
            ],
        }
    }

    /// The register holding an integer return value.
    pub fn return_register(self) -> Register {
        match self {
            Arch::X86_64 => Register(0),
            Arch::Aarch64 => Register(0),
        }
    }

    /// The stack pointer.
    pub fn stack_pointer(self) -> Register {
        match self {
            Arch::X86_64 => SP,
            Arch::Aarch64 => Register(31),
        }
    }

    /// The instruction pointer.
    pub fn instruction_pointer(self) -> Register {
        match self {
            Arch::X86_64 => Register(8),
            Arch::Aarch64 => Register(32),
        }
    }

    /// `sample_regs_user` for a function probe: the argument and return registers, the stack,
    /// frame and instruction pointers.
    pub fn function_probe_regs(self) -> u64 {
        let mut mask = self.return_register().bit() | self.stack_pointer().bit();
        mask |= self.instruction_pointer().bit();
        if self == Arch::X86_64 {
            mask |= BP.bit();
        }
        for r in self.argument_registers() {
            mask |= r.bit();
        }
        mask
    }

    /// `sample_regs_user` with every general-purpose register (USDT operands may name any).
    pub fn all_regs(self) -> u64 {
        match self {
            // AX..R15 are 0..=23 except the segment registers DS, ES, FS, GS (12..=15), which
            // the kernel refuses for 64-bit tasks.
            Arch::X86_64 => ((1u64 << 24) - 1) & !(0xf << 12),
            Arch::Aarch64 => (1u64 << 33) - 1,
        }
    }
}

/// A register by its perf number (`enum perf_event_x86_regs`, `enum perf_event_arm64_regs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Register(pub u8);

const SI: Register = Register(4);
const DI: Register = Register(5);
const DX: Register = Register(3);
const CX: Register = Register(2);
const BP: Register = Register(6);
const SP: Register = Register(7);
const R8: Register = Register(16);
const R9: Register = Register(17);

impl Register {
    /// Its bit in `sample_regs_user`.
    pub fn bit(self) -> u64 {
        1u64 << self.0
    }

    /// An x86_64 register by any of its names without `%` (`rdi`, `edi`, `di`, `dil`, `r8d`),
    /// as the full 64-bit register (the operand size picks the low bytes).
    pub fn x86(name: &str) -> Option<Register> {
        let legacy = [
            ("ax", 0),
            ("bx", 1),
            ("cx", 2),
            ("dx", 3),
            ("si", 4),
            ("di", 5),
            ("bp", 6),
            ("sp", 7),
            ("ip", 8),
        ];
        let name = name.to_ascii_lowercase();
        for (base, number) in legacy {
            let byte_low = match base {
                "ax" | "bx" | "cx" | "dx" => format!("{}l", &base[..1]),
                _ => format!("{base}l"),
            };
            if name == base
                || name == format!("e{base}")
                || name == format!("r{base}")
                || (name == byte_low && base != "ip")
            {
                return Some(Register(number));
            }
        }
        let numbered = name.strip_prefix('r')?;
        let digits = numbered.trim_end_matches(['d', 'w', 'b']);
        let n: u8 = digits.parse().ok()?;
        let suffix = &numbered[digits.len()..];
        ((8..=15).contains(&n) && suffix.len() <= 1).then(|| Register(16 + (n - 8)))
    }

    /// An aarch64 register by name (`x0`..`x30`, `w0`..`w30`, `sp`, `pc`, `fp` = x29, `lr` = x30).
    pub fn aarch64(name: &str) -> Option<Register> {
        match name {
            "sp" => return Some(Register(31)),
            "pc" => return Some(Register(32)),
            "fp" => return Some(Register(29)),
            "lr" => return Some(Register(30)),
            _ => {}
        }
        let n: u8 = name
            .strip_prefix('x')
            .or_else(|| name.strip_prefix('w'))?
            .parse()
            .ok()?;
        (n <= 30).then_some(Register(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_by_name() {
        assert_eq!(Register::x86("rdi"), Some(DI));
        assert_eq!(Register::x86("edi"), Some(DI));
        assert_eq!(Register::x86("dil"), Some(DI));
        assert_eq!(Register::x86("al"), Some(Register(0)));
        assert_eq!(Register::x86("r9d"), Some(R9));
        assert_eq!(Register::x86("r15"), Some(Register(23)));
        assert_eq!(Register::x86("r16"), None);
        assert_eq!(Register::x86("xmm0"), None);
        assert_eq!(Register::aarch64("w7"), Some(Register(7)));
        assert_eq!(Register::aarch64("x31"), None);
    }
}
