//! Issue #15, the rest: USDT operands that are globals read from the live process, `--filter`
//! applied in user space to probe arguments, and probes that follow a command's threads and
//! forked children. Truth comes from the workloads themselves (values and counts known by
//! construction) and from bpftrace on the same programs.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::*;
use crate::probes::{KillOnDrop, line_reader, send_signal, wait_for_line};

// See: issue #15 (USDT `sym(%rip)` operands give the global's value, not its address).
// bpftrace 0.17 is no oracle here: it reads the bytes at the wrong address for these operands
// (code bytes, `cc c3 ...`); the program's own globals are the truth.
#[test]
fn usdt_global_operands_read_the_live_process() {
    if !kprof_can_record() {
        return;
    }
    let prog = c_workload("probe_usdt_global", &["-O2", "-g"]);
    let spec = format!("usdt:{}:demo:global", prog.display());
    // The premise: the compiler passed both globals as `sym(%rip)` memory operands.
    let listed = kprof_ok(&["list", &format!("usdt:{}", prog.display())]);
    assert!(
        listed.contains("-8@answer(%rip)") && listed.contains("-4@half(%rip)"),
        "{listed}"
    );
    let _machine = shared();
    let value: i64 = 1_234_567_890_123;
    let mut target = KillOnDrop(
        Command::new(&prog)
            .arg(value.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let target_lines = line_reader(&mut target.0);
    wait_for_line(&target_lines, "ready");
    let mut tracer = KillOnDrop(
        kprof()
            .args(["trace", "--json", "-e", &spec, "-p"])
            .arg(target.0.id().to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let events = line_reader(&mut tracer.0);
    // One event decoded while the target runs, then the rest at the end of the trace; the
    // target lives until the tracer is done.
    let first = events
        .recv_timeout(Duration::from_secs(60))
        .expect("an event");
    assert_eq!(send_signal(tracer.0.id(), libc::SIGINT), 0);
    let mut lines = vec![first];
    lines.extend(events.iter());
    let status = tracer.0.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut tracer.0.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("read from the process's memory when kprof decodes the event"),
        "the note says when globals are read: {stderr}"
    );
    drop(target.0.stdin.take());
    for line in &lines {
        let event: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(event["fields"]["arg0"], value, "{line}");
        assert_eq!(event["fields"]["arg1"], (-(value / 2)) as i32, "{line}");
    }
}
