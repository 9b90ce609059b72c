//! The `kprof` command line: record profiles, read any perf.data, draw flame graphs.
//! Everything lives in the `kprof` library; see its crate docs.

fn main() -> std::process::ExitCode {
    kprof::run_cli()
}
