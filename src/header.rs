//! The recording's facts for `kprof report --header` (text) and `--format json`: who recorded it,
//! where, what, and how complete it is.

use std::fmt::Write as _;

use kprof_perfdata::{Endian, PerfFile, RecordKind, feature_name};
use rayon::prelude::*;
use serde::Serialize;

use crate::analysis::Analysis;

/// One sampled event in the header.
#[derive(Clone, Debug, Serialize)]
pub struct HeaderEvent {
    /// Event name.
    pub name: String,
    /// Samples of it.
    pub samples: u64,
    /// Sum of their periods (`perf report`'s event count): the recorded periods, or the
    /// event's fixed period per sample (`perf record -c N`). `None` when the event was
    /// sampled at a frequency without recording periods: its count is unknown.
    pub period: Option<u64>,
}

/// Facts about a recording, taken while its file was open.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Header {
    /// perf (or kprof) version that wrote it.
    pub perf_version: Option<String>,
    /// Host name.
    pub hostname: Option<String>,
    /// Kernel release.
    pub os_release: Option<String>,
    /// Architecture.
    pub arch: Option<String>,
    /// CPU description.
    pub cpu: Option<String>,
    /// CPU id string.
    pub cpuid: Option<String>,
    /// CPUs online and available.
    pub nr_cpus: Option<(u32, u32)>,
    /// Total memory in kB.
    pub total_mem_kb: Option<u64>,
    /// Recording command line.
    pub cmdline: Option<String>,
    /// `file` or `pipe`.
    pub format: String,
    /// `little-endian` or `big-endian`.
    pub byte_order: String,
    /// Events and their totals.
    pub events: Vec<HeaderEvent>,
    /// Feature sections present.
    pub features: Vec<String>,
    /// All samples (every event).
    pub samples: u64,
    /// First and last sample time, nanoseconds.
    pub time_span_ns: Option<(u64, u64)>,
    /// Samples lost while recording.
    pub lost_samples: u64,
    /// Records per type (name → count).
    pub records: Vec<(String, u64)>,
    /// Reader notes (unknown records, extra attr bytes, ...).
    pub notes: Vec<String>,
}

impl Header {
    /// Collects the facts of `file` and its `analysis`.
    pub fn new(file: &PerfFile<'_>, analysis: &Analysis) -> Header {
        let profile = &analysis.profile;
        let f = file.features();
        // Both ends in one pass over the samples, on every core (a million samples are
        // tens of megabytes).
        let (first, last) = profile
            .samples
            .par_iter()
            .map(|s| s.time)
            .filter(|&t| t != 0)
            .fold(
                || (u64::MAX, 0),
                |(first, last), t| (first.min(t), last.max(t)),
            )
            .reduce(
                || (u64::MAX, 0),
                |(first, last), (f, l)| (first.min(f), last.max(l)),
            );
        let (first, last) = match first <= last {
            true => (Some(first), Some(last)),
            false => (None, None),
        };
        Header {
            perf_version: f.version.clone(),
            hostname: f.hostname.clone(),
            os_release: f.osrelease.clone(),
            arch: f.arch.clone(),
            cpu: f.cpudesc.clone(),
            cpuid: f.cpuid.clone(),
            nr_cpus: f.nrcpus,
            total_mem_kb: f.total_mem,
            cmdline: f.cmdline.as_ref().map(|c| c.join(" ")),
            format: if file.is_pipe() { "pipe" } else { "file" }.to_string(),
            byte_order: match file.endian() {
                Endian::Little => "little-endian",
                Endian::Big => "big-endian",
            }
            .to_string(),
            events: profile
                .events
                .iter()
                .enumerate()
                .map(|(index, e)| HeaderEvent {
                    name: e.name.clone(),
                    samples: e.sample_count,
                    period: match file.attrs().get(index) {
                        Some(attr) if attr.period_unknown() => None,
                        _ => Some(e.total_period),
                    },
                })
                .collect(),
            features: f
                .present
                .iter()
                .map(|&b| feature_name(b).to_string())
                .collect(),
            samples: analysis
                .records
                .get(&kprof_perfdata::kinds::record::SAMPLE)
                .copied()
                .unwrap_or(0),
            time_span_ns: first.zip(last),
            lost_samples: profile.meta.lost_samples,
            records: analysis
                .records
                .iter()
                .map(|(&kind, &count)| (RecordKind(kind).to_string(), count))
                .collect(),
            notes: file.notes().iter().map(|n| n.to_string()).collect(),
        }
    }

    /// The `# key : value` text block perf prints with `--header`.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let mut line = |key: &str, value: &str| {
            let _ = writeln!(out, "# {key:<13}: {value}");
        };
        let unknown = || "(not recorded)".to_string();
        line(
            "perf version",
            &self.perf_version.clone().unwrap_or_else(unknown),
        );
        line("hostname", &self.hostname.clone().unwrap_or_else(unknown));
        line(
            "os release",
            &self.os_release.clone().unwrap_or_else(unknown),
        );
        line("arch", &self.arch.clone().unwrap_or_else(unknown));
        if let Some(cpu) = &self.cpu {
            line("cpu", cpu);
        }
        if let Some(cpuid) = &self.cpuid {
            line("cpuid", cpuid);
        }
        if let Some((online, avail)) = self.nr_cpus {
            line("nrcpus", &format!("{online} online, {avail} available"));
        }
        if let Some(kb) = self.total_mem_kb {
            line("total memory", &format!("{kb} kB"));
        }
        line("cmdline", &self.cmdline.clone().unwrap_or_else(unknown));
        line("format", &format!("{} ({})", self.format, self.byte_order));
        for e in &self.events {
            let period = match e.period {
                Some(period) => format!("period {period}"),
                None => "period unknown: sampled at a frequency, periods not recorded".to_string(),
            };
            line(
                "event",
                &format!("{} ({} samples, {period})", e.name, e.samples),
            );
        }
        line("samples", &self.samples.to_string());
        if let Some((first, last)) = self.time_span_ns {
            line(
                "time span",
                &format!(
                    "{:.6} .. {:.6} ({:.3} s)",
                    first as f64 / 1e9,
                    last as f64 / 1e9,
                    last.saturating_sub(first) as f64 / 1e9
                ),
            );
        }
        line("lost samples", &self.lost_samples.to_string());
        line("features", &self.features.join(", "));
        let records: Vec<String> = self
            .records
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        line("records", &records.join(", "));
        for note in &self.notes {
            line("note", note);
        }
        out
    }
}
