//! The probe PMUs (`/sys/bus/event_source/devices/{uprobe,kprobe}`): their type number and
//! config formats (`retprobe`, `ref_ctr_offset`), and the attr fields a probe needs. Opening
//! through the PMU (rather than writing `uprobe_events` in tracefs) means a probe lives exactly
//! as long as its file descriptor: nothing is left behind when kprof exits or is killed.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use super::error::ProbeError;
use super::resolved::ResolvedProbe;

/// Where the PMUs are described.
pub const PMU_ROOT: &str = "/sys/bus/event_source/devices";

/// A bit range of `perf_event_attr.config`, as a PMU's `format/NAME` file gives it
/// (`config:0`, `config:32-63`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigBits {
    /// The lowest bit.
    pub low: u32,
    /// The highest bit (inclusive).
    pub high: u32,
}

impl ConfigBits {
    /// `value` placed in these bits; `None` when it does not fit.
    pub fn place(self, value: u64) -> Option<u64> {
        let width = self.high.checked_sub(self.low)? + 1;
        if width < 64 && value >> width != 0 {
            return None;
        }
        value.checked_shl(self.low)
    }
}

/// Parses a format file's text: `config:N` or `config:LOW-HIGH` (other fields are not used by
/// probes and give `None`).
pub fn parse_format(text: &str) -> Option<ConfigBits> {
    let bits = text.trim().strip_prefix("config:")?;
    let (low, high) = match bits.split_once('-') {
        Some((l, h)) => (l.parse().ok()?, h.parse().ok()?),
        None => {
            let n = bits.parse().ok()?;
            (n, n)
        }
    };
    (low <= high && high < 64).then_some(ConfigBits { low, high })
}

/// A probe PMU as the kernel describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PmuFormat {
    /// `perf_event_attr.type` for it.
    pub type_: u32,
    /// Where the return-probe flag goes.
    pub retprobe: Option<ConfigBits>,
    /// Where the reference counter (USDT semaphore) offset goes (Linux ≥ 4.20, uprobes only).
    pub ref_ctr_offset: Option<ConfigBits>,
}

/// Reads PMU `name` (`uprobe` or `kprobe`) under `root`.
pub fn read_pmu_at(root: &Path, name: &str) -> Result<PmuFormat, ProbeError> {
    let dir = root.join(name);
    let type_text =
        std::fs::read_to_string(dir.join("type")).map_err(|error| ProbeError::NoPmu {
            pmu: name.to_owned(),
            dir: dir.clone(),
            error,
        })?;
    let type_ = type_text.trim().parse().map_err(|_| ProbeError::NoPmu {
        pmu: name.to_owned(),
        dir: dir.clone(),
        error: std::io::Error::new(std::io::ErrorKind::InvalidData, "bad type number"),
    })?;
    let format = |field: &str| {
        std::fs::read_to_string(dir.join("format").join(field))
            .ok()
            .and_then(|t| parse_format(&t))
    };
    Ok(PmuFormat {
        type_,
        retprobe: format("retprobe"),
        ref_ctr_offset: format("ref_ctr_offset"),
    })
}

/// Reads PMU `name` from sysfs.
pub fn read_pmu(name: &str) -> Result<PmuFormat, ProbeError> {
    read_pmu_at(Path::new(PMU_ROOT), name)
}

/// The attr fields of one probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeAttr {
    /// `type`: the PMU's number.
    pub type_: u32,
    /// `config`: the return flag and the reference counter offset.
    pub config: u64,
    /// What `config1` points to: the file's path (`uprobe_path`) or the kernel function
    /// (`kprobe_func`), NUL-terminated.
    pub target: CString,
    /// `config2`: the file offset (`probe_offset`) or the offset into the kernel function.
    pub offset: u64,
}

/// Builds the attr fields for `probe` on a PMU described by `pmu`.
pub fn build(probe: &ResolvedProbe, pmu: &PmuFormat) -> Result<ProbeAttr, ProbeError> {
    let unsupported = |what: &str| ProbeError::PmuLacks {
        pmu: if probe.kind.is_kernel() {
            "kprobe"
        } else {
            "uprobe"
        }
        .to_owned(),
        what: what.to_owned(),
    };
    let mut config = 0;
    if probe.kind.is_return() {
        let bits = pmu
            .retprobe
            .ok_or_else(|| unsupported("return probes (format/retprobe)"))?;
        config |= bits.place(1).ok_or_else(|| unsupported("return probes"))?;
    }
    if let Some(offset) = probe.ref_ctr_offset {
        let bits = pmu.ref_ctr_offset.ok_or_else(|| {
            unsupported("USDT semaphores (format/ref_ctr_offset, Linux 4.20 or later)")
        })?;
        config |= bits
            .place(offset)
            .ok_or_else(|| unsupported("a semaphore this far into the file"))?;
    }
    let target = CString::new(probe.target.as_bytes()).map_err(|_| ProbeError::Read {
        path: PathBuf::from(&probe.target),
        error: std::io::Error::new(std::io::ErrorKind::InvalidInput, "NUL in path"),
    })?;
    Ok(ProbeAttr {
        type_: pmu.type_,
        config,
        target,
        offset: probe.offset,
    })
}

/// The PMU name a probe is opened through.
pub fn pmu_name(probe: &ResolvedProbe) -> &'static str {
    if probe.kind.is_kernel() {
        "kprobe"
    } else {
        "uprobe"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::regs::Arch;
    use crate::probe::spec::ProbeKind;

    fn probe(kind: ProbeKind, ref_ctr: Option<u64>) -> ResolvedProbe {
        ResolvedProbe {
            kind,
            name: "u:/bin/x:f".into(),
            path: PathBuf::from("/bin/x"),
            arch: Arch::X86_64,
            target: "/bin/x".into(),
            offset: 0x1139,
            function: Some("f".into()),
            ref_ctr_offset: ref_ctr,
            usdt_args: Vec::new(),
        }
    }

    fn pmu() -> PmuFormat {
        PmuFormat {
            type_: 8,
            retprobe: parse_format("config:0\n"),
            ref_ctr_offset: parse_format("config:32-63\n"),
        }
    }

    #[test]
    fn formats() {
        assert_eq!(
            parse_format("config:0"),
            Some(ConfigBits { low: 0, high: 0 })
        );
        assert_eq!(
            parse_format("config:32-63\n"),
            Some(ConfigBits { low: 32, high: 63 })
        );
        assert_eq!(parse_format("config1:0-63"), None);
        assert_eq!(parse_format("config:9-3"), None);
        assert_eq!(ConfigBits { low: 0, high: 0 }.place(2), None);
        assert_eq!(
            ConfigBits { low: 32, high: 63 }.place(0x10),
            Some(0x10 << 32)
        );
    }

    #[test]
    fn entry_return_and_semaphore_attrs() {
        let entry = build(&probe(ProbeKind::Uprobe, None), &pmu()).unwrap();
        assert_eq!((entry.type_, entry.config, entry.offset), (8, 0, 0x1139));
        assert_eq!(entry.target.to_str().unwrap(), "/bin/x");
        let ret = build(&probe(ProbeKind::Uretprobe, None), &pmu()).unwrap();
        assert_eq!(ret.config, 1);
        let guarded = build(&probe(ProbeKind::Usdt, Some(0x4010)), &pmu()).unwrap();
        assert_eq!(guarded.config, 0x4010 << 32);
        let old_kernel = PmuFormat {
            ref_ctr_offset: None,
            ..pmu()
        };
        let err = build(&probe(ProbeKind::Usdt, Some(0x4010)), &old_kernel).unwrap_err();
        assert!(err.to_string().contains("semaphores"), "{err}");
        let too_far = build(&probe(ProbeKind::Usdt, Some(1 << 40)), &pmu());
        assert!(too_far.is_err());
    }

    #[test]
    fn kprobe_attrs_name_the_function() {
        let mut k = probe(ProbeKind::Kretprobe, None);
        k.target = "vfs_read".into();
        k.offset = 0;
        let attr = build(&k, &PmuFormat { type_: 6, ..pmu() }).unwrap();
        assert_eq!((attr.type_, attr.config), (6, 1));
        assert_eq!(attr.target.to_str().unwrap(), "vfs_read");
        assert_eq!(pmu_name(&k), "kprobe");
    }

    #[test]
    fn missing_pmu_is_one_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_pmu_at(dir.path(), "kprobe").unwrap_err().to_string();
        assert!(err.contains("kprobe"), "{err}");
        std::fs::create_dir_all(dir.path().join("uprobe/format")).unwrap();
        std::fs::write(dir.path().join("uprobe/type"), "8\n").unwrap();
        std::fs::write(dir.path().join("uprobe/format/retprobe"), "config:0\n").unwrap();
        let p = read_pmu_at(dir.path(), "uprobe").unwrap();
        assert_eq!(p.type_, 8);
        assert_eq!(p.retprobe, Some(ConfigBits { low: 0, high: 0 }));
        assert_eq!(p.ref_ctr_offset, None);
    }
}
