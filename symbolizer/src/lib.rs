//! kprof-symbolizer (being written).
