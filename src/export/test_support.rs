//! Hand-built profiles and oracle helpers shared by the exporters' tests.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::Arc;

use crate::profile::{
    Event, Frame, FrameKind, Meta, Profile, Sample, StackId, StackNode, Thread, ThreadId,
};

/// A frame with the given name, module, kind and source position.
fn frame(
    function: &str,
    module: &str,
    kind: FrameKind,
    inlined: bool,
    line: Option<(&str, u32)>,
    module_offset: u64,
) -> Frame {
    Frame {
        function: Arc::from(function),
        module: Arc::from(module),
        file: line.map(|(file, _)| Arc::from(file)),
        line: line.map(|(_, line)| line),
        kind,
        inlined,
        module_offset,
    }
}

/// Interns the stack `root_first` (frame ids from the root to the leaf) and returns its leaf.
pub fn intern_stack(profile: &mut Profile, root_first: &[u32]) -> Option<StackId> {
    let mut parent = None;
    for &frame in root_first {
        let node = StackNode { parent, frame };
        let id = match profile.stacks.iter().position(|n| *n == node) {
            Some(id) => id,
            None => {
                profile.stacks.push(node);
                profile.stacks.len() - 1
            }
        };
        parent = Some(id as StackId);
    }
    parent
}

/// Appends a sample and keeps the event totals in step.
fn push_sample(
    profile: &mut Profile,
    thread: ThreadId,
    event: u16,
    time: u64,
    period: u64,
    stack: Option<StackId>,
) {
    profile.samples.push(Sample {
        thread,
        event,
        time,
        period,
        stack,
        cpu: Some(thread % 2),
        broken_callchain: false,
        cgroup: None,
    });
    let event = &mut profile.events[usize::from(event)];
    event.sample_count += 1;
    event.total_period += period;
}

/// Frame ids of [`sample_profile`], named for readability in tests.
pub mod frames {
    /// `main` in `/usr/bin/app`.
    pub const MAIN: u32 = 0;
    /// `compute` in `/usr/bin/app`.
    pub const COMPUTE: u32 = 1;
    /// `helper`, inlined into `compute`.
    pub const HELPER_INLINED: u32 = 2;
    /// `memcpy` in libc.
    pub const MEMCPY: u32 = 3;
    /// `write` in libc.
    pub const WRITE: u32 = 4;
    /// `entry_SYSCALL_64` in the kernel.
    pub const ENTRY_SYSCALL: u32 = 5;
    /// `ksys_write` in the kernel.
    pub const KSYS_WRITE: u32 = 6;
    /// `worker_loop` in `/usr/bin/app`.
    pub const WORKER_LOOP: u32 = 7;
    /// `jitted_fn` in a perf map.
    pub const JITTED: u32 = 8;
    /// An address no mapping covers.
    pub const UNKNOWN: u32 = 9;
    /// `helper_leaf`, inlined into `helper` (two levels of inlining).
    pub const HELPER_LEAF_INLINED: u32 = 10;
}

/// A profile with three threads in two processes, two events (`cpu-clock` and `page-faults`),
/// an inlined chain, kernel, JIT and unknown frames and one empty stack.
pub fn sample_profile() -> Profile {
    use FrameKind::{Jit, Kernel, Unknown, User};
    use frames::*;
    let app = "/usr/bin/app";
    let libc = "/usr/lib/x86_64-linux-gnu/libc.so.6";
    let kernel = "[kernel.kallsyms]";
    let mut profile = Profile {
        frames: vec![
            frame("main", app, User, false, Some(("src/main.c", 10)), 0x1100),
            frame(
                "compute",
                app,
                User,
                false,
                Some(("src/main.c", 20)),
                0x1200,
            ),
            frame("helper", app, User, true, Some(("src/util.h", 5)), 0x1200),
            frame("memcpy", libc, User, false, None, 0x9_8000),
            frame("write", libc, User, false, None, 0x9_9000),
            frame(
                "entry_SYSCALL_64",
                kernel,
                Kernel,
                false,
                None,
                0xffff_ffff_8100_0000,
            ),
            frame(
                "ksys_write",
                kernel,
                Kernel,
                false,
                None,
                0xffff_ffff_8120_0000,
            ),
            frame(
                "worker_loop",
                app,
                User,
                false,
                Some(("src/worker.c", 7)),
                0x1300,
            ),
            frame(
                "jitted_fn",
                "/tmp/perf-100.map",
                Jit,
                false,
                None,
                0x7f00_0000_1000,
            ),
            frame("[unknown]+0x42", "[unknown]", Unknown, false, None, 0x42),
            frame(
                "helper_leaf",
                app,
                User,
                true,
                Some(("src/util.h", 9)),
                0x1200,
            ),
        ],
        threads: vec![
            thread(100, 100, "app", "app"),
            thread(100, 101, "worker", "app"),
            thread(200, 200, "other", "other"),
        ],
        events: vec![event("cpu-clock"), event("page-faults")],
        meta: Meta {
            perf_version: Some("6.1".into()),
            hostname: Some("testhost".into()),
            os_release: Some("6.1.0".into()),
            arch: Some("x86_64".into()),
            cmdline: Some("perf record -g ./app".into()),
            lost_samples: 0,
        },
        ..Profile::default()
    };
    let inlined = intern_stack(&mut profile, &[MAIN, COMPUTE, HELPER_INLINED]);
    let deep_inlined = intern_stack(
        &mut profile,
        &[MAIN, COMPUTE, HELPER_INLINED, HELPER_LEAF_INLINED],
    );
    let memcpy = intern_stack(&mut profile, &[MAIN, COMPUTE, HELPER_INLINED, MEMCPY]);
    let syscall = intern_stack(&mut profile, &[MAIN, WRITE, ENTRY_SYSCALL, KSYS_WRITE]);
    let compute = intern_stack(&mut profile, &[MAIN, COMPUTE]);
    let jitted = intern_stack(&mut profile, &[WORKER_LOOP, JITTED]);
    let unknown = intern_stack(&mut profile, &[WORKER_LOOP, UNKNOWN]);
    let worker = intern_stack(&mut profile, &[WORKER_LOOP]);

    // (thread, event, period, stack); periods differ so that no two functions tie.
    let plan: &[(ThreadId, u16, u64, Option<StackId>)] = &[
        (0, 0, 250_000, inlined),
        (0, 0, 250_000, inlined),
        (0, 0, 260_000, deep_inlined),
        (0, 0, 250_000, memcpy),
        (0, 0, 240_000, memcpy),
        (0, 0, 250_000, memcpy),
        (0, 0, 250_000, syscall),
        (0, 0, 250_000, compute),
        (0, 1, 1, memcpy),
        (0, 1, 3, syscall),
        (1, 0, 250_000, jitted),
        (1, 0, 250_000, jitted),
        (1, 0, 255_000, unknown),
        (1, 0, 250_000, worker),
        (1, 1, 2, worker),
        (2, 0, 250_000, None),
        (2, 0, 245_000, syscall),
        (1, 0, 250_000, jitted),
        (0, 0, 230_000, inlined),
    ];
    for (i, &(thread, event, period, stack)) in plan.iter().enumerate() {
        let time = 1_000_000_000 + 250_000 * i as u64;
        push_sample(&mut profile, thread, event, time, period, stack);
    }
    profile
}

fn thread(pid: u32, tid: u32, name: &str, process_name: &str) -> Thread {
    Thread {
        pid,
        tid,
        name: name.into(),
        process_name: process_name.into(),
    }
}

fn event(name: &str) -> Event {
    Event {
        name: name.into(),
        sample_count: 0,
        total_period: 0,
    }
}

/// Per leaf function (innermost frame, inlined or not), the summed period of `event`'s
/// samples, plus the total over all of the event's samples (empty stacks included).
/// This is the oracle for "flat" shares, computed straight from the model.
pub fn flat_periods(profile: &Profile, event: u16) -> (BTreeMap<String, u64>, u64) {
    let mut flat = BTreeMap::new();
    let mut total = 0;
    for sample in profile.samples.iter().filter(|s| s.event == event) {
        total += sample.period;
        if let Some(leaf) = profile.frames_leaf_first(sample.stack).next() {
            let name = profile.frames[leaf as usize].function.to_string();
            *flat.entry(name).or_insert(0) += sample.period;
        }
    }
    (flat, total)
}

/// `profile` as an exporter's `write` writes it, parsed back as JSON.
pub fn written_json(
    write: fn(&Profile, &mut dyn Write) -> io::Result<()>,
    profile: &Profile,
) -> serde_json::Value {
    let mut out = Vec::new();
    write(profile, &mut out).unwrap();
    serde_json::from_slice(&out).unwrap()
}

/// Whether a test that needs an external tool must fail instead of skipping.
pub fn tools_required() -> bool {
    ["KPROF_REQUIRE_TOOLS", "KPROF_REQUIRE_PERF"]
        .iter()
        .any(|var| std::env::var(var).is_ok_and(|v| v == "1"))
}

/// Reports that a test is skipped because `what` is missing; panics instead when tools are
/// required.
pub fn skip_for_missing(what: &str) {
    assert!(
        !tools_required(),
        "{what} is missing but KPROF_REQUIRE_TOOLS/KPROF_REQUIRE_PERF is set"
    );
    eprintln!("skipping: {what} is not available");
}

/// A path in the temporary directory unique to this test process and `name`.
pub fn temp_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("kprof-export-{}-{name}", std::process::id()))
}

/// A profile whose ids point nowhere: a sample of a missing thread and event, a stack past
/// the end of the stack table, a stack node naming a missing frame and one that is its own
/// parent.
pub fn dangling_profile() -> Profile {
    let mut profile = sample_profile();
    profile.stacks.push(StackNode {
        parent: Some(0),
        frame: 500,
    });
    let dangling_node = (profile.stacks.len() - 1) as StackId;
    let cyclic_node = profile.stacks.len() as StackId;
    profile.stacks.push(StackNode {
        parent: Some(cyclic_node),
        frame: 0,
    });
    for (thread, event, stack) in [
        (99, 0, Some(0)),
        (0, 7, Some(0)),
        (0, 0, Some(10_000)),
        (1, 0, Some(dangling_node)),
        (1, 1, Some(cyclic_node)),
    ] {
        profile.samples.push(Sample {
            thread,
            event,
            time: 0,
            period: u64::MAX,
            stack,
            cpu: None,
            broken_callchain: false,
            cgroup: None,
        });
    }
    profile
}
