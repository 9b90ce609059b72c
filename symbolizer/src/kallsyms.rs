//! Kernel symbols from `/proc/kallsyms` text: parsed with a tight byte loop, sorted once.

use std::sync::{Arc, OnceLock};

#[derive(Debug, Clone, Copy)]
struct KSym {
    addr: u64,
    name_at: u32,
    name_len: u32,
}

/// The function symbols of a kallsyms file (types `t`, `T`, `w`, `W`), kernel modules included.
pub struct Kallsyms {
    text: Vec<u8>,
    syms: Vec<KSym>,
    names: Vec<OnceLock<Arc<str>>>,
    all_zero: bool,
}

impl std::fmt::Debug for Kallsyms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kallsyms")
            .field("symbols", &self.syms.len())
            .field("addresses_hidden", &self.all_zero)
            .finish_non_exhaustive()
    }
}

fn parse_hex(bytes: &[u8]) -> Option<u64> {
    if bytes.is_empty() || bytes.len() > 16 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in bytes {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => return None,
        };
        v = (v << 4) | u64::from(d);
    }
    Some(v)
}

impl Kallsyms {
    /// Parses kallsyms text (`ffffffff81000000 T _stext` lines, optionally followed by
    /// `\t[module]`). Malformed lines are skipped.
    pub fn parse(text: Vec<u8>) -> Self {
        let mut syms = Vec::with_capacity(text.len() / 40);
        let mut all_zero = true;
        let mut any = false;
        let mut pos = 0usize;
        while pos < text.len() {
            let rest = text.get(pos..).unwrap_or_default();
            let line_len = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
            let line = rest.get(..line_len).unwrap_or_default();
            let line_start = pos;
            pos += line_len + 1;
            // "ADDR T NAME[\t[MOD]]". The address is 16 digits on 64-bit kernels: check the
            // type at its fixed position first, so data symbols cost no further work.
            let sp = match line.get(16) {
                Some(b' ') => 16,
                _ => match memchr::memchr(b' ', line) {
                    Some(sp) => sp,
                    None => continue,
                },
            };
            let (Some(&kind), Some(b' ')) = (line.get(sp + 1), line.get(sp + 2)) else {
                continue;
            };
            if !matches!(kind, b't' | b'T' | b'w' | b'W') {
                continue;
            }
            let Some(addr) = parse_hex(line.get(..sp).unwrap_or_default()) else {
                continue;
            };
            let name_field = line.get(sp + 3..).unwrap_or_default();
            let name_len = memchr::memchr2(b'\t', b' ', name_field).unwrap_or(name_field.len());
            if name_len == 0 {
                continue;
            }
            any = true;
            all_zero &= addr == 0;
            let (Ok(name_at), Ok(name_len)) =
                (u32::try_from(line_start + sp + 3), u32::try_from(name_len))
            else {
                continue;
            };
            syms.push(KSym {
                addr,
                name_at,
                name_len,
            });
        }
        if !syms.is_sorted_by_key(|s| s.addr) {
            syms.sort_by_key(|s| s.addr);
        }
        let names = std::iter::repeat_with(OnceLock::new)
            .take(syms.len())
            .collect();
        Self {
            text,
            syms,
            names,
            all_zero: any && all_zero,
        }
    }

    /// True when every address reads as 0: `kernel.kptr_restrict` hides them from us.
    pub fn addresses_hidden(&self) -> bool {
        self.all_zero
    }

    /// Number of function symbols.
    pub fn len(&self) -> usize {
        self.syms.len()
    }

    /// True when there are no function symbols.
    pub fn is_empty(&self) -> bool {
        self.syms.is_empty()
    }

    /// The function containing `addr` (the nearest preceding symbol: kallsyms has no sizes).
    pub fn lookup(&self, addr: u64) -> Option<Arc<str>> {
        if self.all_zero {
            return None;
        }
        let i = self
            .syms
            .partition_point(|s| s.addr <= addr)
            .checked_sub(1)?;
        let sym = self.syms.get(i)?;
        let name = self.names.get(i)?.get_or_init(|| {
            let start = sym.name_at as usize;
            let bytes = self
                .text
                .get(start..start + sym.name_len as usize)
                .unwrap_or_default();
            Arc::from(String::from_utf8_lossy(bytes).as_ref())
        });
        Some(Arc::clone(name))
    }

    /// The address of the function named `name`, if present (linear scan; for tests and tools).
    pub fn address_of(&self, name: &str) -> Option<u64> {
        self.syms.iter().find_map(|s| {
            let start = s.name_at as usize;
            let bytes = self.text.get(start..start + s.name_len as usize)?;
            (bytes == name.as_bytes()).then_some(s.addr)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
ffffffff81000000 T _stext
ffffffff81000000 T _text
ffffffff81001000 t do_one_initcall
ffffffff81002000 D some_data
ffffffff81003000 W weak_fn
ffffffff81004000 T schedule
ffffffff81004100 T io_schedule
bogus line
ffffffffc0001000 t xfs_thing\t[xfs]
ffffffffc0002000 T xfs_other\t[xfs]
";

    #[test]
    fn parses_and_looks_up() {
        let k = Kallsyms::parse(SAMPLE.as_bytes().to_vec());
        assert!(!k.addresses_hidden());
        assert_eq!(k.len(), 8);
        assert_eq!(k.lookup(0xffff_ffff_8100_4010).as_deref(), Some("schedule"));
        assert_eq!(
            k.lookup(0xffff_ffff_8100_4100).as_deref(),
            Some("io_schedule")
        );
        assert_eq!(
            k.lookup(0xffff_ffff_8100_1fff).as_deref(),
            Some("do_one_initcall")
        );
        // Data symbols are skipped: the address still belongs to the preceding function.
        assert_eq!(
            k.lookup(0xffff_ffff_8100_2000).as_deref(),
            Some("do_one_initcall")
        );
        assert_eq!(k.lookup(0xffff_ffff_8100_3001).as_deref(), Some("weak_fn"));
        assert_eq!(
            k.lookup(0xffff_ffff_c000_1010).as_deref(),
            Some("xfs_thing")
        );
        assert_eq!(
            k.lookup(0xffff_ffff_c000_2010).as_deref(),
            Some("xfs_other")
        );
        assert_eq!(k.lookup(0x1000), None);
        assert_eq!(k.address_of("schedule"), Some(0xffff_ffff_8100_4000));
    }

    #[test]
    fn malformed_lines_are_skipped() {
        let text = b"ffffffff81000000 T\nffffffff81000000 T \t[m]\nzz T bad\n\
fffffffffffffffff T too_long\n ffffffff81000010 T leading_space\n81000020 T short_addr\n\
ffffffff81000030 T last_without_newline";
        let k = Kallsyms::parse(text.to_vec());
        assert_eq!(k.len(), 2);
        assert_eq!(k.lookup(0x8100_0021).as_deref(), Some("short_addr"));
        assert_eq!(
            k.lookup(0xffff_ffff_8100_0031).as_deref(),
            Some("last_without_newline")
        );
    }

    #[test]
    fn unsorted_input_is_sorted() {
        let k = Kallsyms::parse(b"ffffffff81000200 T b\nffffffff81000100 T a\n".to_vec());
        assert_eq!(k.lookup(0xffff_ffff_8100_0150).as_deref(), Some("a"));
        assert_eq!(k.lookup(0xffff_ffff_8100_0250).as_deref(), Some("b"));
    }

    #[test]
    fn kptr_restrict_detected() {
        let k =
            Kallsyms::parse(b"0000000000000000 T _stext\n0000000000000000 T schedule\n".to_vec());
        assert!(k.addresses_hidden());
        assert_eq!(k.lookup(0), None);
        assert!(!Kallsyms::parse(Vec::new()).addresses_hidden());
    }

    #[test]
    fn real_proc_kallsyms_has_schedule() {
        let Ok(text) = std::fs::read("/proc/kallsyms") else {
            eprintln!("skipping: /proc/kallsyms not readable");
            return;
        };
        let k = Kallsyms::parse(text);
        if k.addresses_hidden() {
            eprintln!("skipping: kptr_restrict hides kallsyms addresses");
            return;
        }
        let addr = k.address_of("schedule").unwrap();
        assert_eq!(k.lookup(addr + 1).as_deref(), Some("schedule"));
    }
}
