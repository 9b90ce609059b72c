#![allow(clippy::unwrap_used, missing_docs)]
//! scratch
use kprof_profiler::*;
#[test]
fn scratch() {
    let mut o = RecordOptions::default();
    o.frequency = Some(999);
    o.call_graph = std::env::var("CG")
        .ok()
        .map(|c| CallGraph::parse(&c).unwrap());
    o.target = Target::Command(vec![
        "sh".into(),
        "-c".into(),
        "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done".into(),
    ]);
    o.output = "/tmp/kp.data".into();
    let s = record(&o, &mut |n| eprintln!("NOTE {n}")).unwrap();
    eprintln!("{s:?}");
}
