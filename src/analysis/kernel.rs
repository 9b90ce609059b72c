//! Which symbolizer serves a recording: this machine's kernel symbols and vdso only when the
//! recording's kernel is the running one, the user's `--kallsyms` and `--symfs` always.

use kprof_perfdata::PerfFile;
use kprof_symbolizer::SymbolizerOptions;

use super::options::AnalysisOptions;

/// The symbolizer options for `file` analyzed with `options`.
pub fn symbolizer_options(file: &PerfFile<'_>, options: &AnalysisOptions) -> SymbolizerOptions {
    let features = file.features();
    let recorded_kernel_id = features
        .build_ids
        .iter()
        .find(|b| b.filename.starts_with("[kernel.kallsyms]"))
        .map(|b| b.build_id.clone());
    let mut sym_options = SymbolizerOptions::default();
    sym_options.lines = options.lines;
    sym_options.inline = options.inline;
    sym_options.demangle = options.demangle;
    sym_options.kernel_matches = same_kernel(
        RecordedKernel {
            build_id: recorded_kernel_id.as_deref(),
            release: features.osrelease.as_deref(),
        },
        RecordedKernel {
            build_id: kprof_profiler::buildid::kernel_build_id().as_deref(),
            release: running_kernel_release().as_deref(),
        },
    );
    sym_options.recorded_osrelease = features.osrelease.clone();
    sym_options.kernel_build_id = recorded_kernel_id;
    // An explicit kallsyms names kernel frames, whatever kernel made the recording; the
    // vdso is still this machine's only when the kernel is.
    sym_options.kallsyms = options.kallsyms.clone();
    sym_options.symfs = options.symfs.clone();
    sym_options.section_cache = crate::section_cache_dir::section_cache_dir();
    sym_options
}

/// What identifies a kernel: its build-id and its release (`uname -r`), when known.
#[derive(Clone, Copy, Debug)]
struct RecordedKernel<'a> {
    build_id: Option<&'a [u8]>,
    release: Option<&'a str>,
}

/// Whether the recording's kernel is the running one, so that this machine's kernel symbols
/// and vdso describe it: by build-id when both are known, else by release. A recording that
/// names neither is not known to be this kernel's.
fn same_kernel(recorded: RecordedKernel<'_>, running: RecordedKernel<'_>) -> bool {
    if let (Some(recorded), Some(running)) = (recorded.build_id, running.build_id) {
        return kprof_symbolizer::build_ids_match(recorded, running);
    }
    match (recorded.release, running.release) {
        (Some(recorded), Some(running)) => recorded.trim() == running.trim(),
        _ => false,
    }
}

/// The running kernel's release, to decide whether /proc/kallsyms describes the recording.
fn running_kernel_release() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .map(|s| s.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kernel<'a>(build_id: Option<&'a [u8]>, release: Option<&'a str>) -> RecordedKernel<'a> {
        RecordedKernel { build_id, release }
    }

    #[test]
    fn the_recording_kernel_is_this_one_by_build_id_else_by_release() {
        // See: issue #10 point 3
        let here = kernel(Some(&[1, 2, 3]), Some("6.1.0"));
        // perf pads 20-byte build-ids; a padded copy of this kernel's is this kernel.
        assert!(same_kernel(
            kernel(Some(&[1, 2, 3, 0, 0]), Some("6.1.0")),
            here
        ));
        // Another build of the same release is another kernel.
        assert!(!same_kernel(kernel(Some(&[9, 9, 9]), Some("6.1.0")), here));
        // Without a recorded build-id, the release decides.
        assert!(same_kernel(kernel(None, Some("6.1.0\n")), here));
        assert!(!same_kernel(kernel(None, Some("5.15.0")), here));
        // When this machine's build-id cannot be read, the release decides.
        assert!(same_kernel(
            kernel(Some(&[9]), Some("6.1.0")),
            kernel(None, Some("6.1.0"))
        ));
        // A recording that says nothing about its kernel is not this kernel's.
        assert!(!same_kernel(kernel(None, None), here));
    }
}
