//! Off-CPU and wall-clock profiles without BPF: where threads wait, why, and who wakes them.
//!
//! `kprof record --off-cpu` records, besides the sampled event, every `sched:sched_switch`
//! (the stack of the thread leaving the CPU and its state), every `sched:sched_waking` (the
//! waker's stack) and context-switch records (when each thread comes back on a CPU). From
//! them:
//! - [`sched`] builds each thread's blocked intervals (switch-out → switch-in), with their
//!   state (S, D, R) and the last wake-up before the switch-in; lost records make intervals
//!   unknown, counted, never guessed;
//! - [`model`] turns a symbolized profile and its intervals into a derived profile weighted in
//!   nanoseconds: off-CPU, off-wake (waker stacks on top) or wall-clock (on-CPU + off-CPU);
//! - [`crate::cmd::offcpu`] runs the commands on it: flame graphs, the blocked-time and run-queue reports,
//!   and the profiles `diff` and `export` take.
//!
//! The analysis engine is untouched: the timeline is a second look at the same file
//! ([`crate::cmd::load_path_with`]), joined to the profile's samples by time and thread.

pub mod model;
pub mod sched;
