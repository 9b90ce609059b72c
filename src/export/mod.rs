//! Profile exporters: writes a symbolized [`Profile`] as pprof, speedscope or Firefox Profiler data.
//!
//! Every exporter reads only [`crate::profile`], writes to any [`Write`], and keeps the recording's
//! threads, events, stacks (inlined frames included) and sample weights:
//!
//! | format | file | weights | threads | inlined frames |
//! |---|---|---|---|---|
//! | [`ExportFormat::Pprof`] | gzipped `perftools.profiles.Profile` | sample count + summed period per event | `pid`/`tid`/`thread`/`process` labels | extra `line`s of one location |
//! | [`ExportFormat::Speedscope`] | speedscope JSON (`sampled` profiles) | period | a profile per (thread, event) | frames of their own |
//! | [`ExportFormat::Firefox`] | Firefox Profiler processed JSON | period (clock events: in sampling intervals) | a process per pid, a thread per tid (per tid and event with several events) | frames of their own |
//!
//! Clock events (`cpu-clock`, `task-clock`) have periods in nanoseconds; every other event's
//! period is a plain count (see [`is_clock_event`]).

use std::io::{self, Write};

use crate::profile::Profile;

pub use self::shared::{is_clock_event, is_interval_event};

mod firefox;
mod pprof;
mod shared;
mod speedscope;
#[cfg(test)]
mod test_support;

/// An output format [`export`] can write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExportFormat {
    /// pprof: a gzip-compressed `perftools.profiles.Profile` protobuf, for `go tool pprof`.
    Pprof,
    /// speedscope's JSON file format, for <https://www.speedscope.app>.
    Speedscope,
    /// The Firefox Profiler's processed profile JSON, for <https://profiler.firefox.com>.
    Firefox,
}

impl ExportFormat {
    /// Every format.
    pub const ALL: [ExportFormat; 3] = [Self::Pprof, Self::Speedscope, Self::Firefox];
}

/// Writes `profile` to `w` in `format`.
///
/// The writer gets the whole file; wrap it in a [`std::io::BufWriter`] when it is a file.
/// Errors are those of `w` (and, for the JSON formats, of serialization).
pub fn export(profile: &Profile, format: ExportFormat, w: &mut dyn Write) -> io::Result<()> {
    match format {
        ExportFormat::Pprof => pprof::write(profile, w),
        ExportFormat::Speedscope => speedscope::write(profile, w),
        ExportFormat::Firefox => firefox::write(profile, w),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_writes_empty_and_dangling_profiles() {
        let profiles = [Profile::default(), test_support::dangling_profile()];
        for profile in &profiles {
            for format in ExportFormat::ALL {
                let mut out = Vec::new();
                export(profile, format, &mut out).unwrap();
                assert!(!out.is_empty(), "{format:?} wrote nothing");
            }
        }
    }

    #[test]
    fn write_errors_are_returned() {
        struct Failing;
        impl Write for Failing {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::other("disk full"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let profile = test_support::sample_profile();
        for format in ExportFormat::ALL {
            let err = export(&profile, format, &mut Failing).unwrap_err();
            assert!(err.to_string().contains("disk full"), "{format:?}: {err}");
        }
    }
}
