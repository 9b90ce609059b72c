//! The user register set of one sample, in DWARF register numbering.

use super::types::Arch;

/// Number of DWARF registers tracked: x86_64 0..=16 (16 = return address), aarch64 0..=32
/// (31 = sp, 32 = pc).
pub(crate) const REGISTER_COUNT: usize = 33;

/// x86_64 DWARF register numbers.
pub(crate) mod x86_64 {
    /// `rbp`.
    pub const RBP: u16 = 6;
    /// `rsp`.
    pub const RSP: u16 = 7;
    /// The return address column (`rip`).
    pub const RA: u16 = 16;
}

/// aarch64 DWARF register numbers.
pub(crate) mod aarch64 {
    /// `x29`, the frame pointer.
    pub const FP: u16 = 29;
    /// `x30`, the link register (return address column).
    pub const LR: u16 = 30;
    /// `sp`.
    pub const SP: u16 = 31;
    /// `pc`.
    pub const PC: u16 = 32;
}

/// Maps an x86_64 perf register index (`arch/x86/include/uapi/asm/perf_regs.h`) to its DWARF
/// number; `IP` maps to the return-address column 16.
fn x86_64_perf_to_dwarf(perf_index: u32) -> Option<u16> {
    Some(match perf_index {
        0 => 0,                                         // AX
        1 => 3,                                         // BX
        2 => 2,                                         // CX
        3 => 1,                                         // DX
        4 => 4,                                         // SI
        5 => 5,                                         // DI
        6 => 6,                                         // BP
        7 => 7,                                         // SP
        8 => 16,                                        // IP
        16..=23 => u16::try_from(perf_index - 8).ok()?, // R8..R15 → 8..15
        _ => return None,                               // FLAGS, segment registers
    })
}

/// Maps an arm64 perf register index (`arch/arm64/include/uapi/asm/perf_regs.h`) to its DWARF
/// number: X0..X30 → 0..30, SP → 31, PC → 32.
fn aarch64_perf_to_dwarf(perf_index: u32) -> Option<u16> {
    if perf_index <= 32 {
        u16::try_from(perf_index).ok()
    } else {
        None
    }
}

/// The registers of the sampled thread at sample time (or of a frame during a walk).
///
/// Stored in DWARF numbering; the pc is kept separately and also answers as x86_64 register 16
/// and aarch64 register 32, which CFI expressions (glibc's PLT rule) read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRegs {
    arch: Arch,
    pc: u64,
    values: [u64; REGISTER_COUNT],
    known: u64,
}

impl UserRegs {
    /// A register set with only pc and sp known.
    pub fn new(arch: Arch, pc: u64, sp: u64) -> Self {
        let mut regs = Self {
            arch,
            pc,
            values: [0; REGISTER_COUNT],
            known: 0,
        };
        regs.set(regs.sp_register(), sp);
        regs
    }

    /// Builds the register set from `PERF_SAMPLE_REGS_USER`: `values` holds one value per set bit
    /// of `mask`, in ascending bit order (the `sample_regs_user` of the event's attr). Returns
    /// `None` when the pc or sp is missing from the mask or the values.
    pub fn from_perf(arch: Arch, mask: u64, values: &[u64]) -> Option<Self> {
        let mut pc = None;
        let mut regs = Self {
            arch,
            pc: 0,
            values: [0; REGISTER_COUNT],
            known: 0,
        };
        let set_bits = (0..64u32).filter(|bit| mask & (1u64 << bit) != 0);
        for (perf_index, &value) in set_bits.zip(values) {
            let dwarf = match arch {
                Arch::X86_64 => x86_64_perf_to_dwarf(perf_index),
                Arch::Aarch64 => aarch64_perf_to_dwarf(perf_index),
            };
            match (arch, dwarf) {
                (Arch::X86_64, Some(x86_64::RA)) | (Arch::Aarch64, Some(aarch64::PC)) => {
                    pc = Some(value);
                }
                (_, Some(register)) => regs.set(register, value),
                (_, None) => {}
            }
        }
        regs.pc = pc?;
        regs.get(regs.sp_register())?;
        Some(regs)
    }

    /// Sets a register by DWARF number (builder style, for synthetic register sets).
    #[must_use]
    pub fn with_dwarf_register(mut self, register: u16, value: u64) -> Self {
        self.set(register, value);
        self
    }

    /// The architecture.
    pub fn arch(&self) -> Arch {
        self.arch
    }

    /// The instruction pointer.
    pub fn pc(&self) -> u64 {
        self.pc
    }

    /// The stack pointer.
    pub fn sp(&self) -> u64 {
        self.get(self.sp_register()).unwrap_or(0)
    }

    /// The frame pointer (`rbp` / `x29`), if recorded.
    pub fn fp(&self) -> Option<u64> {
        self.get(match self.arch {
            Arch::X86_64 => x86_64::RBP,
            Arch::Aarch64 => aarch64::FP,
        })
    }

    /// The link register (`x30`) on aarch64; `None` on x86_64.
    pub fn lr(&self) -> Option<u64> {
        match self.arch {
            Arch::X86_64 => None,
            Arch::Aarch64 => self.get(aarch64::LR),
        }
    }

    /// A register by DWARF number, if known. The pc answers as x86_64 16 and aarch64 32.
    pub fn get(&self, register: u16) -> Option<u64> {
        if self.is_pc_register(register) {
            return Some(self.pc);
        }
        let index = usize::from(register);
        if index < REGISTER_COUNT && self.known & (1u64 << index) != 0 {
            self.values.get(index).copied()
        } else {
            None
        }
    }

    pub(crate) fn set(&mut self, register: u16, value: u64) {
        if self.is_pc_register(register) {
            self.pc = value;
            return;
        }
        let index = usize::from(register);
        if let Some(slot) = self.values.get_mut(index) {
            *slot = value;
            self.known |= 1u64 << index;
        }
    }

    pub(crate) fn forget(&mut self, register: u16) {
        let index = usize::from(register);
        if index < REGISTER_COUNT {
            self.known &= !(1u64 << index);
        }
    }

    pub(crate) fn set_pc(&mut self, pc: u64) {
        self.pc = pc;
    }

    pub(crate) fn sp_register(&self) -> u16 {
        match self.arch {
            Arch::X86_64 => x86_64::RSP,
            Arch::Aarch64 => aarch64::SP,
        }
    }

    pub(crate) fn return_address_register(&self) -> u16 {
        match self.arch {
            Arch::X86_64 => x86_64::RA,
            Arch::Aarch64 => aarch64::LR,
        }
    }

    fn is_pc_register(&self, register: u16) -> bool {
        matches!(
            (self.arch, register),
            (Arch::X86_64, x86_64::RA) | (Arch::Aarch64, aarch64::PC)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x86_64_mask_order_maps_to_dwarf_numbers() {
        // AX, BX, BP, SP, IP, R15 set; values in ascending bit order.
        let mask = (1 << 0) | (1 << 1) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 23);
        let regs = UserRegs::from_perf(Arch::X86_64, mask, &[10, 11, 16, 17, 18, 33]).unwrap();
        assert_eq!(regs.get(0), Some(10));
        assert_eq!(regs.get(3), Some(11));
        assert_eq!(regs.fp(), Some(16));
        assert_eq!(regs.sp(), 17);
        assert_eq!(regs.pc(), 18);
        assert_eq!(regs.get(15), Some(33));
        assert_eq!(regs.get(1), None);
        assert_eq!(regs.lr(), None);
    }

    #[test]
    fn aarch64_registers() {
        let mask = (1u64 << 29) | (1 << 30) | (1 << 31) | (1 << 32);
        let regs = UserRegs::from_perf(Arch::Aarch64, mask, &[0x100, 0x200, 0x300, 0x400]).unwrap();
        assert_eq!(regs.fp(), Some(0x100));
        assert_eq!(regs.lr(), Some(0x200));
        assert_eq!(regs.sp(), 0x300);
        assert_eq!(regs.pc(), 0x400);
    }

    #[test]
    fn missing_pc_or_sp_or_values_is_none() {
        assert!(UserRegs::from_perf(Arch::X86_64, 1 << 7, &[1]).is_none());
        assert!(UserRegs::from_perf(Arch::X86_64, 1 << 8, &[1]).is_none());
        // Mask says SP and IP but only one value is present.
        assert!(UserRegs::from_perf(Arch::X86_64, (1 << 7) | (1 << 8), &[1]).is_none());
        assert!(UserRegs::from_perf(Arch::X86_64, u64::MAX, &[]).is_none());
    }
}
