//! Reads GNU build-ids (of ELF files, the running kernel and its modules) and describes the host
//! (`uname`, `/proc/cpuinfo`, `/proc/meminfo`) for the perf.data feature sections.
//!
//! Nothing here fails loudly: a file without a build-id, or a host file that cannot be read,
//! leaves its entry out or its field empty.

use std::fs;
use std::path::Path;

use kprof_perfdata::BuildIdEntry;
use kprof_perfdata::Features;
use object::{Object, read::ReadCache};

/// Where the running kernel exposes its ELF notes.
const KERNEL_NOTES: &str = "/sys/kernel/notes";
/// `NT_GNU_BUILD_ID`.
const NT_GNU_BUILD_ID: u32 = 3;
/// Largest note file read whole (kernel and module notes are a few hundred bytes).
const MAX_NOTES_SIZE: u64 = 1 << 20;
/// Name perf gives the kernel in the build-id table.
pub const KERNEL_DSO_NAME: &str = "[kernel.kallsyms]";

/// The `NT_GNU_BUILD_ID` of `path`.
///
/// Regular ELF files are parsed lazily (only headers and notes are read). Paths under `/sys/`
/// (`/sys/kernel/notes`, `/sys/module/NAME/notes/.note.gnu.build-id`) are raw note streams.
/// Returns None for anything else: missing files, devices, non-ELF files, files without a build-id.
pub fn read_build_id(path: &Path) -> Option<Vec<u8>> {
    if path.starts_with("/sys/") {
        return read_raw_notes(path);
    }
    let file = fs::File::open(path).ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let cache = ReadCache::new(file);
    let elf = object::File::parse(&cache).ok()?;
    let id = elf.build_id().ok()??;
    (!id.is_empty()).then(|| id.to_vec())
}

/// The running kernel's build-id, from `/sys/kernel/notes`.
pub fn kernel_build_id() -> Option<Vec<u8>> {
    read_raw_notes(Path::new(KERNEL_NOTES))
}

/// Reads a raw ELF note stream (not an ELF file) and returns its GNU build-id.
fn read_raw_notes(path: &Path) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    fs::File::open(path)
        .ok()?
        .take(MAX_NOTES_SIZE)
        .read_to_end(&mut bytes)
        .ok()?;
    find_gnu_build_id(&bytes)
}

/// Walks host-endian `Elf_Nhdr` notes (namesz, descsz, type; name and desc 4-aligned) and returns
/// the descriptor of the first `GNU` note of type `NT_GNU_BUILD_ID`.
fn find_gnu_build_id(notes: &[u8]) -> Option<Vec<u8>> {
    let u32_at = |offset: usize| -> Option<u32> {
        let chunk = notes.get(offset..offset.checked_add(4)?)?;
        Some(u32::from_ne_bytes(chunk.try_into().ok()?))
    };
    let mut offset = 0usize;
    while offset.checked_add(12)? <= notes.len() {
        let name_size = usize::try_from(u32_at(offset)?).ok()?;
        let desc_size = usize::try_from(u32_at(offset + 4)?).ok()?;
        let note_type = u32_at(offset + 8)?;
        let name_start = offset + 12;
        let desc_start = name_start.checked_add(name_size.checked_next_multiple_of(4)?)?;
        let next = desc_start.checked_add(desc_size.checked_next_multiple_of(4)?)?;
        let name = notes.get(name_start..name_start.checked_add(name_size)?)?;
        if note_type == NT_GNU_BUILD_ID && name == b"GNU\0" {
            let desc = notes.get(desc_start..desc_start.checked_add(desc_size)?)?;
            return (!desc.is_empty()).then(|| desc.to_vec());
        }
        offset = next;
    }
    None
}

/// Build-id entries for the files a recording touched, as `(machine pid, kernel, path)`.
///
/// Pass pid -1 (perf's `HOST_KERNEL_ID`) for everything on the host. The kernel is named
/// `[kernel.kallsyms]` (any path starting with it, e.g. `[kernel.kallsyms]_text`, means the kernel;
/// its build-id comes from `/sys/kernel/notes`); a kernel module given as `[name]` is read from
/// `/sys/module/name/notes`. Duplicates are dropped; files without a build-id are left out.
pub fn collect_build_ids(
    files: impl IntoIterator<Item = (i32, bool, String)>,
) -> Vec<BuildIdEntry> {
    let mut entries: Vec<BuildIdEntry> = Vec::new();
    for (pid, kernel, path) in files {
        let (filename, build_id) = if kernel && path.starts_with(KERNEL_DSO_NAME) {
            (KERNEL_DSO_NAME.to_string(), kernel_build_id())
        } else if let Some(module) = path.strip_prefix('[').and_then(|p| p.strip_suffix(']')) {
            let notes = Path::new("/sys/module")
                .join(module)
                .join("notes/.note.gnu.build-id");
            (path.clone(), read_raw_notes(&notes))
        } else {
            let id = read_build_id(Path::new(&path));
            (path, id)
        };
        let Some(build_id) = build_id else { continue };
        let duplicate = entries
            .iter()
            .any(|e| e.pid == pid && e.filename == filename);
        if !duplicate {
            entries.push(BuildIdEntry::new(pid, kernel, build_id, filename));
        }
    }
    entries
}

/// Describes this host for the perf.data header: hostname and OS release (as `uname` reports
/// them), architecture, CPU description and perf-style cpuid (`GenuineIntel,6,85,7` on x86,
/// the MIDR as `0x%016x` on arm64), CPUs online and present, total memory in kB.
///
/// `cmdline` is the recorder's command line, program first; `version` the recorder's version
/// string (shown as "perf version"). Build-ids and sample times are left empty for the caller.
pub fn host_features(cmdline: &[String], version: &str) -> Features {
    let read_trimmed = |path: &str| {
        fs::read_to_string(path)
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    };
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let online = cpu_list_count(&read_trimmed("/sys/devices/system/cpu/online"));
    let present = cpu_list_max(&read_trimmed("/sys/devices/system/cpu/present"))
        .map_or(online, |max| max.saturating_add(1));
    Features {
        hostname: Some(read_trimmed("/proc/sys/kernel/hostname")),
        osrelease: Some(read_trimmed("/proc/sys/kernel/osrelease")),
        version: Some(version.to_string()),
        arch: Some(std::env::consts::ARCH.to_string()),
        cpudesc: Some(cpu_description(&cpuinfo)),
        cpuid: Some(cpu_id(&cpuinfo)),
        nrcpus: Some((present, online)),
        total_mem: Some(mem_total_kb(&meminfo)),
        cmdline: Some(cmdline.to_vec()),
        ..Features::default()
    }
}

/// The value of the first `key : value` line of a `/proc/cpuinfo` text.
fn cpuinfo_field<'a>(cpuinfo: &'a str, key: &str) -> Option<&'a str> {
    cpuinfo.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        (k.trim() == key).then(|| v.trim())
    })
}

/// The CPU model with runs of spaces squeezed, as perf prints it.
fn cpu_description(cpuinfo: &str) -> String {
    ["model name", "cpu model", "Processor", "cpu", "uarch"]
        .iter()
        .find_map(|key| cpuinfo_field(cpuinfo, key))
        .map(|desc| desc.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// perf's cpuid: `vendor,family,model,stepping` on x86; the MIDR on arm64; empty otherwise.
fn cpu_id(cpuinfo: &str) -> String {
    if let Some(vendor) = cpuinfo_field(cpuinfo, "vendor_id") {
        let field = |key| cpuinfo_field(cpuinfo, key).unwrap_or("0");
        return format!(
            "{vendor},{},{},{}",
            field("cpu family"),
            field("model"),
            field("stepping")
        );
    }
    let number = |key| {
        let value = cpuinfo_field(cpuinfo, key)?;
        match value.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).ok(),
            None => value.parse().ok(),
        }
    };
    match (
        number("CPU implementer"),
        number("CPU variant"),
        number("CPU part"),
        number("CPU revision"),
    ) {
        (Some(implementer), Some(variant), Some(part), Some(revision)) => {
            let architecture = 0xf; // "defined by CPUID scheme" on every arm64 core
            let midr = (implementer << 24)
                | (variant << 20)
                | (architecture << 16)
                | (part << 4)
                | revision;
            format!("0x{midr:016x}")
        }
        _ => String::new(),
    }
}

/// `MemTotal` in kB from a `/proc/meminfo` text.
fn mem_total_kb(meminfo: &str) -> u64 {
    meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The ranges of a kernel cpu list (`0-3,8,10-11`).
fn cpu_ranges(list: &str) -> impl Iterator<Item = (u32, u32)> + '_ {
    list.split(',').filter_map(|part| {
        let part = part.trim();
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        let (lo, hi) = (lo.parse::<u32>().ok()?, hi.parse::<u32>().ok()?);
        (lo <= hi).then_some((lo, hi))
    })
}

/// Number of CPUs in a kernel cpu list.
fn cpu_list_count(list: &str) -> u32 {
    cpu_ranges(list).map(|(lo, hi)| hi - lo + 1).sum()
}

/// Highest CPU number in a kernel cpu list.
fn cpu_list_max(list: &str) -> Option<u32> {
    cpu_ranges(list).map(|(_, hi)| hi).max()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// Runs a tool, or None (test skipped) when it is not installed.
    fn tool_output(program: &str, args: &[&str]) -> Option<String> {
        match Command::new(program).args(args).output() {
            Ok(out) if out.status.success() => {
                Some(String::from_utf8_lossy(&out.stdout).into_owned())
            }
            Ok(out) => panic!(
                "{program} {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(err) => {
                let require_perf = std::env::var_os("KPROF_REQUIRE_PERF").is_some_and(|v| v == "1");
                assert!(
                    !(require_perf && program.ends_with("perf")),
                    "KPROF_REQUIRE_PERF=1 but {program} cannot run: {err}"
                );
                eprintln!("skipping: cannot run {program}: {err}");
                None
            }
        }
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn note(name: &[u8], ty: u32, desc: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&(name.len() as u32).to_ne_bytes());
        out.extend_from_slice(&(desc.len() as u32).to_ne_bytes());
        out.extend_from_slice(&ty.to_ne_bytes());
        out.extend_from_slice(name);
        out.resize(out.len().next_multiple_of(4), 0);
        out.extend_from_slice(desc);
        out.resize(out.len().next_multiple_of(4), 0);
        out
    }

    #[test]
    fn finds_gnu_build_id_among_notes() {
        let mut notes = note(b"Xen\0", 3, &[9; 8]); // right type, wrong owner
        notes.extend(note(b"GNU\0", 1, &[8; 4])); // right owner, ABI tag
        notes.extend(note(b"GNU\0", 3, &[1, 2, 3, 4, 5]));
        assert_eq!(find_gnu_build_id(&notes), Some(vec![1, 2, 3, 4, 5]));
        assert_eq!(
            find_gnu_build_id(&notes[..notes.len() - 4]),
            None,
            "truncated desc"
        );
        assert_eq!(find_gnu_build_id(&[]), None);
        let mut huge = note(b"GNU\0", 3, &[1]);
        huge[4..8].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert_eq!(find_gnu_build_id(&huge), None);
    }

    #[test]
    fn matches_readelf_on_bin_ls() {
        let Some(out) = tool_output("readelf", &["-n", "/bin/ls"]) else {
            return;
        };
        let Some(expected) = out
            .lines()
            .find_map(|l| l.trim().strip_prefix("Build ID: "))
        else {
            eprintln!("skipping: /bin/ls has no build-id");
            return;
        };
        let id = read_build_id(Path::new("/bin/ls")).unwrap();
        assert_eq!(hex(&id), expected.trim());
    }

    #[test]
    fn matches_perf_on_the_kernel() {
        let Some(out) = tool_output("/usr/bin/perf", &["buildid-list", "-k"]) else {
            return;
        };
        let Some(id) = kernel_build_id() else {
            eprintln!("skipping: /sys/kernel/notes unreadable");
            return;
        };
        assert_eq!(hex(&id), out.trim());
        let entries = collect_build_ids([(-1, true, "[kernel.kallsyms]_text".to_string())]);
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].filename, KERNEL_DSO_NAME);
        assert_eq!(entries[0].build_id, id);
    }

    #[test]
    fn no_build_id_for_non_elf_or_special_files() {
        assert_eq!(read_build_id(Path::new("/dev/null")), None);
        assert_eq!(read_build_id(Path::new("/proc/self/status")), None);
        assert_eq!(read_build_id(Path::new("/nonexistent/kprof")), None);
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("plain.txt");
        fs::write(&text, "not an elf").unwrap();
        assert_eq!(read_build_id(&text), None);
        assert!(collect_build_ids([(-1, false, text.display().to_string())]).is_empty());
    }

    #[test]
    fn collect_dedups() {
        let ls = (-1, false, "/bin/ls".to_string());
        let entries = collect_build_ids([ls.clone(), ls.clone(), (5, false, "/bin/ls".into())]);
        if read_build_id(Path::new("/bin/ls")).is_none() {
            assert!(entries.is_empty());
            return;
        }
        assert_eq!(entries.len(), 2);
        assert!(!entries[0].is_kernel());
        assert_eq!((entries[0].pid, entries[1].pid), (-1, 5));
    }

    #[test]
    fn parses_cpu_lists_and_cpuinfo() {
        assert_eq!(cpu_list_count("0-3,8,10-11"), 7);
        assert_eq!(cpu_list_max("0-3,8,10-11"), Some(11));
        assert_eq!(cpu_list_count(""), 0);
        assert_eq!(cpu_list_count("3-1,x"), 0);
        let x86 = "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 85\n\
                   model name\t: Intel(R)  Xeon(R)   Gold\nstepping\t: 7\n";
        assert_eq!(cpu_id(x86), "GenuineIntel,6,85,7");
        assert_eq!(cpu_description(x86), "Intel(R) Xeon(R) Gold");
        let arm = "processor\t: 0\nCPU implementer\t: 0x41\nCPU architecture: 8\n\
                   CPU variant\t: 0x3\nCPU part\t: 0xd0c\nCPU revision\t: 1\n";
        assert_eq!(cpu_id(arm), "0x00000000413fd0c1");
        assert_eq!(cpu_id(""), "");
        assert_eq!(
            mem_total_kb("MemFree: 1 kB\nMemTotal:       24684084 kB\n"),
            24684084
        );
        assert_eq!(mem_total_kb("garbage"), 0);
    }

    #[test]
    fn host_features_match_uname() {
        let features = host_features(&["kprof".into(), "record".into()], "kprof 0.1.0");
        let text = |field: &Option<String>| field.clone().unwrap_or_default();
        assert_eq!(
            features.cmdline.as_deref(),
            Some(&["kprof".to_string(), "record".to_string()][..])
        );
        assert_eq!(text(&features.version), "kprof 0.1.0");
        let Some(node) = tool_output("uname", &["-n"]) else {
            return;
        };
        assert_eq!(text(&features.hostname), node.trim());
        assert_eq!(
            text(&features.osrelease),
            tool_output("uname", &["-r"]).unwrap().trim()
        );
        assert_eq!(
            text(&features.arch),
            tool_output("uname", &["-m"]).unwrap().trim()
        );
        let online = tool_output("getconf", &["_NPROCESSORS_ONLN"]).unwrap();
        let (available, online_found) = features.nrcpus.unwrap();
        assert_eq!(online_found.to_string(), online.trim());
        assert!(available >= online_found);
        assert!(features.total_mem.unwrap() > 0);
        if std::env::consts::ARCH == "x86_64" {
            let cpuid = text(&features.cpuid);
            assert_eq!(cpuid.split(',').count(), 4, "{cpuid}");
            assert!(!text(&features.cpudesc).is_empty());
        }
    }
}
