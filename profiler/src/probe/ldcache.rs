//! Library names (`libc`, `libssl.so.3`) → paths, through the dynamic loader's cache
//! (`/etc/ld.so.cache`, glibc's binary format, parsed here) or, failing that, `ldconfig -p`.
//!
//! Hand-written: the format is a fixed header and a table of 24-byte entries, and no
//! well-kept crate reads it.

use std::path::PathBuf;

/// One cache entry: a soname and the file it resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    /// The key, e.g. `libc.so.6`.
    pub name: String,
    /// The library's path.
    pub path: PathBuf,
    /// glibc's entry flags (`FLAG_ELF_LIBC6 | FLAG_X8664_LIB64` = 0x303 on x86_64).
    pub flags: u32,
}

/// The new-format magic and version (glibc ≥ 2.32 writes only this; older ones append it after
/// the old `ld.so-1.7.0` table).
const MAGIC: &[u8] = b"glibc-ld.so.cache1.1";
/// Header: magic+version (20), nlibs (4), len_strings (4), flags (1) + padding (3),
/// extension_offset (4), unused (12).
const HEADER_LEN: usize = 48;
/// Entry: flags (i32), key (u32), value (u32), osversion (u32), hwcap (u64).
const ENTRY_LEN: usize = 24;

/// Flags of libraries for this machine's ABI (glibc's `_DL_CACHE_DEFAULT_ID`).
#[cfg(target_arch = "x86_64")]
pub const NATIVE_FLAGS: u32 = 0x0303;
/// Flags of libraries for this machine's ABI (glibc's `_DL_CACHE_DEFAULT_ID`).
#[cfg(target_arch = "aarch64")]
pub const NATIVE_FLAGS: u32 = 0x0a03;
/// Flags of libraries for this machine's ABI (unknown: any ELF libc6 library).
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub const NATIVE_FLAGS: u32 = 0x0003;

/// Parses `/etc/ld.so.cache` bytes; `None` when no new-format table is found. Entries whose
/// strings are out of bounds are skipped.
pub fn parse_cache(bytes: &[u8]) -> Option<Vec<CacheEntry>> {
    let start = bytes.windows(MAGIC.len()).position(|w| w == MAGIC)?;
    let table = bytes.get(start..)?;
    let u32_at = |at: usize| -> Option<u32> {
        let b = table.get(at..at + 4)?;
        Some(u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    };
    let count = usize::try_from(u32_at(MAGIC.len())?).ok()?;
    let string_at = |offset: u32| -> Option<String> {
        // New-format offsets count from the start of the new header.
        let rest = table.get(usize::try_from(offset).ok()?..)?;
        let end = rest.iter().position(|&b| b == 0)?;
        String::from_utf8(rest.get(..end)?.to_vec()).ok()
    };
    let mut entries = Vec::new();
    for index in 0..count {
        let at = HEADER_LEN + index * ENTRY_LEN;
        let (Some(flags), Some(key), Some(value)) = (u32_at(at), u32_at(at + 4), u32_at(at + 8))
        else {
            break;
        };
        if let (Some(name), Some(path)) = (string_at(key), string_at(value)) {
            entries.push(CacheEntry {
                name,
                path: PathBuf::from(path),
                flags,
            });
        }
    }
    Some(entries)
}

/// Parses `ldconfig -p` output (`\tlibc.so.6 (libc6,x86-64) => /lib/x86_64-linux-gnu/libc.so.6`).
/// Flags are not printed as numbers there: entries whose description names this machine's ABI
/// get [`NATIVE_FLAGS`], others 0.
pub fn parse_ldconfig_output(text: &str) -> Vec<CacheEntry> {
    let native = if cfg!(target_arch = "x86_64") {
        "x86-64"
    } else if cfg!(target_arch = "aarch64") {
        "AArch64"
    } else {
        "libc6"
    };
    text.lines()
        .filter_map(|line| {
            let (left, path) = line.split_once(" => ")?;
            let left = left.trim();
            let (name, description) = match left.split_once(" (") {
                Some((n, d)) => (n, d),
                None => (left, ""),
            };
            Some(CacheEntry {
                name: name.trim().to_owned(),
                path: PathBuf::from(path.trim()),
                flags: if description.contains(native) {
                    NATIVE_FLAGS
                } else {
                    0
                },
            })
        })
        .collect()
}

/// The loader's cache: `/etc/ld.so.cache`, else `ldconfig -p`, else empty.
pub fn system_cache() -> Vec<CacheEntry> {
    if let Some(entries) = std::fs::read("/etc/ld.so.cache")
        .ok()
        .and_then(|b| parse_cache(&b))
    {
        return entries;
    }
    for ldconfig in ["/sbin/ldconfig", "/usr/sbin/ldconfig", "ldconfig"] {
        if let Ok(out) = std::process::Command::new(ldconfig).arg("-p").output() {
            if out.status.success() {
                return parse_ldconfig_output(&String::from_utf8_lossy(&out.stdout));
            }
        }
    }
    Vec::new()
}

/// True when a library file or soname `file_name` is what `wanted` names: the same name,
/// `lib{wanted}.so…`, or `{wanted}.so…` / `{wanted}-…so…` (`libc` names `libc.so.6`,
/// `c` names it too, as the linker's `-lc`).
pub fn library_matches(wanted: &str, file_name: &str) -> bool {
    if file_name == wanted {
        return true;
    }
    let stem_matches = |stem: &str| {
        file_name.strip_prefix(stem).is_some_and(|rest| {
            rest.starts_with(".so") || rest.starts_with("-") && rest.contains(".so")
        })
    };
    stem_matches(wanted) || (!wanted.starts_with("lib") && stem_matches(&format!("lib{wanted}")))
}

/// The cache's path for library `wanted`: an entry for this machine's ABI first, then any.
pub fn lookup<'a>(entries: &'a [CacheEntry], wanted: &str) -> Option<&'a CacheEntry> {
    let matching = || entries.iter().filter(|e| library_matches(wanted, &e.name));
    matching()
        .find(|e| e.flags == NATIVE_FLAGS)
        .or_else(|| matching().next())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a new-format cache with `entries` (name, path, flags), optionally behind an
    /// old-format table of `old_prefix` bytes.
    fn cache_bytes(entries: &[(&str, &str, u32)], old_prefix: usize) -> Vec<u8> {
        let mut strings = Vec::new();
        let table_len = HEADER_LEN + entries.len() * ENTRY_LEN;
        let mut offsets = Vec::new();
        for (name, path, _) in entries {
            let key = table_len + strings.len();
            strings.extend_from_slice(name.as_bytes());
            strings.push(0);
            let value = table_len + strings.len();
            strings.extend_from_slice(path.as_bytes());
            strings.push(0);
            offsets.push((key as u32, value as u32));
        }
        let mut out = vec![0u8; old_prefix];
        if old_prefix >= 11 {
            out[..11].copy_from_slice(b"ld.so-1.7.0");
        }
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(entries.len() as u32).to_ne_bytes());
        out.extend_from_slice(&(strings.len() as u32).to_ne_bytes());
        out.extend_from_slice(&[2, 0, 0, 0]);
        out.extend_from_slice(&[0; 16]);
        for ((_, _, flags), (key, value)) in entries.iter().zip(offsets) {
            out.extend_from_slice(&flags.to_ne_bytes());
            out.extend_from_slice(&key.to_ne_bytes());
            out.extend_from_slice(&value.to_ne_bytes());
            out.extend_from_slice(&[0; 12]);
        }
        out.extend_from_slice(&strings);
        out
    }

    #[test]
    fn parses_new_and_combined_formats() {
        let entries = [
            ("libz.so.1", "/lib/libz.so.1", NATIVE_FLAGS),
            ("libc.so.6", "/lib32/libc.so.6", 0x0003),
            ("libc.so.6", "/lib/x86_64/libc.so.6", NATIVE_FLAGS),
        ];
        for prefix in [0, 24] {
            let parsed = parse_cache(&cache_bytes(&entries, prefix)).unwrap();
            assert_eq!(parsed.len(), 3);
            assert_eq!(parsed[0].name, "libz.so.1");
            assert_eq!(parsed[0].path, PathBuf::from("/lib/libz.so.1"));
            let libc = lookup(&parsed, "libc").unwrap();
            assert_eq!(libc.path, PathBuf::from("/lib/x86_64/libc.so.6"));
            assert_eq!(lookup(&parsed, "c").unwrap().path, libc.path);
            assert_eq!(lookup(&parsed, "libz.so.1").unwrap().name, "libz.so.1");
            assert!(lookup(&parsed, "libzz").is_none());
        }
        assert!(parse_cache(b"not a cache").is_none());
        // Truncated: entries past the end are dropped, nothing panics.
        let bytes = cache_bytes(&entries, 0);
        for cut in 0..bytes.len() {
            let _ = parse_cache(&bytes[..cut]);
        }
    }

    #[test]
    fn the_real_cache_agrees_with_ldconfig() {
        let Ok(bytes) = std::fs::read("/etc/ld.so.cache") else {
            return;
        };
        let Ok(out) = std::process::Command::new("ldconfig").arg("-p").output() else {
            return;
        };
        let parsed = parse_cache(&bytes).unwrap();
        let listed = parse_ldconfig_output(&String::from_utf8_lossy(&out.stdout));
        assert_eq!(parsed.len(), listed.len());
        for (a, b) in parsed.iter().zip(&listed) {
            assert_eq!((&a.name, &a.path), (&b.name, &b.path));
        }
    }

    #[test]
    fn library_names() {
        assert!(library_matches("libc", "libc.so.6"));
        assert!(library_matches("c", "libc.so.6"));
        assert!(!library_matches("libc", "libcrypt.so.1"));
        assert!(library_matches("libpython3.11", "libpython3.11.so.1.0"));
        assert!(library_matches("libstdc++", "libstdc++.so.6"));
        assert!(library_matches("libc.so.6", "libc.so.6"));
        assert!(library_matches("libfoo", "libfoo-2.0.so.0"));
        let text = "2 libs found\n\tlibc.so.6 (libc6,x86-64) => /lib/a/libc.so.6\n\
                    \tlibc.so.6 (libc6) => /lib32/libc.so.6\n";
        let parsed = parse_ldconfig_output(text);
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].path, PathBuf::from("/lib/a/libc.so.6"));
    }
}
