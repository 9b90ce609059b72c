//! Typed records: [`Event`] (header facts + time) and [`Record`], decoded zero-copy from a record
//! body. Layouts follow `include/uapi/linux/perf_event.h` and `tools/lib/perf/include/perf/event.h`.

use crate::endian::{Cursor, Endian, U64Slice};
use crate::error::Result;
use crate::kinds::{misc, record as rk};
use crate::sample::{CpuMode, Sample, SampleId};

/// One record with where it was found and its timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event<'a> {
    /// Byte offset of the record: in the file, or in the decompressed stream when
    /// [`PerfFile::offsets_are_decompressed`](crate::PerfFile::offsets_are_decompressed).
    pub offset: u64,
    /// The header's `misc` bits.
    pub misc: u16,
    /// Timestamp: a sample's TIME, a `sample_id` trailer's time, or FORK/EXIT/THROTTLE's own time.
    pub time: Option<u64>,
    /// The `sample_id` trailer of a non-sample record (all `None` when absent).
    pub sample_id: SampleId,
    /// The decoded record.
    pub record: Record<'a>,
}

/// A decoded record.
// `Sample` is much larger than the other variants (~570 bytes of optional fields). Boxing it would
// cost an allocation per sample; the enum lives on the stack for one iteration step, so the size
// is the cheaper trade.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Record<'a> {
    /// SAMPLE (9).
    Sample(Sample<'a>),
    /// MMAP (1) or MMAP2 (10).
    Mmap(Mmap<'a>),
    /// COMM (3).
    Comm(Comm<'a>),
    /// FORK (7).
    Fork(ForkExit),
    /// EXIT (4).
    Exit(ForkExit),
    /// LOST (2).
    Lost(Lost),
    /// LOST_SAMPLES (13).
    LostSamples(LostSamples),
    /// THROTTLE (5).
    Throttle(Throttle),
    /// UNTHROTTLE (6).
    Unthrottle(Throttle),
    /// KSYMBOL (17).
    Ksymbol(Ksymbol<'a>),
    /// BPF_EVENT (18).
    BpfEvent(BpfEvent),
    /// CGROUP (19): a cgroup's id and path.
    Cgroup(Cgroup<'a>),
    /// TIME_CONV (79).
    TimeConv(TimeConv),
    /// ID_INDEX (69).
    IdIndex(IdIndex<'a>),
    /// THREAD_MAP (73).
    ThreadMap(ThreadMap<'a>),
    /// CPU_MAP (74).
    CpuMap(CpuMap<'a>),
    /// STAT_CONFIG (75).
    StatConfig(StatConfig<'a>),
    /// STAT (76).
    Stat(Stat),
    /// STAT_ROUND (77).
    StatRound(StatRound),
    /// FINISHED_ROUND (68): every record before it is older than every record after the next one.
    FinishedRound,
    /// FINISHED_INIT (82): end of the synthesized records.
    FinishedInit,
    /// A record this crate skips by size (unknown or not decoded), counted in stats.
    Other {
        /// Record type.
        kind: u32,
        /// Bytes after the header.
        body: &'a [u8],
    },
}

impl Record<'_> {
    /// The record type number.
    pub fn kind(&self) -> u32 {
        match self {
            Record::Sample(_) => rk::SAMPLE,
            Record::Mmap(m) => {
                if m.is_mmap2 {
                    rk::MMAP2
                } else {
                    rk::MMAP
                }
            }
            Record::Comm(_) => rk::COMM,
            Record::Fork(_) => rk::FORK,
            Record::Exit(_) => rk::EXIT,
            Record::Lost(_) => rk::LOST,
            Record::LostSamples(_) => rk::LOST_SAMPLES,
            Record::Throttle(_) => rk::THROTTLE,
            Record::Unthrottle(_) => rk::UNTHROTTLE,
            Record::Ksymbol(_) => rk::KSYMBOL,
            Record::BpfEvent(_) => rk::BPF_EVENT,
            Record::Cgroup(_) => rk::CGROUP,
            Record::TimeConv(_) => rk::TIME_CONV,
            Record::IdIndex(_) => rk::ID_INDEX,
            Record::ThreadMap(_) => rk::THREAD_MAP,
            Record::CpuMap(_) => rk::CPU_MAP,
            Record::StatConfig(_) => rk::STAT_CONFIG,
            Record::Stat(_) => rk::STAT,
            Record::StatRound(_) => rk::STAT_ROUND,
            Record::FinishedRound => rk::FINISHED_ROUND,
            Record::FinishedInit => rk::FINISHED_INIT,
            Record::Other { kind, .. } => *kind,
        }
    }
}

/// MMAP / MMAP2: a mapping of a file (or anon/special region) into a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mmap<'a> {
    /// Process id (-1 as u32 for kernel maps).
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// Start address.
    pub start: u64,
    /// Length in bytes.
    pub len: u64,
    /// File offset of `start`.
    pub pgoff: u64,
    /// Path up to the first NUL.
    pub filename: &'a [u8],
    /// Build-id, for MMAP2 with PERF_RECORD_MISC_MMAP_BUILD_ID.
    pub build_id: Option<&'a [u8]>,
    /// Not a data mapping (`!PERF_RECORD_MISC_MMAP_DATA`).
    pub executable: bool,
    /// Kernel / user / guest.
    pub cpumode: CpuMode,
    /// This came from an MMAP2 record.
    pub is_mmap2: bool,
    /// Device major (MMAP2 without build-id).
    pub maj: Option<u32>,
    /// Device minor.
    pub min: Option<u32>,
    /// Inode.
    pub ino: Option<u64>,
    /// Inode generation.
    pub ino_generation: Option<u64>,
    /// `PROT_*` (MMAP2).
    pub prot: Option<u32>,
    /// `MAP_*` (MMAP2).
    pub flags: Option<u32>,
}

/// COMM: a thread's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Comm<'a> {
    /// Process id.
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// Name up to the first NUL.
    pub name: &'a [u8],
    /// The name changed because of exec (PERF_RECORD_MISC_COMM_EXEC).
    pub exec: bool,
}

/// FORK / EXIT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForkExit {
    /// Process id.
    pub pid: u32,
    /// Parent process id.
    pub ppid: u32,
    /// Thread id.
    pub tid: u32,
    /// Parent thread id.
    pub ptid: u32,
    /// Timestamp.
    pub time: u64,
}

/// LOST: the kernel dropped records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lost {
    /// Sample id of the event.
    pub id: u64,
    /// Number of lost records (the second u64 of the body).
    pub lost: u64,
}

/// LOST_SAMPLES.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LostSamples {
    /// Number of lost samples.
    pub lost: u64,
}

/// THROTTLE / UNTHROTTLE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttle {
    /// Timestamp.
    pub time: u64,
    /// Sample id.
    pub id: u64,
    /// Stream id.
    pub stream_id: u64,
}

/// KSYMBOL: a kernel symbol (BPF program, ftrace trampoline) was (un)registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ksymbol<'a> {
    /// Start address.
    pub addr: u64,
    /// Length.
    pub len: u32,
    /// `PERF_RECORD_KSYMBOL_TYPE_*`.
    pub ksym_type: u16,
    /// Bit 0: unregister.
    pub flags: u16,
    /// Symbol name up to the first NUL.
    pub name: &'a [u8],
}

/// BPF_EVENT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BpfEvent {
    /// `PERF_BPF_EVENT_*`.
    pub event_type: u16,
    /// Flags.
    pub flags: u16,
    /// BPF program id.
    pub id: u32,
    /// Program tag.
    pub tag: [u8; 8],
}

/// CGROUP: the path of the cgroup with this id, relative to its hierarchy's root (`/` for the
/// root, `/a/b` below it). Samples name their cgroup by id (PERF_SAMPLE_CGROUP); the kernel writes
/// one of these for each cgroup created while recording, and recorders synthesize one per existing
/// cgroup at the start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cgroup<'a> {
    /// The cgroup id: what samples carry (the cgroup's kernfs node id).
    pub id: u64,
    /// The path up to the first NUL.
    pub path: &'a [u8],
}

/// TIME_CONV: how to turn TSC values into perf time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimeConv {
    /// Shift.
    pub time_shift: u64,
    /// Multiplier.
    pub time_mult: u64,
    /// Zero point.
    pub time_zero: u64,
    /// Cycles (newer perf), 0 when absent.
    pub time_cycles: u64,
    /// Mask (newer perf), 0 when absent.
    pub time_mask: u64,
    /// `cap_user_time_zero`.
    pub cap_user_time_zero: bool,
    /// `cap_user_time_short`.
    pub cap_user_time_short: bool,
}

/// ID_INDEX: which cpu/thread each sample id belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdIndex<'a> {
    /// `nr` × `(id, idx, cpu, tid)`.
    pub entries: U64Slice<'a>,
}

impl IdIndex<'_> {
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len() / 4
    }
    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    /// Entry `i` as `(id, idx, cpu, tid)`.
    pub fn get(&self, i: usize) -> Option<(u64, u64, u64, u64)> {
        let b = i.checked_mul(4)?;
        Some((
            self.entries.get(b)?,
            self.entries.get(b + 1)?,
            self.entries.get(b + 2)?,
            self.entries.get(b + 3)?,
        ))
    }
}

/// THREAD_MAP: `(pid, comm[16])` entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadMap<'a> {
    /// Raw entries, 24 bytes each.
    pub entries: &'a [u8],
    /// Byte order for the pids.
    pub endian: Endian,
}

impl<'a> ThreadMap<'a> {
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len() / 24
    }
    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.entries.len() < 24
    }
    /// Entry `i` as `(pid, comm up to NUL)`.
    pub fn get(&self, i: usize) -> Option<(u64, &'a [u8])> {
        let start = i.checked_mul(24)?;
        let e = self.entries.get(start..start.checked_add(24)?)?;
        let mut c = Cursor::new(e, 0, self.endian);
        let pid = c.u64("thread_map pid").ok()?;
        Some((pid, until_nul(c.rest())))
    }
}

/// CPU_MAP: which CPUs a stat session covered (the `type` and raw payload).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuMap<'a> {
    /// 0 CPUS list, 1 MASK, 2 RANGE.
    pub map_type: u16,
    /// Bytes after `type`.
    pub payload: &'a [u8],
}

/// STAT_CONFIG: `perf stat` settings as `(tag, value)` pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatConfig<'a> {
    /// Flat `(tag, value)` pairs.
    pub entries: U64Slice<'a>,
}

impl StatConfig<'_> {
    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.entries.len() / 2
    }
    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.entries.len() < 2
    }
    /// Pair `i` as `(tag, value)`.
    pub fn get(&self, i: usize) -> Option<(u64, u64)> {
        let b = i.checked_mul(2)?;
        Some((self.entries.get(b)?, self.entries.get(b + 1)?))
    }
}

/// STAT: one counter reading of `perf stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// Sample id of the counter.
    pub id: u64,
    /// CPU index.
    pub cpu: u32,
    /// Thread index.
    pub thread: u32,
    /// Counter value.
    pub value: u64,
    /// Time enabled.
    pub enabled: u64,
    /// Time running.
    pub running: u64,
}

/// STAT_ROUND.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatRound {
    /// Round type (interval / final).
    pub round_type: u64,
    /// Timestamp.
    pub time: u64,
}

pub(crate) fn until_nul(b: &[u8]) -> &[u8] {
    match b.iter().position(|&x| x == 0) {
        Some(n) => b.get(..n).unwrap_or(b),
        None => b,
    }
}

/// Decodes a non-sample record body. `payload` excludes the sample_id trailer; `body_offset` is the
/// offset of the first body byte.
pub(crate) fn parse_other<'a>(
    kind: u32,
    misc_bits: u16,
    payload: &'a [u8],
    full_body: &'a [u8],
    body_offset: u64,
    endian: Endian,
) -> Result<Record<'a>> {
    let mut c = Cursor::new(payload, body_offset, endian);
    Ok(match kind {
        rk::MMAP | rk::MMAP2 => {
            let pid = c.u32("mmap pid")?;
            let tid = c.u32("mmap tid")?;
            let start = c.u64("mmap start")?;
            let len = c.u64("mmap len")?;
            let pgoff = c.u64("mmap pgoff")?;
            let mut m = Mmap {
                pid,
                tid,
                start,
                len,
                pgoff,
                filename: &[],
                build_id: None,
                executable: misc_bits & misc::MMAP_DATA == 0,
                cpumode: CpuMode::from_misc(misc_bits),
                is_mmap2: kind == rk::MMAP2,
                maj: None,
                min: None,
                ino: None,
                ino_generation: None,
                prot: None,
                flags: None,
            };
            if kind == rk::MMAP2 {
                if misc_bits & misc::MMAP_BUILD_ID != 0 {
                    let size = c.u8("mmap2 build_id_size")?;
                    c.skip(3, "mmap2 reserved")?;
                    let id = c.bytes(20, "mmap2 build_id")?;
                    m.build_id = Some(id.get(..usize::from(size).min(20)).unwrap_or(id));
                } else {
                    m.maj = Some(c.u32("mmap2 maj")?);
                    m.min = Some(c.u32("mmap2 min")?);
                    m.ino = Some(c.u64("mmap2 ino")?);
                    m.ino_generation = Some(c.u64("mmap2 ino_generation")?);
                }
                m.prot = Some(c.u32("mmap2 prot")?);
                m.flags = Some(c.u32("mmap2 flags")?);
            }
            m.filename = until_nul(c.rest());
            Record::Mmap(m)
        }
        rk::COMM => Record::Comm(Comm {
            pid: c.u32("comm pid")?,
            tid: c.u32("comm tid")?,
            name: until_nul(c.rest()),
            exec: misc_bits & misc::COMM_EXEC != 0,
        }),
        rk::FORK | rk::EXIT => {
            let fe = ForkExit {
                pid: c.u32("fork pid")?,
                ppid: c.u32("fork ppid")?,
                tid: c.u32("fork tid")?,
                ptid: c.u32("fork ptid")?,
                time: c.u64("fork time")?,
            };
            if kind == rk::FORK {
                Record::Fork(fe)
            } else {
                Record::Exit(fe)
            }
        }
        rk::LOST => Record::Lost(Lost {
            id: c.u64("lost id")?,
            lost: c.u64("lost count")?,
        }),
        rk::LOST_SAMPLES => Record::LostSamples(LostSamples {
            lost: c.u64("lost_samples count")?,
        }),
        rk::THROTTLE | rk::UNTHROTTLE => {
            let t = Throttle {
                time: c.u64("throttle time")?,
                id: c.u64("throttle id")?,
                stream_id: c.u64("throttle stream_id")?,
            };
            if kind == rk::THROTTLE {
                Record::Throttle(t)
            } else {
                Record::Unthrottle(t)
            }
        }
        rk::KSYMBOL => Record::Ksymbol(Ksymbol {
            addr: c.u64("ksymbol addr")?,
            len: c.u32("ksymbol len")?,
            ksym_type: c.u16("ksymbol type")?,
            flags: c.u16("ksymbol flags")?,
            name: until_nul(c.rest()),
        }),
        rk::BPF_EVENT => {
            let event_type = c.u16("bpf_event type")?;
            let flags = c.u16("bpf_event flags")?;
            let id = c.u32("bpf_event id")?;
            let mut tag = [0u8; 8];
            tag.copy_from_slice(c.bytes(8, "bpf_event tag")?);
            Record::BpfEvent(BpfEvent {
                event_type,
                flags,
                id,
                tag,
            })
        }
        rk::CGROUP => Record::Cgroup(Cgroup {
            id: c.u64("cgroup id")?,
            path: until_nul(c.rest()),
        }),
        // User records (type >= 64) have no sample_id trailer: read from the full body.
        rk::TIME_CONV => {
            let mut c = Cursor::new(full_body, body_offset, endian);
            let mut t = TimeConv {
                time_shift: c.u64("time_conv shift")?,
                time_mult: c.u64("time_conv mult")?,
                time_zero: c.u64("time_conv zero")?,
                ..TimeConv::default()
            };
            if c.remaining() >= 24 {
                t.time_cycles = c.u64("time_conv cycles")?;
                t.time_mask = c.u64("time_conv mask")?;
                t.cap_user_time_zero = c.u8("time_conv cap_user_time_zero")? != 0;
                t.cap_user_time_short = c.u8("time_conv cap_user_time_short")? != 0;
            }
            Record::TimeConv(t)
        }
        rk::ID_INDEX => {
            let mut c = Cursor::new(full_body, body_offset, endian);
            let nr = c.u64("id_index nr")?;
            let count = nr.saturating_mul(4);
            Record::IdIndex(IdIndex {
                entries: c.u64_slice(count, "id_index entries")?,
            })
        }
        rk::THREAD_MAP => {
            let mut c = Cursor::new(full_body, body_offset, endian);
            let nr = c.u64("thread_map nr")?;
            let len = nr.saturating_mul(24);
            Record::ThreadMap(ThreadMap {
                entries: c.bytes_u64(len, "thread_map entries")?,
                endian,
            })
        }
        rk::CPU_MAP => {
            let mut c = Cursor::new(full_body, body_offset, endian);
            let map_type = c.u16("cpu_map type")?;
            Record::CpuMap(CpuMap {
                map_type,
                payload: c.rest(),
            })
        }
        rk::STAT_CONFIG => {
            let mut c = Cursor::new(full_body, body_offset, endian);
            let nr = c.u64("stat_config nr")?;
            Record::StatConfig(StatConfig {
                entries: c.u64_slice(nr.saturating_mul(2), "stat_config entries")?,
            })
        }
        rk::STAT => {
            let mut c = Cursor::new(full_body, body_offset, endian);
            Record::Stat(Stat {
                id: c.u64("stat id")?,
                cpu: c.u32("stat cpu")?,
                thread: c.u32("stat thread")?,
                value: c.u64("stat value")?,
                enabled: c.u64("stat enabled")?,
                running: c.u64("stat running")?,
            })
        }
        rk::STAT_ROUND => {
            let mut c = Cursor::new(full_body, body_offset, endian);
            Record::StatRound(StatRound {
                round_type: c.u64("stat_round type")?,
                time: c.u64("stat_round time")?,
            })
        }
        rk::FINISHED_ROUND => Record::FinishedRound,
        rk::FINISHED_INIT => Record::FinishedInit,
        _ => Record::Other {
            kind,
            body: full_body,
        },
    })
}

/// True for records the kernel emits (and perf synthesizes), which carry a `sample_id` trailer when
/// the attr has `sample_id_all`.
pub(crate) fn has_sample_id_trailer(kind: u32) -> bool {
    kind != rk::SAMPLE && (1..rk::HEADER_ATTR).contains(&kind)
}
