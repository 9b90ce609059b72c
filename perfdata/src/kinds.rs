//! Numeric constants of the perf.data format (record types, `sample_type` bits, misc flags, feature
//! bits) and their names as perf prints them. Source: `include/uapi/linux/perf_event.h` and
//! `tools/perf/util/{event.h,header.h}`.

/// Size of the file-mode header (`struct perf_file_header`).
pub const FILE_HEADER_SIZE: u64 = 104;
/// Size of the pipe-mode header (`struct perf_pipe_file_header`).
pub const PIPE_HEADER_SIZE: u64 = 16;

/// Record type numbers (`perf_event_header.type`).
pub mod record {
    #![allow(missing_docs)]
    pub const MMAP: u32 = 1;
    pub const LOST: u32 = 2;
    pub const COMM: u32 = 3;
    pub const EXIT: u32 = 4;
    pub const THROTTLE: u32 = 5;
    pub const UNTHROTTLE: u32 = 6;
    pub const FORK: u32 = 7;
    pub const READ: u32 = 8;
    pub const SAMPLE: u32 = 9;
    pub const MMAP2: u32 = 10;
    pub const AUX: u32 = 11;
    pub const ITRACE_START: u32 = 12;
    pub const LOST_SAMPLES: u32 = 13;
    pub const SWITCH: u32 = 14;
    pub const SWITCH_CPU_WIDE: u32 = 15;
    pub const NAMESPACES: u32 = 16;
    pub const KSYMBOL: u32 = 17;
    pub const BPF_EVENT: u32 = 18;
    pub const CGROUP: u32 = 19;
    pub const TEXT_POKE: u32 = 20;
    pub const AUX_OUTPUT_HW_ID: u32 = 21;
    pub const CALLCHAIN_DEFERRED: u32 = 22;
    pub const HEADER_ATTR: u32 = 64;
    pub const HEADER_EVENT_TYPE: u32 = 65;
    pub const HEADER_TRACING_DATA: u32 = 66;
    pub const HEADER_BUILD_ID: u32 = 67;
    pub const FINISHED_ROUND: u32 = 68;
    pub const ID_INDEX: u32 = 69;
    pub const AUXTRACE_INFO: u32 = 70;
    pub const AUXTRACE: u32 = 71;
    pub const AUXTRACE_ERROR: u32 = 72;
    pub const THREAD_MAP: u32 = 73;
    pub const CPU_MAP: u32 = 74;
    pub const STAT_CONFIG: u32 = 75;
    pub const STAT: u32 = 76;
    pub const STAT_ROUND: u32 = 77;
    pub const EVENT_UPDATE: u32 = 78;
    pub const TIME_CONV: u32 = 79;
    pub const HEADER_FEATURE: u32 = 80;
    pub const COMPRESSED: u32 = 81;
    pub const FINISHED_INIT: u32 = 82;
    pub const COMPRESSED2: u32 = 83;
    pub const BPF_METADATA: u32 = 84;
}

/// `perf_event_attr.sample_type` bits (`PERF_SAMPLE_*`).
pub mod sample {
    #![allow(missing_docs)]
    pub const IP: u64 = 1 << 0;
    pub const TID: u64 = 1 << 1;
    pub const TIME: u64 = 1 << 2;
    pub const ADDR: u64 = 1 << 3;
    pub const READ: u64 = 1 << 4;
    pub const CALLCHAIN: u64 = 1 << 5;
    pub const ID: u64 = 1 << 6;
    pub const CPU: u64 = 1 << 7;
    pub const PERIOD: u64 = 1 << 8;
    pub const STREAM_ID: u64 = 1 << 9;
    pub const RAW: u64 = 1 << 10;
    pub const BRANCH_STACK: u64 = 1 << 11;
    pub const REGS_USER: u64 = 1 << 12;
    pub const STACK_USER: u64 = 1 << 13;
    pub const WEIGHT: u64 = 1 << 14;
    pub const DATA_SRC: u64 = 1 << 15;
    pub const IDENTIFIER: u64 = 1 << 16;
    pub const TRANSACTION: u64 = 1 << 17;
    pub const REGS_INTR: u64 = 1 << 18;
    pub const PHYS_ADDR: u64 = 1 << 19;
    pub const AUX: u64 = 1 << 20;
    pub const CGROUP: u64 = 1 << 21;
    pub const DATA_PAGE_SIZE: u64 = 1 << 22;
    pub const CODE_PAGE_SIZE: u64 = 1 << 23;
    pub const WEIGHT_STRUCT: u64 = 1 << 24;
    /// Every bit this crate can decode.
    pub const KNOWN: u64 = (1 << 25) - 1;
    /// The fixed-size fields a sample starts with, before READ, in their order; each is 8
    /// bytes (TID and CPU as two u32s).
    pub const LEADING: u64 = IDENTIFIER | IP | TID | TIME | ADDR | ID | STREAM_ID | CPU | PERIOD;
    /// The fields of the `sample_id` trailer of non-sample records (`struct sample_id`), in
    /// their order; each is 8 bytes (TID and CPU as two u32s).
    pub const ID_TRAILER: [u64; 6] = [TID, TIME, ID, STREAM_ID, CPU, IDENTIFIER];
}

/// `perf_event_attr.read_format` bits (`PERF_FORMAT_*`).
pub mod read_format {
    #![allow(missing_docs)]
    pub const TOTAL_TIME_ENABLED: u64 = 1 << 0;
    pub const TOTAL_TIME_RUNNING: u64 = 1 << 1;
    pub const ID: u64 = 1 << 2;
    pub const GROUP: u64 = 1 << 3;
    pub const LOST: u64 = 1 << 4;
}

/// `perf_event_attr` bitfield word bits (kernel numbering, as in [`EventAttr::flags`](crate::EventAttr::flags)).
pub mod attr_flag {
    #![allow(missing_docs)]
    pub const DISABLED: u64 = 1 << 0;
    pub const INHERIT: u64 = 1 << 1;
    pub const EXCLUDE_USER: u64 = 1 << 4;
    pub const EXCLUDE_KERNEL: u64 = 1 << 5;
    pub const EXCLUDE_HV: u64 = 1 << 6;
    pub const MMAP: u64 = 1 << 8;
    pub const COMM: u64 = 1 << 9;
    pub const FREQ: u64 = 1 << 10;
    pub const SAMPLE_ID_ALL: u64 = 1 << 18;
    pub const MMAP2: u64 = 1 << 23;
}

/// `perf_event_header.misc` bits (`PERF_RECORD_MISC_*`).
pub mod misc {
    #![allow(missing_docs)]
    pub const CPUMODE_MASK: u16 = 7;
    /// Cpumode `PERF_RECORD_MISC_KERNEL`.
    pub const CPUMODE_KERNEL: u16 = 1;
    /// Cpumode `PERF_RECORD_MISC_USER`.
    pub const CPUMODE_USER: u16 = 2;
    /// On MMAP/MMAP2: a data (non-executable) mapping.
    pub const MMAP_DATA: u16 = 1 << 13;
    /// On COMM: the comm changed because of exec.
    pub const COMM_EXEC: u16 = 1 << 13;
    /// On SWITCH / SWITCH_CPU_WIDE: a switch out of the task (else into it).
    pub const SWITCH_OUT: u16 = 1 << 13;
    /// On MMAP2: the record carries a build-id instead of maj/min/ino.
    pub const MMAP_BUILD_ID: u16 = 1 << 14;
    /// On HEADER_BUILD_ID / the build-id feature: the `size` byte is valid.
    pub const BUILD_ID_SIZE: u16 = 1 << 15;
}

/// MMAP2's `prot` and `flags` fields: mmap(2)'s `PROT_*` and `MAP_*` bits.
pub mod mmap {
    #![allow(missing_docs)]
    pub const PROT_READ: u32 = 1;
    pub const PROT_WRITE: u32 = 2;
    pub const PROT_EXEC: u32 = 4;
    pub const MAP_SHARED: u32 = 1;
    pub const MAP_PRIVATE: u32 = 2;
}

/// Context markers in a `PERF_SAMPLE_CALLCHAIN` (`PERF_CONTEXT_*`, `enum perf_callchain_context`):
/// each says where the entries after it were taken. Entries at or above [`MAX`](context::MAX) are
/// markers, never addresses.
pub mod context {
    /// `PERF_CONTEXT_HV`: hypervisor entries follow.
    pub const HV: u64 = -32i64 as u64;
    /// `PERF_CONTEXT_KERNEL`: kernel entries follow.
    pub const KERNEL: u64 = -128i64 as u64;
    /// `PERF_CONTEXT_USER`: user-space entries follow.
    pub const USER: u64 = -512i64 as u64;
    /// `PERF_CONTEXT_GUEST`: guest entries follow.
    pub const GUEST: u64 = -2048i64 as u64;
    /// `PERF_CONTEXT_GUEST_KERNEL`: guest kernel entries follow.
    pub const GUEST_KERNEL: u64 = -2176i64 as u64;
    /// `PERF_CONTEXT_GUEST_USER`: guest user-space entries follow.
    pub const GUEST_USER: u64 = -2560i64 as u64;
    /// `PERF_CONTEXT_MAX`: the lowest marker value.
    pub const MAX: u64 = -4095i64 as u64;

    /// The user-space entries of a raw callchain: those after its last [`USER`] marker, up to
    /// the next marker. Empty when the callchain has no user part.
    pub fn user_entries(callchain: &[u64]) -> &[u64] {
        let Some(marker) = callchain.iter().rposition(|&entry| entry == USER) else {
            return &[];
        };
        let rest = callchain.get(marker + 1..).unwrap_or(&[]);
        let len = rest
            .iter()
            .position(|&entry| entry >= MAX)
            .unwrap_or(rest.len());
        rest.get(..len).unwrap_or(&[])
    }
}

/// `branch_sample_type` bits kprof reads: what the BRANCH_STACK entries mean and its layout.
pub mod branch {
    /// `PERF_SAMPLE_BRANCH_CALL_STACK`: the entries are the open calls (LBR call stack), innermost
    /// first, each `from` a call instruction and `to` the function it entered.
    pub const CALL_STACK: u64 = 1 << 11;
    /// A `hw_idx` u64 precedes the entries.
    pub const HW_INDEX: u64 = 1 << 17;
    /// `nr` u64 counters follow the entries.
    pub const COUNTERS: u64 = 1 << 19;
    /// The flag fields of `struct perf_branch_entry`'s third word as `(bit position, width)` in
    /// little-endian allocation: mispred, predicted, in_tx, abort, cycles, type, spec, new_type,
    /// priv, reserved. (A big-endian compiler allocates them from the most significant bit.)
    pub const FLAG_FIELDS: [(u32, u32); 10] = [
        (0, 1),
        (1, 1),
        (2, 1),
        (3, 1),
        (4, 16),
        (20, 4),
        (24, 2),
        (26, 4),
        (30, 3),
        (33, 31),
    ];
}

/// The name perf uses for a record type, e.g. `"MMAP2"`; `"UNKNOWN"` for numbers it does not know.
pub fn record_type_name(kind: u32) -> &'static str {
    use record::*;
    match kind {
        0 => "UNKNOWN",
        MMAP => "MMAP",
        LOST => "LOST",
        COMM => "COMM",
        EXIT => "EXIT",
        THROTTLE => "THROTTLE",
        UNTHROTTLE => "UNTHROTTLE",
        FORK => "FORK",
        READ => "READ",
        SAMPLE => "SAMPLE",
        MMAP2 => "MMAP2",
        AUX => "AUX",
        ITRACE_START => "ITRACE_START",
        LOST_SAMPLES => "LOST_SAMPLES",
        SWITCH => "SWITCH",
        SWITCH_CPU_WIDE => "SWITCH_CPU_WIDE",
        NAMESPACES => "NAMESPACES",
        KSYMBOL => "KSYMBOL",
        BPF_EVENT => "BPF_EVENT",
        CGROUP => "CGROUP",
        TEXT_POKE => "TEXT_POKE",
        AUX_OUTPUT_HW_ID => "AUX_OUTPUT_HW_ID",
        CALLCHAIN_DEFERRED => "CALLCHAIN_DEFERRED",
        HEADER_ATTR => "ATTR",
        HEADER_EVENT_TYPE => "EVENT_TYPE",
        HEADER_TRACING_DATA => "TRACING_DATA",
        HEADER_BUILD_ID => "BUILD_ID",
        FINISHED_ROUND => "FINISHED_ROUND",
        ID_INDEX => "ID_INDEX",
        AUXTRACE_INFO => "AUXTRACE_INFO",
        AUXTRACE => "AUXTRACE",
        AUXTRACE_ERROR => "AUXTRACE_ERROR",
        THREAD_MAP => "THREAD_MAP",
        CPU_MAP => "CPU_MAP",
        STAT_CONFIG => "STAT_CONFIG",
        STAT => "STAT",
        STAT_ROUND => "STAT_ROUND",
        EVENT_UPDATE => "EVENT_UPDATE",
        TIME_CONV => "TIME_CONV",
        HEADER_FEATURE => "FEATURE",
        COMPRESSED => "COMPRESSED",
        FINISHED_INIT => "FINISHED_INIT",
        COMPRESSED2 => "COMPRESSED2",
        BPF_METADATA => "BPF_METADATA",
        _ => "UNKNOWN",
    }
}

/// Displays a record type like perf does: `MMAP2 (10)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordKind(pub u32);

impl std::fmt::Display for RecordKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", record_type_name(self.0), self.0)
    }
}

/// Feature bit numbers (`HEADER_*` in `tools/perf/util/header.h`).
pub mod feature {
    #![allow(missing_docs)]
    pub const TRACING_DATA: u32 = 1;
    pub const BUILD_ID: u32 = 2;
    pub const HOSTNAME: u32 = 3;
    pub const OSRELEASE: u32 = 4;
    pub const VERSION: u32 = 5;
    pub const ARCH: u32 = 6;
    pub const NRCPUS: u32 = 7;
    pub const CPUDESC: u32 = 8;
    pub const CPUID: u32 = 9;
    pub const TOTAL_MEM: u32 = 10;
    pub const CMDLINE: u32 = 11;
    pub const EVENT_DESC: u32 = 12;
    pub const CPU_TOPOLOGY: u32 = 13;
    pub const NUMA_TOPOLOGY: u32 = 14;
    pub const BRANCH_STACK: u32 = 15;
    pub const PMU_MAPPINGS: u32 = 16;
    pub const GROUP_DESC: u32 = 17;
    pub const AUXTRACE: u32 = 18;
    pub const STAT: u32 = 19;
    pub const CACHE: u32 = 20;
    pub const SAMPLE_TIME: u32 = 21;
    pub const MEM_TOPOLOGY: u32 = 22;
    pub const CLOCKID: u32 = 23;
    pub const DIR_FORMAT: u32 = 24;
    pub const BPF_PROG_INFO: u32 = 25;
    pub const BPF_BTF: u32 = 26;
    pub const COMPRESSED: u32 = 27;
    pub const CPU_PMU_CAPS: u32 = 28;
    pub const CLOCK_DATA: u32 = 29;
    pub const HYBRID_TOPOLOGY: u32 = 30;
    pub const PMU_CAPS: u32 = 31;
    pub const CPU_DOMAIN_INFO: u32 = 32;
}

/// The name perf uses for a feature bit, e.g. `"hostname"`; `"unknown"` for others.
pub fn feature_name(bit: u32) -> &'static str {
    const NAMES: [&str; 33] = [
        "reserved",
        "tracing_data",
        "build_id",
        "hostname",
        "osrelease",
        "version",
        "arch",
        "nrcpus",
        "cpudesc",
        "cpuid",
        "total_mem",
        "cmdline",
        "event_desc",
        "cpu_topology",
        "numa_topology",
        "branch_stack",
        "pmu_mappings",
        "group_desc",
        "auxtrace",
        "stat",
        "cache",
        "sample_time",
        "mem_topology",
        "clockid",
        "dir_format",
        "bpf_prog_info",
        "bpf_btf",
        "compressed",
        "cpu_pmu_caps",
        "clock_data",
        "hybrid_topology",
        "pmu_caps",
        "cpu_domain_info",
    ];
    usize::try_from(bit)
        .ok()
        .and_then(|i| NAMES.get(i).copied())
        .unwrap_or("unknown")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_like_perf() {
        assert_eq!(RecordKind(10).to_string(), "MMAP2 (10)");
        assert_eq!(RecordKind(999).to_string(), "UNKNOWN (999)");
        assert_eq!(feature_name(3), "hostname");
        assert_eq!(feature_name(12), "event_desc");
        assert_eq!(feature_name(4000), "unknown");
    }

    #[test]
    fn user_entries_are_those_after_the_user_marker() {
        let kernel_ip = 0xffff_ffff_8100_0000;
        let chain = [context::KERNEL, kernel_ip, context::USER, 0x10, 0x20];
        assert_eq!(context::user_entries(&chain), [0x10, 0x20]);
        // Up to the next marker; after the last user marker.
        let guest = [
            context::USER,
            0x1,
            context::USER,
            0x10,
            context::GUEST,
            0x30,
        ];
        assert_eq!(context::user_entries(&guest), [0x10]);
        // No user part.
        assert!(context::user_entries(&chain[..2]).is_empty());
        assert!(context::user_entries(&[context::USER]).is_empty());
    }
}
