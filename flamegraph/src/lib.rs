//! kprof-flamegraph (being written).
