//! `perf_event_attr`: [`EventAttr`] parsing for every attr size (VER0 64 bytes up to VER8 136 bytes
//! and beyond), the bitfield word in either byte order, and perf-style event names.

use crate::endian::{Cursor, Endian};
use crate::error::{Error, Result};
use crate::kinds::attr_flag as flag;

/// Size of the oldest `perf_event_attr` (PERF_ATTR_SIZE_VER0).
pub const ATTR_SIZE_VER0: usize = 64;
/// Size of the newest `perf_event_attr` this crate decodes (PERF_ATTR_SIZE_VER8, with `config3`).
pub const ATTR_SIZE_KNOWN: usize = 136;

/// One event's `perf_event_attr`, plus the sample ids that belong to it and its name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventAttr {
    /// `PERF_TYPE_*` (0 hardware, 1 software, 2 tracepoint, 3 hw cache, 4 raw, 5 breakpoint, or a PMU type).
    pub kind: u32,
    /// Event selector within `kind`.
    pub config: u64,
    /// Sample period, or frequency when `freq`.
    pub sample_period_or_freq: u64,
    /// `sample_period_or_freq` is a frequency in Hz.
    pub freq: bool,
    /// `PERF_SAMPLE_*` bits: which fields samples carry.
    pub sample_type: u64,
    /// `PERF_FORMAT_*` bits for READ values.
    pub read_format: u64,
    /// The bitfield word (bit 0 `disabled` … bit 18 `sample_id_all` …), in kernel bit numbering.
    pub flags: u64,
    /// Non-sample records carry a sample_id trailer.
    pub sample_id_all: bool,
    /// User space is not counted.
    pub exclude_user: bool,
    /// The kernel is not counted.
    pub exclude_kernel: bool,
    /// `branch_sample_type` (VER2+), 0 when absent.
    pub branch_sample_type: u64,
    /// Registers dumped in REGS_USER (VER2+).
    pub sample_regs_user: u64,
    /// Stack bytes dumped in STACK_USER (VER2+).
    pub sample_stack_user: u32,
    /// Clock id when `use_clockid` (VER3+).
    pub clockid: i32,
    /// Registers dumped in REGS_INTR (VER4+).
    pub sample_regs_intr: u64,
    /// Sample ids of this event (one per cpu/thread fd).
    pub ids: Vec<u64>,
    /// Event name: from EVENT_DESC / EVENT_UPDATE, else derived like perf (`cycles`, `cpu-clock`).
    pub name: String,
    /// The `size` field as stored (0 is read as 64).
    pub size: u32,
    /// Attr bytes beyond what this crate knows (kept, not interpreted).
    pub extra_bytes: usize,
}

impl EventAttr {
    /// Parses a `perf_event_attr` from `bytes`, all of which belong to it (the stride the file
    /// uses, or the attr as passed to the kernel): reads the known prefix, leaves fields beyond
    /// `bytes` 0 and counts bytes beyond the known ones in [`extra_bytes`](Self::extra_bytes).
    /// `base` is the offset of `bytes[0]`, for errors.
    pub fn parse(bytes: &[u8], base: u64, endian: Endian) -> Result<EventAttr> {
        if bytes.len() < ATTR_SIZE_VER0 {
            return Err(Error::BadAttrSize {
                offset: base,
                size: bytes.len() as u64,
            });
        }
        let mut known = [0u8; ATTR_SIZE_KNOWN];
        let take = bytes.len().min(ATTR_SIZE_KNOWN);
        if let (Some(dst), Some(src)) = (known.get_mut(..take), bytes.get(..take)) {
            dst.copy_from_slice(src);
        }
        let mut c = Cursor::new(&known, base, endian);
        let kind = c.u32("attr type")?;
        let size = c.u32("attr size")?;
        let config = c.u64("attr config")?;
        let sample_period_or_freq = c.u64("attr sample_period")?;
        let sample_type = c.u64("attr sample_type")?;
        let read_format = c.u64("attr read_format")?;
        let raw_flags = c.u64("attr flags")?;
        // Big-endian compilers allocate bitfields from the most significant bit.
        let flags = match endian {
            Endian::Little => raw_flags,
            Endian::Big => raw_flags.reverse_bits(),
        };
        let _wakeup = c.u32("attr wakeup")?;
        let _bp_type = c.u32("attr bp_type")?;
        let _config1 = c.u64("attr config1")?;
        let _config2 = c.u64("attr config2")?;
        let branch_sample_type = c.u64("attr branch_sample_type")?;
        let sample_regs_user = c.u64("attr sample_regs_user")?;
        let sample_stack_user = c.u32("attr sample_stack_user")?;
        let clockid = c.u32("attr clockid")? as i32;
        let sample_regs_intr = c.u64("attr sample_regs_intr")?;
        let mut attr = EventAttr {
            kind,
            config,
            sample_period_or_freq,
            freq: flags & flag::FREQ != 0,
            sample_type,
            read_format,
            flags,
            sample_id_all: flags & flag::SAMPLE_ID_ALL != 0,
            exclude_user: flags & flag::EXCLUDE_USER != 0,
            exclude_kernel: flags & flag::EXCLUDE_KERNEL != 0,
            branch_sample_type,
            sample_regs_user,
            sample_stack_user,
            clockid,
            sample_regs_intr,
            ids: Vec::new(),
            name: String::new(),
            size: if size == 0 {
                ATTR_SIZE_VER0 as u32
            } else {
                size
            },
            extra_bytes: bytes.len().saturating_sub(ATTR_SIZE_KNOWN),
        };
        attr.name = attr.derived_name();
        Ok(attr)
    }

    /// What a sample of this event that carries no PERF_SAMPLE_PERIOD weighs: the attr's fixed
    /// `sample_period` (`perf record -c N`), as perf, perfparser and Hotspot weigh it. `None`
    /// when the event samples at a frequency (the kernel varies the period and the samples did
    /// not record it) or the period is 0. Samples that carry PERIOD weigh that instead.
    pub fn fixed_period(&self) -> Option<u64> {
        (!self.freq && self.sample_period_or_freq > 0).then_some(self.sample_period_or_freq)
    }

    /// Whether this event's samples have no knowable weight: sampled at a frequency, without
    /// PERF_SAMPLE_PERIOD in `sample_type`.
    pub fn period_unknown(&self) -> bool {
        self.sample_type & crate::kinds::sample::PERIOD == 0 && self.fixed_period().is_none()
    }

    /// The name perf would give this attr without an EVENT_DESC: `cycles`, `cpu-clock`, `page-faults`,
    /// `tracepoint:<config>`, `raw:0x…`, with `:u`/`:k` when only one side is counted.
    pub fn derived_name(&self) -> String {
        const HW: [&str; 10] = [
            "cycles",
            "instructions",
            "cache-references",
            "cache-misses",
            "branches",
            "branch-misses",
            "bus-cycles",
            "stalled-cycles-frontend",
            "stalled-cycles-backend",
            "ref-cycles",
        ];
        const SW: [&str; 12] = [
            "cpu-clock",
            "task-clock",
            "page-faults",
            "context-switches",
            "cpu-migrations",
            "minor-faults",
            "major-faults",
            "alignment-faults",
            "emulation-faults",
            "dummy",
            "bpf-output",
            "cgroup-switches",
        ];
        let pick = |table: &[&str]| {
            usize::try_from(self.config)
                .ok()
                .and_then(|i| table.get(i).map(|s| s.to_string()))
        };
        let base = match self.kind {
            0 => pick(&HW).unwrap_or_else(|| format!("hardware:{:#x}", self.config)),
            1 => pick(&SW).unwrap_or_else(|| format!("software:{:#x}", self.config)),
            2 => format!("tracepoint:{}", self.config),
            3 => format!("hw-cache:{:#x}", self.config),
            4 => format!("raw:{:#x}", self.config),
            5 => "breakpoint".to_string(),
            other => format!("pmu{other}:{:#x}", self.config),
        };
        match (self.exclude_user, self.exclude_kernel) {
            (false, true) => format!("{base}:u"),
            (true, false) => format!("{base}:k"),
            _ => base,
        }
    }
}
