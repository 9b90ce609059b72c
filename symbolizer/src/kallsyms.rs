//! Kernel symbols from `/proc/kallsyms` text (or perf's saved copy of it).
//!
//! One pass over the text finds the function symbols. The kernel writes them in address order,
//! so the pass keeps only a block index (the first address of every ~1 KiB of lines) and a
//! lookup parses one block: a profile names a few thousand of ~100k functions, and a table of
//! them all would cost more to build (memory to fault in) than the lookups it saves. A file in
//! any other order gets that full table, sorted.

use std::sync::{Arc, Mutex};

use rustc_hash::FxHashMap as HashMap;

use crate::mapped::SharedBytes;

/// Bytes of lines per block of the index: some twenty lines, half of which a lookup parses.
/// A machine-wide recording of a build looks up 14k kernel locations; at 4 KiB a block, that
/// parsed 190M instructions' worth of lines (issue #13).
const BLOCK_BYTES: usize = 1024;

/// A function symbol: its address and where its name starts in the text (the name runs to a
/// tab, space or line end).
#[derive(Debug, Clone, Copy)]
struct KSym {
    addr: u64,
    name_at: u32,
}

/// A run of lines, and the address of its first function symbol.
#[derive(Debug, Clone, Copy)]
struct Block {
    first_addr: u64,
    start: u32,
    end: u32,
}

/// How lookups find a symbol.
enum SymbolIndex {
    /// Function symbols are in address order in the text: blocks of it.
    Blocks(Vec<Block>),
    /// Any other order: every function symbol, sorted by address.
    Table(Vec<KSym>),
}

/// The function symbols of a kallsyms file (types `t`, `T`, `w`, `W`), kernel modules included.
pub struct Kallsyms {
    /// The file's text (mapped when it is a regular file).
    text: SharedBytes,
    index: SymbolIndex,
    count: usize,
    /// Names handed out so far, by where they start in the text.
    names: Mutex<HashMap<u32, Arc<str>>>,
    all_zero: bool,
}

impl std::fmt::Debug for Kallsyms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kallsyms")
            .field("symbols", &self.count)
            .field("addresses_hidden", &self.all_zero)
            .finish_non_exhaustive()
    }
}

/// Hex digit values by byte; `NOT_HEX` for every other byte.
const HEX_DIGITS: [u8; 256] = {
    let mut table = [NOT_HEX; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        table[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};
const NOT_HEX: u8 = 0xff;

/// Bytes before the name on a 64-bit kallsyms line: 16 digits, a space, the type, a space.
const NAME_AT: usize = 19;

/// Eight ASCII hex digits (most significant first, as `u64::from_be_bytes` reads them) to
/// their value, or `None` if any byte is not a hex digit. Branch-free over all eight bytes at
/// once: kallsyms has ~100k lines, each starting with 16 digits.
fn parse_hex8(word: u64) -> Option<u64> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    if word & HIGH != 0 {
        return None;
    }
    // Lower-case letters; digits keep their value (0x30..0x39 already has bit 5 set).
    let lower = word | 0x2020_2020_2020_2020;
    // Per byte, bit 7 of `lower + (0x80 - n)` is set when the byte is >= n (no carries: every
    // byte and every constant is below 0x80).
    let at_least = |n: u64| lower + (0x80 - n) * ONES;
    let digit = at_least(0x30) & !at_least(0x3a);
    let letter = at_least(0x61) & !at_least(0x67);
    if (digit | letter) & HIGH != HIGH {
        return None;
    }
    // Digit values: the low nibble, plus 9 for letters ('a' = 0x61 has bit 6 set).
    let nibbles = (lower & 0x0f0f_0f0f_0f0f_0f0f) + ((lower >> 6) & ONES) * 9;
    // Pack the eight nibbles into 32 bits, pairs first.
    let pairs = (nibbles | (nibbles >> 4)) & 0x00ff_00ff_00ff_00ff;
    let quads = (pairs | (pairs >> 8)) & 0x0000_ffff_0000_ffff;
    Some((quads | (quads >> 16)) & 0xffff_ffff)
}

fn parse_hex(bytes: &[u8]) -> Option<u64> {
    if let Ok(digits) = <[u8; 16]>::try_from(bytes) {
        let (high, low) = digits.split_at(8);
        let word = |half: &[u8]| u64::from_be_bytes(half.try_into().unwrap_or([0; 8]));
        return Some(parse_hex8(word(high))? << 32 | parse_hex8(word(low))?);
    }
    if bytes.is_empty() || bytes.len() > 16 {
        return None;
    }
    // Branch-free per digit: OR the digits together to find a bad one at the end.
    let mut value: u64 = 0;
    let mut bad = 0u8;
    for &b in bytes {
        let digit = HEX_DIGITS[usize::from(b)];
        bad |= digit & 0xf0;
        value = (value << 4) | u64::from(digit & 0x0f);
    }
    (bad == 0).then_some(value)
}

/// The function symbols of kallsyms `text[start..end]` (whole lines), in text order, with
/// where each line ends.
struct FunctionLines<'t> {
    text: &'t [u8],
    pos: usize,
    end: usize,
}

impl<'t> FunctionLines<'t> {
    fn new(text: &'t [u8], start: usize, end: usize) -> Self {
        FunctionLines {
            text,
            pos: start,
            end: end.min(text.len()),
        }
    }
}

impl Iterator for FunctionLines<'_> {
    /// A function symbol and the offset just past its line.
    type Item = (KSym, usize);

    fn next(&mut self) -> Option<Self::Item> {
        while self.pos < self.end {
            let line_start = self.pos;
            let rest = self.text.get(line_start..self.end).unwrap_or_default();
            // "ADDR T NAME[\t[MOD]]\n". Nearly every line is a 64-bit one: when its fixed
            // prefix parses, its newline is past the prefix and the name's first byte.
            let prefix = rest
                .get(..NAME_AT + 1)
                .filter(|p| p.get(16) == Some(&b' ') && p.get(18) == Some(&b' '))
                .and_then(|p| Some((parse_hex(p.get(..16)?)?, *p.get(17)?, *p.get(NAME_AT)?)))
                .filter(|&(_, _, first)| first != b'\n');
            let search_from = if prefix.is_some() { NAME_AT + 1 } else { 0 };
            let line_len = memchr::memchr(b'\n', rest.get(search_from..).unwrap_or_default())
                .map_or(rest.len(), |at| search_from + at);
            self.pos = line_start + line_len + 1;
            let line = rest.get(..line_len).unwrap_or_default();
            let (addr, kind, name_at) = match prefix {
                Some((addr, kind, _)) => (addr, kind, NAME_AT),
                None => {
                    // Other address widths, or junk.
                    let Some(sp) = memchr::memchr(b' ', line) else {
                        continue;
                    };
                    let (Some(&kind), Some(b' ')) = (line.get(sp + 1), line.get(sp + 2)) else {
                        continue;
                    };
                    let Some(addr) = parse_hex(line.get(..sp).unwrap_or_default()) else {
                        continue;
                    };
                    (addr, kind, sp + 3)
                }
            };
            if !matches!(kind, b't' | b'T' | b'w' | b'W') {
                continue;
            }
            // A name is at least one byte long.
            if !line
                .get(name_at)
                .is_some_and(|&b| !matches!(b, b'\t' | b' '))
            {
                continue;
            }
            let Ok(name_at) = u32::try_from(line_start + name_at) else {
                continue;
            };
            return Some((KSym { addr, name_at }, self.pos.min(self.end)));
        }
        None
    }
}

impl Kallsyms {
    /// Parses kallsyms text (`ffffffff81000000 T _stext` lines, optionally followed by
    /// `\t[module]`). Malformed lines are skipped.
    pub fn parse(text: Vec<u8>) -> Self {
        Self::parse_shared(SharedBytes::from_vec(text))
    }

    /// [`parse`](Self::parse) over shared (for example mapped) bytes.
    pub fn parse_shared(text: SharedBytes) -> Self {
        let bytes: &[u8] = &text;
        let mut blocks: Vec<Block> = Vec::with_capacity(bytes.len() / BLOCK_BYTES + 1);
        let offset = |at: usize| u32::try_from(at).unwrap_or(u32::MAX);
        let mut current: Option<Block> = None;
        let mut block_start = 0usize;
        let mut count = 0usize;
        let mut all_zero = true;
        let mut sorted = true;
        let mut previous = 0u64;
        for (sym, line_end) in FunctionLines::new(bytes, 0, bytes.len()) {
            count += 1;
            all_zero &= sym.addr == 0;
            sorted &= sym.addr >= previous;
            previous = sym.addr;
            let block = current.get_or_insert(Block {
                first_addr: sym.addr,
                start: offset(block_start),
                end: 0,
            });
            if line_end - block_start >= BLOCK_BYTES {
                block.end = offset(line_end);
                blocks.push(*block);
                current = None;
                block_start = line_end;
            }
        }
        if let Some(mut block) = current {
            block.end = offset(bytes.len());
            blocks.push(block);
        }
        let too_big = u32::try_from(bytes.len()).is_err();
        let index = if sorted && !too_big {
            SymbolIndex::Blocks(blocks)
        } else {
            let mut table: Vec<KSym> = FunctionLines::new(bytes, 0, bytes.len())
                .map(|(sym, _)| sym)
                .collect();
            table.sort_by_key(|s| s.addr);
            SymbolIndex::Table(table)
        };
        Self {
            text,
            index,
            count,
            names: Mutex::default(),
            all_zero: count > 0 && all_zero,
        }
    }

    /// True when every address reads as 0: `kernel.kptr_restrict` hides them from us.
    pub fn addresses_hidden(&self) -> bool {
        self.all_zero
    }

    /// Number of function symbols.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when there are no function symbols.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The function containing `addr` (the nearest preceding symbol: kallsyms has no sizes;
    /// of several at one address, the last listed).
    pub fn lookup(&self, addr: u64) -> Option<Arc<str>> {
        let sym = self.symbol_at(addr)?;
        let mut names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        let name = names
            .entry(sym.name_at)
            .or_insert_with(|| crate::cap::symbol_name(self.name_bytes(sym.name_at), false));
        Some(Arc::clone(name))
    }

    /// Which symbol [`lookup`](Self::lookup) names `addr` by, as a number that no other
    /// symbol of this file has, without making its name (nor taking the lock that naming
    /// takes).
    pub fn symbol_key(&self, addr: u64) -> Option<u32> {
        self.symbol_at(addr).map(|sym| sym.name_at)
    }

    /// The symbol containing `addr`: the nearest preceding one (kallsyms has no sizes; of
    /// several at one address, the last listed).
    fn symbol_at(&self, addr: u64) -> Option<KSym> {
        if self.all_zero {
            return None;
        }
        let sym = match &self.index {
            SymbolIndex::Table(table) => {
                let i = table.partition_point(|s| s.addr <= addr).checked_sub(1)?;
                *table.get(i)?
            }
            SymbolIndex::Blocks(blocks) => {
                let i = blocks
                    .partition_point(|b| b.first_addr <= addr)
                    .checked_sub(1)?;
                let block = blocks.get(i)?;
                FunctionLines::new(&self.text, block.start as usize, block.end as usize)
                    .map(|(sym, _)| sym)
                    .take_while(|sym| sym.addr <= addr)
                    .last()?
            }
        };
        Some(sym)
    }

    fn name_bytes(&self, name_at: u32) -> &[u8] {
        let rest = self.text.get(name_at as usize..).unwrap_or_default();
        let len = rest
            .iter()
            .position(|&b| matches!(b, b'\t' | b' ' | b'\n'))
            .unwrap_or(rest.len());
        rest.get(..len).unwrap_or_default()
    }

    /// The address of the function named `name`, if present (linear scan; for tests and tools).
    pub fn address_of(&self, name: &str) -> Option<u64> {
        FunctionLines::new(&self.text, 0, self.text.len()).find_map(|(sym, _)| {
            (self.name_bytes(sym.name_at) == name.as_bytes()).then_some(sym.addr)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` function symbols 0x10 apart, with data symbols and module lines mixed in.
    fn many_lines(n: u64) -> String {
        let mut text = String::new();
        for i in 0..n {
            let addr = 0xffff_ffff_8100_0000u64 + i * 0x10;
            text.push_str(&format!("{addr:016x} T func_{i}\n"));
            if i % 7 == 0 {
                text.push_str(&format!("{addr:016x} d data_{i}\n"));
            }
            if i % 11 == 0 {
                text.push_str(&format!("{addr:016x} t mod_func_{i}\t[some_mod]\n"));
            }
        }
        text
    }

    #[test]
    fn block_index_and_full_table_agree() {
        let sorted_text = many_lines(5000);
        // The same lines plus one out of order at the end: that file gets the full table.
        let unsorted_text = format!("{sorted_text}ffffffff80000000 T early\n");
        let blocks = Kallsyms::parse(sorted_text.into_bytes());
        let table = Kallsyms::parse(unsorted_text.into_bytes());
        assert!(matches!(blocks.index, SymbolIndex::Blocks(ref b) if b.len() > 10));
        assert!(matches!(table.index, SymbolIndex::Table(_)));
        assert_eq!(table.len(), blocks.len() + 1);
        for addr in
            (0xffff_ffff_8100_0000u64 - 0x20..0xffff_ffff_8100_0000 + 5000 * 0x10 + 0x40).step_by(3)
        {
            let expected = table.lookup(addr);
            let expected = expected.filter(|name| &**name != "early");
            assert_eq!(blocks.lookup(addr), expected, "{addr:#x}");
        }
        // Of several symbols at one address, the last listed.
        assert_eq!(
            blocks.lookup(0xffff_ffff_8100_0000).as_deref(),
            Some("mod_func_0")
        );
    }

    #[test]
    fn hex_of_sixteen_digits_matches_the_digit_loop() {
        for text in [
            "ffffffff81000000",
            "0000000000000000",
            "FFFFFFFFC0001234",
            "0123456789abcdef",
            "fedcba9876543210",
            "AbCdEf0123456789",
        ] {
            assert_eq!(
                parse_hex(text.as_bytes()),
                u64::from_str_radix(text, 16).ok(),
                "{text}"
            );
        }
        for bad in [
            "ffffffff8100000g",
            "ffffffff 1000000",
            "/fffffff81000000",
            ":fffffff81000000",
            "`fffffff81000000",
            "Gfffffff81000000",
            "ffffffff8100000\u{e9}",
        ] {
            assert_eq!(parse_hex(bad.as_bytes()), None, "{bad}");
        }
    }

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
