//! kprof-profiler (being written).
