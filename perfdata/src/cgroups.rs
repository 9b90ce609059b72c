//! The cgroup names of a recording: PERF_RECORD_CGROUP records collected into an id → path
//! table, so that a sample's PERF_SAMPLE_CGROUP id can be shown as the path a user knows.
//!
//! Cgroup ids are kernfs node ids, never reused while the system runs, so one table holds for the
//! whole recording whatever the time of each record. A sample whose id no record names has no
//! path: callers show [`UNKNOWN_CGROUP`], never a guess.

use std::collections::HashMap;

use crate::error::Result;
use crate::file::PerfFile;
use crate::record::Record;

/// What a sample whose cgroup has no name (or that carries no cgroup) is shown as.
pub const UNKNOWN_CGROUP: &str = "[unknown cgroup]";

/// Cgroup id → path, from PERF_RECORD_CGROUP records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupNames {
    paths: HashMap<u64, String>,
}

impl CgroupNames {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// The table of every PERF_RECORD_CGROUP in `file` (read in file order; the order does not
    /// matter, see the module doc).
    pub fn from_file(file: &PerfFile<'_>) -> Result<Self> {
        let mut names = Self::new();
        for event in file.records() {
            names.observe(&event?.record);
        }
        Ok(names)
    }

    /// Takes the name a record gives, if it is a PERF_RECORD_CGROUP; true when it was one.
    pub fn observe(&mut self, record: &Record<'_>) -> bool {
        match record {
            Record::Cgroup(cgroup) => {
                self.insert(cgroup.id, cgroup.path);
                true
            }
            _ => false,
        }
    }

    /// Names cgroup `id` (a later name for the same id replaces the earlier one: the kernel's
    /// record of a cgroup created while recording comes after a synthesized one).
    pub fn insert(&mut self, id: u64, path: &[u8]) {
        self.paths
            .insert(id, String::from_utf8_lossy(path).into_owned());
    }

    /// The path of cgroup `id`, if a record named it.
    pub fn path(&self, id: u64) -> Option<&str> {
        self.paths.get(&id).map(String::as_str)
    }

    /// What to show for a sample's cgroup: its path, or [`UNKNOWN_CGROUP`] when the sample has
    /// no cgroup or no record names it.
    pub fn label(&self, id: Option<u64>) -> &str {
        id.and_then(|id| self.path(id)).unwrap_or(UNKNOWN_CGROUP)
    }

    /// Number of named cgroups.
    pub fn len(&self) -> usize {
        self.paths.len()
    }

    /// True when no cgroup is named.
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// Every `(id, path)`, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &str)> {
        let mut all: Vec<(u64, &str)> = self
            .paths
            .iter()
            .map(|(&id, path)| (id, path.as_str()))
            .collect();
        all.sort_unstable();
        all.into_iter()
    }
}
