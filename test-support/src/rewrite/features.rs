//! Little-endian → big-endian conversion of feature sections, as perf's `process_*` functions in
//! `tools/perf/util/header.c` read them (a string is `u32 len` + `len` bytes).

use super::fields::{Result, RewriteError, to_usize};
use super::records::{Swapper, swap_attr};
use kprof_perfdata::kinds::feature as f;

/// Feature sections [`to_big_endian`] removes from the feature bitmap instead of converting:
/// TRACING_DATA (tracefs format files plus binary data this tool does not parse), COMPRESSED (the
/// copy's records are written uncompressed) and CPU_DOMAIN_INFO (newer than this tool). Also
/// dropped: unknown bits, CPU_TOPOLOGY without an NRCPUS feature (which sizes its per-cpu arrays)
/// and a non-empty BPF_PROG_INFO (a `struct bpf_prog_info` per program).
pub const DROPPED_FEATURES: [u32; 3] = [f::TRACING_DATA, f::COMPRESSED, f::CPU_DOMAIN_INFO];

/// A cursor over a little-endian payload that swaps the fields it passes.
struct Walk<'b> {
    s: Swapper<'b>,
    buf_len: usize,
    pos: usize,
    base: u64,
}

impl Walk<'_> {
    fn num(&mut self, width: usize) -> Result<u64> {
        let v = self.s.peek_le(self.pos, width, "feature field")?;
        self.s.field(self.pos, width)?;
        self.pos += width;
        Ok(v)
    }
    fn u32(&mut self) -> Result<usize> {
        let v = self.num(4)?;
        to_usize(v, "u32", self.pos)
    }
    fn u64(&mut self) -> Result<u64> {
        self.num(8)
    }
    /// `u32 len` + `len` bytes (perf's `do_write_string`).
    fn string(&mut self) -> Result<()> {
        let len = self.u32()?;
        self.skip(len)
    }
    fn skip(&mut self, len: usize) -> Result<()> {
        let end = self.pos.checked_add(len).filter(|&e| e <= self.buf_len);
        self.pos = end.ok_or(RewriteError::Truncated {
            what: "feature section",
            offset: self.base + self.pos as u64,
        })?;
        Ok(())
    }
    fn strings(&mut self, n: usize) -> Result<()> {
        (0..n).try_for_each(|_| self.string())
    }
}

/// The big-endian form of feature `bit`'s `payload`, or `None` when the feature is dropped.
/// `nr_cpus_avail` (from NRCPUS) sizes CPU_TOPOLOGY's per-cpu arrays.
pub(super) fn swap_feature(
    bit: u32,
    payload: &[u8],
    base: u64,
    nr_cpus_avail: Option<usize>,
) -> Result<Option<Vec<u8>>> {
    if DROPPED_FEATURES.contains(&bit) || kprof_perfdata::kinds::feature_name(bit) == "unknown" {
        return Ok(None);
    }
    let mut out = payload.to_vec();
    let buf_len = out.len();
    let mut w = Walk {
        s: Swapper::new(&mut out, base),
        buf_len,
        pos: 0,
        base,
    };
    match bit {
        f::HOSTNAME | f::OSRELEASE | f::VERSION | f::ARCH | f::CPUDESC | f::CPUID => w.string()?,
        f::NRCPUS => {
            w.u32()?;
            w.u32()?;
        }
        f::TOTAL_MEM | f::CLOCKID | f::DIR_FORMAT => {
            w.u64()?;
        }
        f::SAMPLE_TIME => {
            w.u64()?;
            w.u64()?;
        }
        f::CMDLINE => {
            let nr = w.u32()?;
            w.strings(nr)?;
        }
        f::EVENT_DESC => {
            let nr = w.u32()?;
            let attr_size = w.u32()?;
            for _ in 0..nr {
                swap_attr(&mut w.s, w.pos, attr_size)?;
                w.skip(attr_size)?;
                let nr_ids = w.u32()?;
                w.string()?;
                for _ in 0..nr_ids {
                    w.u64()?;
                }
            }
        }
        f::BUILD_ID => {
            // build_id_event: header (u32 type, u16 misc, u16 size), s32 pid, u8 build_id[24],
            // filename padded; as perf_header__read_build_ids reads them.
            while w.pos + 8 <= buf_len {
                let start = w.pos;
                let size = w.s.peek_le(start + 6, 2, "build_id size")? as usize;
                if size < 8 + 4 + 24 {
                    return Err(RewriteError::Truncated {
                        what: "build_id entry",
                        offset: base + start as u64,
                    });
                }
                w.num(4)?;
                w.num(2)?;
                w.num(2)?;
                w.num(4)?;
                w.skip(size - 12)?;
            }
        }
        f::NUMA_TOPOLOGY => {
            let nr = w.u32()?;
            for _ in 0..nr {
                w.u32()?; // node
                w.u64()?; // mem_total
                w.u64()?; // mem_free
                w.string()?; // cpus
            }
        }
        f::PMU_MAPPINGS => {
            let nr = w.u32()?;
            for _ in 0..nr {
                w.u32()?; // type
                w.string()?; // name
            }
        }
        f::GROUP_DESC => {
            let nr = w.u32()?;
            for _ in 0..nr {
                w.string()?;
                w.u32()?; // leader_idx
                w.u32()?; // nr_members
            }
        }
        f::CACHE => {
            w.u32()?; // version
            let cnt = w.u32()?;
            for _ in 0..cnt {
                for _ in 0..4 {
                    w.u32()?; // level, line_size, sets, ways
                }
                w.strings(3)?; // type, size, map
            }
        }
        f::MEM_TOPOLOGY => {
            // version, block_size, count, then per node: node, size, bitmap (u64 nbits, words):
            // all u64.
            while w.pos + 8 <= buf_len {
                w.u64()?;
            }
        }
        f::CLOCK_DATA => {
            w.u32()?; // version
            w.u32()?; // clockid
            w.u64()?; // tod_ns
            w.u64()?; // clockid_ns
        }
        f::CPU_TOPOLOGY => {
            let Some(cpus) = nr_cpus_avail else {
                return Ok(None);
            };
            // package (socket) cpu lists, core (thread) cpu lists, then optional parts: per cpu
            // (core_id, socket_id), then die cpu lists and per cpu die_id.
            let nr = w.u32()?;
            w.strings(nr)?;
            let nr = w.u32()?;
            w.strings(nr)?;
            if w.pos < buf_len {
                for _ in 0..cpus.saturating_mul(2) {
                    w.u32()?;
                }
            }
            if w.pos < buf_len {
                let nr = w.u32()?;
                w.strings(nr)?;
                for _ in 0..cpus {
                    w.u32()?;
                }
            }
        }
        f::HYBRID_TOPOLOGY => {
            let nr = w.u32()?;
            w.strings(nr.saturating_mul(2))?; // pmu_name, cpus
        }
        f::CPU_PMU_CAPS => {
            let nr_caps = w.u32()?;
            w.strings(nr_caps.saturating_mul(2))?; // name, value
        }
        f::PMU_CAPS => {
            let nr_pmu = w.u32()?;
            for _ in 0..nr_pmu {
                let nr_caps = w.u32()?;
                w.strings(nr_caps.saturating_mul(2))?;
                w.string()?; // pmu name
            }
        }
        f::AUXTRACE => {
            // auxtrace_index__write: u64 nr, then (file_offset, size) u64 pairs: all u64.
            while w.pos + 8 <= buf_len {
                w.u64()?;
            }
        }
        f::BPF_BTF => {
            let cnt = w.u32()?;
            for _ in 0..cnt {
                w.u32()?; // id
                let size = w.u32()?;
                w.skip(size)?; // the BTF blob: bytes
            }
        }
        f::BPF_PROG_INFO => {
            // struct perf_bpil entries hold a bpf_prog_info with many fields: only an empty
            // table is converted.
            if w.u32()? != 0 {
                return Ok(None);
            }
        }
        f::BRANCH_STACK | f::STAT => {}
        _ => return Ok(None),
    }
    Ok(Some(out))
}
