//! `--latency START..END`: pairs start and end events per thread (or key fields) and aggregates the durations.
