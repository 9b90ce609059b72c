//! The `kprof` command line (being written).
fn main() {}
