//! kprof-perfdata (being written).
