//! USDT probes: the `.note.stapsdt` notes `<sys/sdt.h>` leaves in a binary (location, base,
//! semaphore, provider, name, argument specs), and the argument operand specs themselves
//! (`-4@%edi`, `8@-16(%rbp)`, `4@$5`, `8@%rax` on x86_64; `-4@w1`, `8@[sp, 16]` on aarch64).

use super::elf::ElfImage;
use super::regs::{Arch, Register};
use object::read::elf::{ElfFile64, FileHeader, SectionHeader};
use object::{Endianness, Object, ObjectSection};

/// One USDT probe site as its note describes it, addresses already adjusted for prelinking
/// (the note's `base` against the `.stapsdt.base` section's address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsdtNote {
    /// The provider (`libc`, `myapp`).
    pub provider: String,
    /// The probe's name.
    pub name: String,
    /// Virtual address of the probe's `nop`.
    pub address: u64,
    /// Virtual address of the semaphore (a `unsigned short` counter), 0 when unguarded.
    pub semaphore: u64,
    /// The argument string as stored (`-4@%edi 8@-16(%rbp)`).
    pub arg_text: String,
}

/// The note type `<sys/sdt.h>` uses, with owner name `stapsdt`.
const NT_STAPSDT: u32 = 3;

/// Every USDT note of the image (empty when it has none). Only 64-bit ELF files are read.
pub fn notes(image: &ElfImage) -> Result<Vec<UsdtNote>, String> {
    let elf = ElfFile64::<Endianness>::parse(image.bytes()).map_err(|e| e.to_string())?;
    let endian = elf.endian();
    let base_section = elf.section_by_name(".stapsdt.base").map(|s| s.address());
    let mut out = Vec::new();
    for header in elf.elf_section_table().iter() {
        let Ok(name) = elf.elf_section_table().section_name(endian, header) else {
            continue;
        };
        if name != b".note.stapsdt" {
            continue;
        }
        let Some(mut notes) = header
            .notes(endian, image.bytes())
            .map_err(|e| e.to_string())?
        else {
            continue;
        };
        while let Some(note) = notes.next().map_err(|e| e.to_string())? {
            if note.name() != b"stapsdt" || note.n_type(endian).0 != NT_STAPSDT {
                continue;
            }
            if let Some(parsed) = parse_note_desc(
                note.desc(),
                elf.elf_header().is_little_endian(),
                base_section,
            ) {
                out.push(parsed);
            }
        }
    }
    Ok(out)
}

/// Parses one note's descriptor: pc, base, semaphore (8 bytes each), then provider, name and
/// arguments as NUL-terminated strings.
pub fn parse_note_desc(
    desc: &[u8],
    little_endian: bool,
    base_section: Option<u64>,
) -> Option<UsdtNote> {
    let word = |at: usize| -> Option<u64> {
        let bytes: [u8; 8] = desc.get(at..at + 8)?.try_into().ok()?;
        Some(if little_endian {
            u64::from_le_bytes(bytes)
        } else {
            u64::from_be_bytes(bytes)
        })
    };
    let (pc, base, semaphore) = (word(0)?, word(8)?, word(16)?);
    let mut strings = desc.get(24..)?.split(|&b| b == 0);
    let mut next = || {
        strings
            .next()
            .and_then(|s| std::str::from_utf8(s).ok())
            .map(str::to_owned)
    };
    let provider = next()?;
    let name = next()?;
    let arg_text = next().unwrap_or_default();
    // Prelink moves everything by the same amount; the note's base says where it was.
    let shift = |addr: u64| match base_section {
        Some(actual) if addr != 0 => addr.wrapping_add(actual).wrapping_sub(base),
        _ => addr,
    };
    Some(UsdtNote {
        provider,
        name,
        address: shift(pc),
        semaphore: shift(semaphore),
        arg_text,
    })
}

/// Where a USDT argument's value is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operand {
    /// In a register.
    Register(Register),
    /// A constant.
    Immediate(i64),
    /// In memory at `base + displacement` (plus `index * scale`); `symbol` for `sym(%rip)`.
    Memory {
        /// The base register (`%rbp`, `sp`); `None` for an absolute address.
        base: Option<Register>,
        /// `(index register, scale)` of `disp(%base,%index,scale)`.
        index: Option<(Register, u8)>,
        /// The displacement.
        displacement: i64,
        /// A symbol the displacement is relative to (`counter(%rip)`), if any.
        symbol: Option<String>,
    },
}

/// One USDT argument: its size and signedness from `[-]SIZE@`, and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsdtArg {
    /// 1, 2, 4 or 8 bytes.
    pub size: u8,
    /// A negative size means a signed value.
    pub signed: bool,
    /// Where the value is.
    pub operand: Operand,
    /// The spec as written.
    pub text: String,
    /// For a `sym(%rip)` operand: where the global lies in the file (filled in when the probe
    /// is resolved against its file; `None` until then, or when the symbol is not there).
    pub global: Option<super::globals::GlobalOperand>,
}

/// Splits the argument string into specs: separated by spaces, except inside the brackets of
/// an aarch64 memory operand (`[sp, 16]`).
pub fn split_args(text: &str) -> Vec<String> {
    let mut specs = Vec::new();
    let mut current = String::new();
    let mut depth = 0i32;
    for c in text.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            _ => {}
        }
        if c.is_whitespace() && depth <= 0 {
            if !current.is_empty() {
                specs.push(std::mem::take(&mut current));
            }
        } else {
            current.push(c);
        }
    }
    if !current.is_empty() {
        specs.push(current);
    }
    specs
}

/// Parses every spec of an argument string.
pub fn parse_args(text: &str, arch: Arch) -> Result<Vec<UsdtArg>, String> {
    split_args(text)
        .iter()
        .map(|s| parse_arg(s, arch))
        .collect()
}

/// Parses one `[-]SIZE@OPERAND` spec.
pub fn parse_arg(spec: &str, arch: Arch) -> Result<UsdtArg, String> {
    let bad = |why: &str| format!("USDT argument '{spec}': {why}");
    let (size_text, operand_text) = spec
        .split_once('@')
        .ok_or_else(|| bad("expected SIZE@OPERAND"))?;
    let size: i32 = size_text.parse().map_err(|_| bad("bad size"))?;
    let signed = size < 0;
    let size = u8::try_from(size.unsigned_abs()).map_err(|_| bad("bad size"))?;
    if !matches!(size, 1 | 2 | 4 | 8) {
        return Err(bad("size must be 1, 2, 4 or 8"));
    }
    let operand = match arch {
        Arch::X86_64 => parse_x86_operand(operand_text),
        Arch::Aarch64 => parse_arm_operand(operand_text),
    }
    .ok_or_else(|| bad("operand not understood"))?;
    Ok(UsdtArg {
        size,
        signed,
        operand,
        text: spec.to_owned(),
        global: None,
    })
}

fn parse_int(text: &str) -> Option<i64> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let magnitude = match digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        Some(hex) => u64::from_str_radix(hex, 16).ok()?,
        None => digits.parse::<u64>().ok()?,
    };
    // Two's complement: `$-1` and `$0xffffffffffffffff` both mean all ones.
    let value = magnitude as i64;
    Some(if negative {
        value.wrapping_neg()
    } else {
        value
    })
}

fn parse_x86_operand(text: &str) -> Option<Operand> {
    if let Some(reg) = text.strip_prefix('%') {
        return Register::x86(reg).map(Operand::Register);
    }
    if let Some(imm) = text.strip_prefix('$') {
        return parse_int(imm).map(Operand::Immediate);
    }
    // DISP(%base[,%index[,scale]]) or DISP alone (absolute), DISP possibly a symbol[+n].
    let (disp_text, inner) = match text.find('(') {
        Some(open) => {
            let inner = text.get(open + 1..)?.strip_suffix(')')?;
            (&text[..open], Some(inner))
        }
        None => (text, None),
    };
    let (displacement, symbol) = if disp_text.is_empty() {
        (0, None)
    } else if let Some(n) = parse_int(disp_text) {
        (n, None)
    } else {
        let (sym, off) = match disp_text.rsplit_once(['+', '-']) {
            Some((sym, off)) if parse_int(off).is_some() => {
                let n = parse_int(off)?;
                let negative = disp_text.as_bytes().get(sym.len()) == Some(&b'-');
                (sym, if negative { -n } else { n })
            }
            _ => (disp_text, 0),
        };
        (off, Some(sym.to_owned()))
    };
    let (base, index) = match inner {
        None => (None, None),
        Some(inner) => {
            let mut parts = inner.split(',').map(str::trim);
            let base = match parts.next()? {
                "" => None,
                b => Some(Register::x86(b.strip_prefix('%')?)?),
            };
            let index = match parts.next() {
                None => None,
                Some(i) => {
                    let reg = Register::x86(i.strip_prefix('%')?)?;
                    let scale = match parts.next() {
                        Some(s) => s.parse().ok()?,
                        None => 1,
                    };
                    Some((reg, scale))
                }
            };
            (base, index)
        }
    };
    Some(Operand::Memory {
        base,
        index,
        displacement,
        symbol,
    })
}

fn parse_arm_operand(text: &str) -> Option<Operand> {
    if let Some(inner) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        let mut parts = inner.split(',').map(str::trim);
        let base = Register::aarch64(parts.next()?)?;
        let displacement = match parts.next() {
            Some(d) => parse_int(d.strip_prefix('#').unwrap_or(d))?,
            None => 0,
        };
        return Some(Operand::Memory {
            base: Some(base),
            index: None,
            displacement,
            symbol: None,
        });
    }
    if let Some(reg) = Register::aarch64(text) {
        return Some(Operand::Register(reg));
    }
    parse_int(text.strip_prefix('#').unwrap_or(text)).map(Operand::Immediate)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x86(spec: &str) -> UsdtArg {
        parse_arg(spec, Arch::X86_64).unwrap()
    }

    #[test]
    fn x86_operands_of_every_kind() {
        let a = x86("-4@%edi");
        assert_eq!((a.size, a.signed), (4, true));
        assert_eq!(a.operand, Operand::Register(Register::x86("rdi").unwrap()));
        let m = x86("8@-16(%rbp)");
        assert_eq!((m.size, m.signed), (8, false));
        assert_eq!(
            m.operand,
            Operand::Memory {
                base: Register::x86("rbp"),
                index: None,
                displacement: -16,
                symbol: None
            }
        );
        assert_eq!(x86("4@$5").operand, Operand::Immediate(5));
        assert_eq!(x86("-4@$-7").operand, Operand::Immediate(-7));
        assert_eq!(
            x86("8@%rax").operand,
            Operand::Register(Register::x86("eax").unwrap())
        );
        assert_eq!(
            x86("1@%r8b").operand,
            Operand::Register(Register::x86("r8").unwrap())
        );
        let rip = x86("8@counter+8(%rip)");
        assert_eq!(
            rip.operand,
            Operand::Memory {
                base: Register::x86("rip"),
                index: None,
                displacement: 8,
                symbol: Some("counter".into())
            }
        );
        let indexed = x86("4@8(%rax,%rbx,4)");
        assert!(matches!(
            indexed.operand,
            Operand::Memory {
                index: Some((_, 4)),
                displacement: 8,
                ..
            }
        ));
        for bad in ["4%edi", "3@%edi", "4@%xyz", "x@%edi", "4@(%rbp"] {
            assert!(parse_arg(bad, Arch::X86_64).is_err(), "{bad}");
        }
        let all = parse_args("-4@%edi 8@-16(%rbp)  4@$5", Arch::X86_64).unwrap();
        assert_eq!(all.len(), 3);
        assert!(parse_args("", Arch::X86_64).unwrap().is_empty());
    }

    #[test]
    fn aarch64_operands() {
        let all = parse_args("-4@w1 8@[sp, 16] 8@x0 -4@#3 8@[x29]", Arch::Aarch64).unwrap();
        assert_eq!(all.len(), 5);
        assert_eq!(
            all[0].operand,
            Operand::Register(Register::aarch64("x1").unwrap())
        );
        assert_eq!(
            all[1].operand,
            Operand::Memory {
                base: Register::aarch64("sp"),
                index: None,
                displacement: 16,
                symbol: None
            }
        );
        assert_eq!(all[3].operand, Operand::Immediate(3));
    }

    #[test]
    fn note_descriptors() {
        let mut desc = Vec::new();
        for w in [0x1130u64, 0x2000, 0x4010] {
            desc.extend_from_slice(&w.to_le_bytes());
        }
        desc.extend_from_slice(b"app\0tick\0-4@%edi 4@$5\0");
        let n = parse_note_desc(&desc, true, Some(0x2000)).unwrap();
        assert_eq!((n.provider.as_str(), n.name.as_str()), ("app", "tick"));
        assert_eq!((n.address, n.semaphore), (0x1130, 0x4010));
        assert_eq!(n.arg_text, "-4@%edi 4@$5");
        // Prelinked by 0x100: every address moves with the base section.
        let moved = parse_note_desc(&desc, true, Some(0x2100)).unwrap();
        assert_eq!((moved.address, moved.semaphore), (0x1230, 0x4110));
        for cut in 0..desc.len() {
            let _ = parse_note_desc(&desc[..cut], true, None);
        }
    }
}
