//! Feature sections (file mode) and HEADER_FEATURE records (pipe mode): host facts, command line,
//! event names (EVENT_DESC) and build-ids, per `tools/perf/util/header.c`.

use crate::attr::EventAttr;
use crate::endian::{Cursor, Endian};
use crate::error::{Error, Result};
use crate::kinds::{feature as f, misc};
use crate::record::until_nul;

/// One EVENT_DESC entry: an attr with its name and ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventDesc {
    /// The attr as stored in the feature.
    pub attr: EventAttr,
    /// Event name, e.g. `cpu-clock:u`.
    pub name: String,
    /// Its sample ids.
    pub ids: Vec<u64>,
}

/// One build-id table entry (BUILD_ID feature or HEADER_BUILD_ID record), as the reader finds it
/// and the [`writer`](crate::writer) writes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildIdEntry {
    /// Machine pid: `-1` (perf's `HOST_KERNEL_ID`) for everything on the host, kernel and user.
    pub pid: i32,
    /// The header misc: cpumode (kernel or user), `PERF_RECORD_MISC_BUILD_ID_SIZE` when read.
    /// The writer writes the cpumode and always sets `BUILD_ID_SIZE`.
    pub misc: u16,
    /// The build-id, trimmed to its size; the writer stores at most 20 bytes.
    pub build_id: Vec<u8>,
    /// Path of the object, or `[kernel.kallsyms]` for the kernel.
    pub filename: String,
}

impl BuildIdEntry {
    /// An entry of the host (`pid` -1 for all) for a kernel object (the kernel or a module) or a
    /// user-space one.
    pub fn new(pid: i32, kernel: bool, build_id: Vec<u8>, filename: String) -> BuildIdEntry {
        let misc = if kernel {
            misc::CPUMODE_KERNEL
        } else {
            misc::CPUMODE_USER
        };
        BuildIdEntry {
            pid,
            misc,
            build_id,
            filename,
        }
    }

    /// True for the kernel or a kernel module (cpumode `PERF_RECORD_MISC_KERNEL`).
    pub fn is_kernel(&self) -> bool {
        self.misc & misc::CPUMODE_MASK == misc::CPUMODE_KERNEL
    }
}

/// The feature sections of a recording (HEADER_FEATURE records in a pipe): what the reader
/// understood from them, and what the [`writer`](crate::writer) writes.
///
/// The writer writes TRACING_DATA (when given), BUILD_ID, the host facts HOSTNAME to CMDLINE
/// (absent ones as empty strings and zero counts, as perf prints them), EVENT_DESC from its
/// attrs, and SAMPLE_TIME (when given). It derives `present` and `event_desc` itself and writes
/// no CLOCKID or COMPRESSED section: those fields are the reader's.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Features {
    /// Feature bits present (file: `adds_features`; pipe: HEADER_FEATURE records seen).
    pub present: Vec<u32>,
    /// HOSTNAME: the node name (`uname -n`).
    pub hostname: Option<String>,
    /// OSRELEASE: the kernel release (`uname -r`).
    pub osrelease: Option<String>,
    /// VERSION: the version of the recording tool.
    pub version: Option<String>,
    /// ARCH: the machine (`uname -m`), e.g. `x86_64`.
    pub arch: Option<String>,
    /// CPUDESC: the CPU model name.
    pub cpudesc: Option<String>,
    /// CPUID: perf's cpuid string, e.g. `GenuineIntel,6,85,7`.
    pub cpuid: Option<String>,
    /// NRCPUS as `(available, online)`: CPUs present and CPUs online.
    pub nrcpus: Option<(u32, u32)>,
    /// TOTAL_MEM in kB.
    pub total_mem: Option<u64>,
    /// CMDLINE arguments: the recorder's command line, program first.
    pub cmdline: Option<Vec<String>>,
    /// EVENT_DESC entries.
    pub event_desc: Vec<EventDesc>,
    /// BUILD_ID entries: build-ids of the files the recording touched.
    pub build_ids: Vec<BuildIdEntry>,
    /// CLOCKID resolution (ns).
    pub clockid_res_ns: Option<u64>,
    /// COMPRESSED: `(version, type, level, ratio, mmap_len)`.
    pub compressed: Option<(u32, u32, u32, u32, u32)>,
    /// SAMPLE_TIME: times of the first and the last sample (perf clock, ns).
    pub sample_time: Option<(u64, u64)>,
    /// TRACING_DATA for the writer: the blob (`"\x17\x08\x44tracing"`, version, header_page,
    /// event formats, ...), written as-is. Linux perf refuses files with tracepoint events
    /// without it. The reader decodes the blob into
    /// [`PerfFile::tracing_data`](crate::PerfFile::tracing_data) instead and leaves this `None`.
    pub tracing_data: Option<Vec<u8>>,
}

fn string(c: &mut Cursor<'_>, what: &'static str) -> Result<String> {
    let len = c.u32(what)?;
    let bytes = c.bytes(len as usize, what)?;
    Ok(String::from_utf8_lossy(until_nul(bytes)).into_owned())
}

/// Decodes a BUILD_ID table (a run of `build_id_event` records).
pub(crate) fn parse_build_ids(
    data: &[u8],
    base: u64,
    endian: Endian,
    out: &mut Vec<BuildIdEntry>,
) -> Result<()> {
    let mut c = Cursor::new(data, base, endian);
    while c.remaining() >= 8 {
        let start = c.offset();
        let _kind = c.u32("build_id header type")?;
        let misc_bits = c.u16("build_id header misc")?;
        let size = c.u16("build_id header size")?;
        if size < 8 + 4 + 24 {
            return Err(Error::BadRecordSize {
                offset: start,
                kind: crate::kinds::record::HEADER_BUILD_ID,
                size: u64::from(size),
            });
        }
        let mut body = Cursor::new(
            c.bytes(usize::from(size) - 8, "build_id entry")?,
            start + 8,
            endian,
        );
        out.push(parse_build_id_body(&mut body, misc_bits)?);
    }
    Ok(())
}

/// Decodes a `build_id_event` body (after its 8-byte header).
pub(crate) fn parse_build_id_body(c: &mut Cursor<'_>, misc_bits: u16) -> Result<BuildIdEntry> {
    let pid = c.u32("build_id pid")? as i32;
    let raw = c.bytes(24, "build_id bytes")?;
    let len = if misc_bits & misc::BUILD_ID_SIZE != 0 {
        usize::from(raw.get(20).copied().unwrap_or(20)).min(20)
    } else {
        20
    };
    let build_id = raw.get(..len).unwrap_or(raw).to_vec();
    let filename = String::from_utf8_lossy(until_nul(c.rest())).into_owned();
    Ok(BuildIdEntry {
        pid,
        misc: misc_bits,
        build_id,
        filename,
    })
}

impl Features {
    /// Parses one feature payload into `self`. Unknown or undecoded features are ignored here.
    pub(crate) fn parse_feature(
        &mut self,
        bit: u32,
        data: &[u8],
        base: u64,
        endian: Endian,
    ) -> Result<()> {
        let mut c = Cursor::new(data, base, endian);
        match bit {
            f::HOSTNAME => self.hostname = Some(string(&mut c, "hostname")?),
            f::OSRELEASE => self.osrelease = Some(string(&mut c, "osrelease")?),
            f::VERSION => self.version = Some(string(&mut c, "version")?),
            f::ARCH => self.arch = Some(string(&mut c, "arch")?),
            f::CPUDESC => self.cpudesc = Some(string(&mut c, "cpudesc")?),
            f::CPUID => self.cpuid = Some(string(&mut c, "cpuid")?),
            f::NRCPUS => {
                let avail = c.u32("nrcpus available")?;
                let online = c.u32("nrcpus online")?;
                self.nrcpus = Some((avail, online));
            }
            f::TOTAL_MEM => self.total_mem = Some(c.u64("total_mem")?),
            f::CLOCKID => self.clockid_res_ns = Some(c.u64("clockid")?),
            f::SAMPLE_TIME => {
                self.sample_time = Some((c.u64("sample_time first")?, c.u64("sample_time last")?));
            }
            f::CMDLINE => {
                let nr = c.u32("cmdline nr")?;
                // Each string needs at least 4 bytes: bound the count before allocating.
                if nr as usize > c.remaining() / 4 {
                    return Err(Error::Truncated {
                        what: "cmdline strings",
                        offset: c.offset(),
                        needed: (nr as usize).saturating_mul(4),
                    });
                }
                let mut args = Vec::with_capacity(nr as usize);
                for _ in 0..nr {
                    args.push(string(&mut c, "cmdline string")?);
                }
                self.cmdline = Some(args);
            }
            f::EVENT_DESC => {
                let nr = c.u32("event_desc nr")?;
                let attr_size = c.u32("event_desc attr_size")? as usize;
                if attr_size < crate::attr::ATTR_SIZE_VER0 {
                    return Err(Error::BadAttrSize {
                        offset: c.offset(),
                        size: attr_size as u64,
                    });
                }
                let min_entry = attr_size + 8;
                if nr as usize > c.remaining() / min_entry {
                    return Err(Error::Truncated {
                        what: "event_desc entries",
                        offset: c.offset(),
                        needed: (nr as usize).saturating_mul(min_entry),
                    });
                }
                for _ in 0..nr {
                    let at = c.offset();
                    let attr =
                        EventAttr::parse(c.bytes(attr_size, "event_desc attr")?, at, endian)?;
                    let nr_ids = c.u32("event_desc nr_ids")?;
                    let name = string(&mut c, "event_desc name")?;
                    let ids = c.u64_slice(u64::from(nr_ids), "event_desc ids")?;
                    self.event_desc.push(EventDesc {
                        attr,
                        name,
                        ids: ids.iter().collect(),
                    });
                }
            }
            f::BUILD_ID => parse_build_ids(data, base, endian, &mut self.build_ids)?,
            f::COMPRESSED => {
                self.compressed = Some((
                    c.u32("compressed version")?,
                    c.u32("compressed type")?,
                    c.u32("compressed level")?,
                    c.u32("compressed ratio")?,
                    c.u32("compressed mmap_len")?,
                ));
            }
            _ => {}
        }
        Ok(())
    }
}
