//! Tests of the whole reader on synthetic files from `kprof-test-support`'s builders.
#![allow(clippy::unwrap_used)]

use kprof_perfdata::kinds::{
    attr_flag, feature, misc, read_format as rf, record as rk, sample as st,
};
use kprof_perfdata::{Endian, Error, Note, ParseOptions, PerfFile, Record, SCAN_REPORT_BYTES};
use kprof_test_support::{AttrSpec, FileBuilder, RecordBuilder, SampleHeadValues, feature_string};

const ALL_BITS: [u64; 25] = [
    st::IP,
    st::TID,
    st::TIME,
    st::ADDR,
    st::READ,
    st::CALLCHAIN,
    st::ID,
    st::CPU,
    st::PERIOD,
    st::STREAM_ID,
    st::RAW,
    st::BRANCH_STACK,
    st::REGS_USER,
    st::STACK_USER,
    st::WEIGHT,
    st::DATA_SRC,
    st::IDENTIFIER,
    st::TRANSACTION,
    st::REGS_INTR,
    st::PHYS_ADDR,
    st::AUX,
    st::CGROUP,
    st::DATA_PAGE_SIZE,
    st::CODE_PAGE_SIZE,
    st::WEIGHT_STRUCT,
];

fn spec_for(sample_type: u64) -> AttrSpec {
    AttrSpec {
        sample_type,
        read_format: rf::TOTAL_TIME_ENABLED | rf::TOTAL_TIME_RUNNING | rf::ID | rf::LOST,
        branch_sample_type: kprof_perfdata::kinds::branch::HW_INDEX,
        sample_regs_user: 0b101,
        sample_regs_intr: 0b1000,
        sample_stack_user: 16,
        flags: attr_flag::SAMPLE_ID_ALL,
        ..AttrSpec::default()
    }
}

/// Writes a SAMPLE body for `t` in kernel field order with recognizable values (the head's are
/// [`SampleHeadValues::RECOGNIZABLE`]).
fn write_sample(b: &mut RecordBuilder, t: u64) {
    let has = |bit| t & bit != 0;
    b.sample_head(t, &SampleHeadValues::RECOGNIZABLE);
    if has(st::READ) {
        b.u64(500).u64(20).u64(19).u64(7).u64(1);
    }
    if has(st::CALLCHAIN) {
        b.u64(3).u64(u64::MAX - 127).u64(0xffff_0001).u64(0x2000);
    }
    if has(st::RAW) {
        b.u32(4).bytes(&[1, 2, 3, 4]);
    }
    if has(st::BRANCH_STACK) {
        b.u64(1).u64(5).u64(0x10).u64(0x20).u64(0);
    }
    if has(st::REGS_USER) {
        b.u64(2).u64(0xaa).u64(0xcc);
    }
    if has(st::STACK_USER) {
        b.u64(16).bytes(&[9; 16]).u64(10);
    }
    if has(st::WEIGHT) || has(st::WEIGHT_STRUCT) {
        b.u64(55);
    }
    if has(st::DATA_SRC) {
        b.u64(66);
    }
    if has(st::TRANSACTION) {
        b.u64(77);
    }
    if has(st::REGS_INTR) {
        b.u64(2).u64(0xdd);
    }
    if has(st::PHYS_ADDR) {
        b.u64(0xbeef);
    }
    if has(st::CGROUP) {
        b.u64(4242);
    }
    if has(st::DATA_PAGE_SIZE) {
        b.u64(4096);
    }
    if has(st::CODE_PAGE_SIZE) {
        b.u64(8192);
    }
    if has(st::AUX) {
        b.u64(8).bytes(&[7; 8]);
    }
}

fn check_sample(s: &kprof_perfdata::Sample<'_>, t: u64) {
    let has = |bit| t & bit != 0;
    let want = |bit, v: u64| has(bit).then_some(v);
    assert_eq!(s.ip, want(st::IP, 0x1000), "ip, t={t:#x}");
    assert_eq!(s.pid, has(st::TID).then_some(11));
    assert_eq!(s.tid, has(st::TID).then_some(12));
    assert_eq!(s.time, want(st::TIME, 1000));
    assert_eq!(s.addr, want(st::ADDR, 0xa000));
    assert_eq!(s.id, (has(st::ID) || has(st::IDENTIFIER)).then_some(7));
    assert_eq!(s.stream_id, want(st::STREAM_ID, 8));
    assert_eq!(s.cpu, has(st::CPU).then_some(3));
    assert_eq!(s.period, want(st::PERIOD, 99));
    match s.read {
        Some(r) => {
            assert!(has(st::READ));
            assert_eq!((r.time_enabled, r.time_running), (Some(20), Some(19)));
            let v: Vec<_> = r.values().collect();
            assert_eq!(
                v,
                vec![kprof_perfdata::ReadValue {
                    value: 500,
                    id: Some(7),
                    lost: Some(1)
                }]
            );
        }
        None => assert!(!has(st::READ)),
    }
    assert_eq!(
        s.callchain.map(|c| c.iter().collect::<Vec<_>>()),
        has(st::CALLCHAIN).then(|| vec![u64::MAX - 127, 0xffff_0001, 0x2000])
    );
    assert_eq!(s.raw, has(st::RAW).then_some(&[1u8, 2, 3, 4][..]));
    match s.branch_stack {
        Some(bs) => {
            assert_eq!(bs.hw_idx, Some(5));
            assert_eq!(bs.len(), 1);
            assert_eq!(bs.get(0), Some((0x10, 0x20, 0)));
        }
        None => assert!(!has(st::BRANCH_STACK)),
    }
    match s.regs_user {
        Some(r) => {
            assert_eq!(r.abi, 2);
            assert_eq!(
                (r.get(0), r.get(1), r.get(2)),
                (Some(0xaa), None, Some(0xcc))
            );
        }
        None => assert!(!has(st::REGS_USER)),
    }
    assert_eq!(s.stack_user, has(st::STACK_USER).then_some(&[9u8; 10][..]));
    assert_eq!(
        s.weight,
        (has(st::WEIGHT) || has(st::WEIGHT_STRUCT)).then_some(55)
    );
    assert_eq!(s.data_src, want(st::DATA_SRC, 66));
    assert_eq!(s.transaction, want(st::TRANSACTION, 77));
    assert_eq!(
        s.regs_intr.and_then(|r| r.get(3)),
        want(st::REGS_INTR, 0xdd)
    );
    assert_eq!(s.phys_addr, want(st::PHYS_ADDR, 0xbeef));
    assert_eq!(s.cgroup, want(st::CGROUP, 4242));
    assert_eq!(s.data_page_size, want(st::DATA_PAGE_SIZE, 4096));
    assert_eq!(s.code_page_size, want(st::CODE_PAGE_SIZE, 8192));
    assert_eq!(s.aux, has(st::AUX).then_some(&[7u8; 8][..]));
}

/// A file with one attr of `sample_type` and one sample followed by a COMM.
fn one_sample_file(endian: Endian, t: u64) -> Vec<u8> {
    let mut r = RecordBuilder::new(endian);
    r.record(rk::SAMPLE, misc::CPUMODE_MASK & 2, |b| write_sample(b, t));
    FileBuilder::new(endian)
        .attr(spec_for(t), &[7])
        .records(&r.into_bytes())
        .build_file()
}

/// Parses `bytes`, expects exactly one record, a user-mode sample, and checks it against `t`.
fn check_only_sample(bytes: &[u8], t: u64) {
    let file = PerfFile::parse(bytes).unwrap();
    let events: Vec<_> = file.records().collect::<Result<_, _>>().unwrap();
    assert_eq!(events.len(), 1);
    match events[0].record {
        Record::Sample(s) => {
            check_sample(&s, t);
            assert_eq!(s.cpumode, kprof_perfdata::CpuMode::User);
            assert_eq!(events[0].time, s.time);
            // The pid read where it lies is the decoded one (issue #13: the side-band pass).
            let record = file.sorted_records().unwrap().next_ref().unwrap().unwrap();
            assert_eq!(
                file.sample_pid(&record),
                Some((s.pid, s.cpumode)),
                "t={t:#x}"
            );
        }
        ref other => panic!("not a sample: {other:?}"),
    }
}

// See: issue #13 (the side-band pass reads a sample's pid alone)
#[test]
fn a_sample_pid_is_read_only_where_its_head_is() {
    let t = st::IDENTIFIER | st::IP | st::TID | st::TIME | st::CPU | st::PERIOD;
    let mut r = RecordBuilder::new(Endian::Little);
    // Its leading fields end past its body: no head, no pid.
    r.record(rk::SAMPLE, 2, |b| {
        b.u64(7).u64(0x1000).u32(11).u32(12).u64(1000).u32(3);
    });
    r.record(rk::COMM, 0, |b| {
        b.u32(11).u32(12).bytes(b"app\0\0\0\0\0");
        b.u32(11).u32(12).u64(2000).u32(3).u32(0).u64(7);
    });
    let bytes = FileBuilder::new(Endian::Little)
        .attr(spec_for(t), &[7])
        .records(&r.into_bytes())
        .build_file();
    let file = PerfFile::parse(&bytes).unwrap();
    let mut records = file.sorted_records().unwrap();
    let mut kinds = Vec::new();
    while let Some(record) = records.next_ref() {
        let record = record.unwrap();
        kinds.push(record.kind());
        assert_eq!(file.sample_head(&record), None);
        assert_eq!(file.sample_pid(&record), None, "kind {}", record.kind());
    }
    assert_eq!(kinds, [rk::SAMPLE, rk::COMM]);
}

#[test]
fn each_sample_type_bit_alone() {
    for endian in [Endian::Little, Endian::Big] {
        for bit in ALL_BITS {
            check_only_sample(&one_sample_file(endian, bit), bit);
        }
    }
}

#[test]
fn sample_type_bits_combined() {
    let all = ALL_BITS.iter().fold(0, |a, b| a | b);
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut combos = vec![0, all, all & !st::WEIGHT_STRUCT];
    for _ in 0..300 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        combos.push(seed & all);
    }
    for endian in [Endian::Little, Endian::Big] {
        for &t in &combos {
            check_only_sample(&one_sample_file(endian, t), t);
        }
    }
}

#[test]
fn unknown_sample_type_bit_is_an_error_naming_it() {
    let t = st::IP | (1 << 30);
    let bytes = one_sample_file(Endian::Little, st::IP);
    // Patch sample_type in the attr (file header is 104 bytes, sample_type at +24).
    let mut bytes = bytes;
    bytes[104 + 24..104 + 32].copy_from_slice(&t.to_le_bytes());
    let file = PerfFile::parse(&bytes).unwrap();
    assert!(file.notes().contains(&Note::UnsupportedSampleType {
        attr_index: 0,
        bit: 30
    }));
    let err = file.records().next().unwrap().unwrap_err();
    assert!(
        matches!(err, Error::UnsupportedSampleType { bit: 30, .. }),
        "{err}"
    );
    let record = file.sorted_records().unwrap().next_ref().unwrap().unwrap();
    assert_eq!(file.sample_pid(&record), None);
    assert!(err.to_string().contains("bit 30"));
}

#[test]
fn sample_id_all_trailers_give_time_pid_cpu() {
    let t = st::TID | st::TIME | st::ID | st::CPU | st::IDENTIFIER | st::IP;
    for endian in [Endian::Little, Endian::Big] {
        let mut r = RecordBuilder::new(endian);
        let trailer = |b: &mut RecordBuilder, time: u64| {
            b.u32(100).u32(101).u64(time).u64(9).u32(2).u32(0).u64(9);
        };
        r.record(rk::COMM, misc::COMM_EXEC, |b| {
            b.u32(100).u32(101).cstr(b"worker");
            trailer(b, 50);
        });
        r.record(rk::MMAP2, 2 | misc::MMAP_BUILD_ID, |b| {
            b.u32(100).u32(101).u64(0x40_0000).u64(0x1000).u64(0);
            b.u8(3)
                .bytes(&[0; 3])
                .bytes(&[0xab, 0xcd, 0xef])
                .bytes(&[0; 17]);
            b.u32(5).u32(2).cstr(b"/usr/bin/app");
            trailer(b, 60);
        });
        r.record(rk::MMAP, 1 | misc::MMAP_DATA, |b| {
            b.u32(u32::MAX).u32(0).u64(0xffff_0000).u64(0x100).u64(0x10);
            b.cstr(b"[kernel.kallsyms]");
            trailer(b, 70);
        });
        r.record(rk::FORK, 0, |b| {
            b.u32(100).u32(1).u32(102).u32(101).u64(80);
            trailer(b, 80);
        });
        r.record(rk::LOST, 0, |b| {
            b.u64(9).u64(42);
            trailer(b, 90);
        });
        let bytes = FileBuilder::new(endian)
            .attr(
                AttrSpec {
                    sample_type: t,
                    flags: attr_flag::SAMPLE_ID_ALL,
                    ..AttrSpec::default()
                },
                &[9],
            )
            .records(&r.into_bytes())
            .build_file();
        let file = PerfFile::parse(&bytes).unwrap();
        assert_eq!(file.endian(), endian);
        let events: Vec<_> = file.records().collect::<Result<_, _>>().unwrap();
        let times: Vec<_> = events.iter().map(|e| e.time).collect();
        assert_eq!(times, [Some(50), Some(60), Some(70), Some(80), Some(90)]);
        assert_eq!(events[0].sample_id.cpu, Some(2));
        assert_eq!(events[0].sample_id.pid, Some(100));
        match events[0].record {
            Record::Comm(c) => {
                assert_eq!(c.name, b"worker");
                assert!(c.exec);
            }
            ref other => panic!("{other:?}"),
        }
        match events[1].record {
            Record::Mmap(m) => {
                assert_eq!(m.filename, b"/usr/bin/app");
                assert_eq!(m.build_id, Some(&[0xab, 0xcd, 0xef][..]));
                assert_eq!((m.prot, m.flags), (Some(5), Some(2)));
                assert!(m.is_mmap2 && m.executable);
                assert_eq!(m.cpumode, kprof_perfdata::CpuMode::User);
            }
            ref other => panic!("{other:?}"),
        }
        match events[2].record {
            Record::Mmap(m) => {
                assert_eq!(m.filename, b"[kernel.kallsyms]");
                assert!(!m.executable && !m.is_mmap2);
                assert_eq!((m.start, m.len, m.pgoff), (0xffff_0000, 0x100, 0x10));
                assert_eq!(m.cpumode, kprof_perfdata::CpuMode::Kernel);
            }
            ref other => panic!("{other:?}"),
        }
        assert!(matches!(
            events[3].record,
            Record::Fork(kprof_perfdata::ForkExit {
                pid: 100,
                ppid: 1,
                tid: 102,
                ptid: 101,
                time: 80
            })
        ));
        // The count is the SECOND u64 (see iovisor/bcc#1496, which read the first).
        assert_eq!(
            events[4].record,
            Record::Lost(kprof_perfdata::Lost { id: 9, lost: 42 })
        );
        let stats = file.stats();
        assert_eq!((stats.lost_records, stats.lost_events), (1, 42));
    }
}

#[test]
fn samples_find_their_attr_by_identifier() {
    let t = st::IDENTIFIER | st::IP | st::TIME;
    let mut r = RecordBuilder::new(Endian::Little);
    for (id, time) in [(20u64, 5u64), (10, 6), (21, 7), (99, 8)] {
        r.record(rk::SAMPLE, 2, |b| {
            b.u64(id).u64(0x1).u64(time);
        });
    }
    let spec = AttrSpec {
        sample_type: t,
        ..AttrSpec::default()
    };
    let bytes = FileBuilder::new(Endian::Little)
        .attr(spec.clone(), &[10, 11])
        .attr(AttrSpec { config: 2, ..spec }, &[20, 21])
        .records(&r.into_bytes())
        .build_file();
    let file = PerfFile::parse(&bytes).unwrap();
    assert_eq!(file.attrs()[1].name, "page-faults");
    let idx: Vec<_> = file
        .records()
        .map(|e| match e.unwrap().record {
            Record::Sample(s) => s.attr_index,
            _ => usize::MAX,
        })
        .collect();
    // Unknown id 99 falls back to the first attr.
    assert_eq!(idx, [1, 0, 1, 0]);
}

#[test]
fn samples_find_their_attr_by_id_position() {
    let t = st::IP | st::TID | st::ID;
    let mut r = RecordBuilder::new(Endian::Big);
    r.record(rk::SAMPLE, 2, |b| {
        b.u64(1).u32(1).u32(1).u64(21);
    });
    let spec = AttrSpec {
        sample_type: t,
        ..AttrSpec::default()
    };
    let bytes = FileBuilder::new(Endian::Big)
        .attr(spec.clone(), &[10])
        .attr(spec, &[21])
        .records(&r.into_bytes())
        .build_file();
    let file = PerfFile::parse(&bytes).unwrap();
    match file.records().next().unwrap().unwrap().record {
        Record::Sample(s) => assert_eq!((s.attr_index, s.id), (1, Some(21))),
        other => panic!("{other:?}"),
    }
}

#[test]
fn pipe_format_with_features_tracing_data_and_event_update() {
    let e = Endian::Little;
    let t = st::IP | st::TID;
    let mut r = RecordBuilder::new(e);
    // TRACING_DATA is followed by `size` bytes outside the record.
    r.record(rk::HEADER_TRACING_DATA, 0, |b| {
        b.u32(16).u32(0);
    });
    r.bytes(&[0xee; 16]);
    r.record(rk::EVENT_UPDATE, 0, |b| {
        b.u64(2).u64(5).cstr(b"my-event");
    });
    r.record(rk::SAMPLE, 1, |b| {
        b.u64(0xffff_ffff_8100_0000).u32(0).u32(0);
    });
    r.record(rk::FINISHED_ROUND, 0, |_| {});
    let bytes = FileBuilder::new(e)
        .attr(
            AttrSpec {
                sample_type: t,
                ..AttrSpec::default()
            },
            &[5],
        )
        .feature(feature::HOSTNAME, feature_string(e, "box"))
        .records(&r.into_bytes())
        .build_pipe();
    let file = PerfFile::parse(&bytes).unwrap();
    assert!(file.is_pipe());
    assert_eq!(file.attrs().len(), 1);
    assert_eq!(file.attrs()[0].ids, [5]);
    assert_eq!(file.attrs()[0].name, "my-event");
    assert_eq!(file.features().hostname.as_deref(), Some("box"));
    assert_eq!(file.features().present, [feature::HOSTNAME]);
    let kinds: Vec<u32> = file.records().map(|e| e.unwrap().record.kind()).collect();
    assert_eq!(
        kinds,
        [
            rk::HEADER_ATTR,
            rk::HEADER_FEATURE,
            rk::HEADER_TRACING_DATA,
            rk::EVENT_UPDATE,
            rk::SAMPLE,
            rk::FINISHED_ROUND
        ]
    );
    let stats = file.stats();
    assert_eq!(stats.samples, 1);
    assert!(stats.unknown_kinds.is_empty());
}

#[test]
fn attr_size_smaller_and_larger() {
    for size in [64u32, 72, 80, 96, 104, 112, 120, 128, 136, 144, 200] {
        let t = st::IP | st::TIME;
        let mut r = RecordBuilder::new(Endian::Little);
        r.record(rk::SAMPLE, 2, |b| {
            b.u64(0x77).u64(123);
        });
        let bytes = FileBuilder::new(Endian::Little)
            .attr(
                AttrSpec {
                    sample_type: t,
                    size,
                    ..AttrSpec::default()
                },
                &[1],
            )
            .records(&r.into_bytes())
            .build_file();
        let file = PerfFile::parse(&bytes).unwrap();
        let attr = &file.attrs()[0];
        assert_eq!(attr.size, size);
        let extra = (size as usize).saturating_sub(kprof_perfdata::ATTR_SIZE_KNOWN);
        assert_eq!(attr.extra_bytes, extra);
        assert_eq!(
            file.notes().contains(&Note::AttrExtraBytes {
                attr_index: 0,
                bytes: extra
            }),
            extra > 0
        );
        match file.records().next().unwrap().unwrap().record {
            Record::Sample(s) => assert_eq!((s.ip, s.time), (Some(0x77), Some(123))),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn unknown_record_types_are_skipped_and_counted() {
    let mut r = RecordBuilder::new(Endian::Little);
    r.record(200, 0, |b| {
        b.u64(1).u64(2);
    });
    r.record(200, 0, |_| {});
    r.record(rk::LOST_SAMPLES, 0, |b| {
        b.u64(3);
    });
    let bytes = FileBuilder::new(Endian::Little)
        .attr(AttrSpec::default(), &[])
        .records(&r.into_bytes())
        .build_file();
    let file = PerfFile::parse(&bytes).unwrap();
    assert!(file.notes().contains(&Note::UnknownRecordType {
        kind: 200,
        count: 2
    }));
    let events: Vec<_> = file.records().collect::<Result<_, _>>().unwrap();
    assert!(matches!(events[0].record, Record::Other { kind: 200, body } if body.len() == 16));
    assert_eq!(
        events[2].record,
        Record::LostSamples(kprof_perfdata::LostSamples { lost: 3 })
    );
    let stats = file.stats();
    assert_eq!(stats.unknown_kinds.get(&200), Some(&2));
    assert_eq!(stats.lost_samples, 3);
}

#[test]
fn bad_record_sizes_are_errors_not_loops() {
    for size in [0u16, 4, 7, 200] {
        let mut r = RecordBuilder::new(Endian::Little);
        r.record(rk::FINISHED_ROUND, 0, |_| {});
        r.u32(rk::MMAP2).u16(0).u16(size).u64(0);
        let bytes = FileBuilder::new(Endian::Little)
            .attr(AttrSpec::default(), &[])
            .records(&r.into_bytes())
            .build_file();
        let file = PerfFile::parse(&bytes).unwrap();
        let results: Vec<_> = file.records().collect();
        assert_eq!(results.len(), 2);
        let err = results[1].clone().unwrap_err();
        assert!(
            matches!(err, Error::BadRecordSize { kind: 10, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("MMAP2 (10)"), "{err}");
        assert!(file.sorted_records().is_err());
        assert!(file.stats().error.is_some());
    }
}

#[test]
fn not_finalized_file_is_salvaged() {
    let mut r = RecordBuilder::new(Endian::Little);
    r.record(rk::SAMPLE, 2, |b| {
        b.u64(0x10);
    });
    r.record(rk::SAMPLE, 2, |b| {
        b.u64(0x20);
    });
    let mut records = r.into_bytes();
    records.extend_from_slice(&[9, 0, 0, 0, 2, 0, 16, 0, 1]); // a partial third record
    let bytes = FileBuilder::new(Endian::Little)
        .attr(
            AttrSpec {
                sample_type: st::IP,
                ..AttrSpec::default()
            },
            &[],
        )
        .records(&records)
        .feature(feature::HOSTNAME, feature_string(Endian::Little, "x"))
        .not_finalized()
        .build_file();
    let file = PerfFile::parse(&bytes).unwrap();
    assert!(file.notes().contains(&Note::NotFinalized));
    assert!(
        file.notes()
            .iter()
            .any(|n| matches!(n, Note::TruncatedTail { bytes: 9, .. }))
    );
    assert_eq!(file.features().hostname, None);
    assert_eq!(file.stats().samples, 2);
    assert_eq!(file.stats().error, None);
    assert!(Note::NotFinalized.to_string().contains("not finalized"));
}

#[test]
fn header_errors_say_where() {
    assert!(matches!(
        PerfFile::parse(b"PERF"),
        Err(Error::Truncated { offset: 0, .. })
    ));
    let err = PerfFile::parse(b"NOTPERF!xxxxxxxxxxxxxxxx").unwrap_err();
    assert!(matches!(err, Error::BadMagic(m) if &m == b"NOTPERF!"));
    assert!(err.to_string().contains("0x0"));
    let mut bytes = FileBuilder::new(Endian::Little)
        .attr(AttrSpec::default(), &[1])
        .build_file();
    // data section offset far beyond EOF.
    bytes[0x28..0x30].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let err = PerfFile::parse(&bytes).unwrap_err();
    assert!(
        matches!(
            err,
            Error::SectionOutOfBounds {
                what: "data",
                offset: 0x28,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("at offset 0x28") || err.to_string().contains("offset 0x28"));
    let mut bytes = FileBuilder::new(Endian::Little)
        .attr(AttrSpec::default(), &[1])
        .build_file();
    bytes[8..16].copy_from_slice(&40u64.to_le_bytes());
    assert!(matches!(
        PerfFile::parse(&bytes),
        Err(Error::BadHeaderSize { size: 40 })
    ));
}

#[test]
fn features_in_file_mode() {
    let e = Endian::Big;
    let mut desc = RecordBuilder::new(e);
    desc.u32(1).u32(136);
    desc.bytes(&AttrSpec::default().to_bytes(e));
    desc.u32(1).bytes(&feature_string(e, "cpu-clock:u")).u64(77);
    let mut cmdline = RecordBuilder::new(e);
    cmdline
        .u32(2)
        .bytes(&feature_string(e, "perf"))
        .bytes(&feature_string(e, "record"));
    let mut build_ids = RecordBuilder::new(e);
    build_ids.record(rk::HEADER_BUILD_ID, 2 | misc::BUILD_ID_SIZE, |b| {
        b.u32(1234)
            .bytes(&[1, 2, 3, 4])
            .bytes(&[0; 16])
            .u8(4)
            .bytes(&[0; 3]);
        b.cstr(b"/lib/libc.so.6");
    });
    let mut nrcpus = RecordBuilder::new(e);
    nrcpus.u32(8).u32(4);
    let mut mem = RecordBuilder::new(e);
    mem.u64(16_000_000);
    let mut round = RecordBuilder::new(e);
    round.record(rk::FINISHED_ROUND, 0, |_| {});
    let bytes = FileBuilder::new(e)
        .attr(AttrSpec::default(), &[77])
        .records(&round.into_bytes())
        .feature(feature::HOSTNAME, feature_string(e, "host"))
        .feature(feature::OSRELEASE, feature_string(e, "6.1.0"))
        .feature(feature::ARCH, feature_string(e, "s390x"))
        .feature(feature::NRCPUS, nrcpus.into_bytes())
        .feature(feature::TOTAL_MEM, mem.into_bytes())
        .feature(feature::CMDLINE, cmdline.into_bytes())
        .feature(feature::EVENT_DESC, desc.into_bytes())
        .feature(feature::BUILD_ID, build_ids.into_bytes())
        .feature(40, vec![1, 2, 3])
        .build_file();
    let file = PerfFile::parse(&bytes).unwrap();
    let f = file.features();
    assert_eq!(f.hostname.as_deref(), Some("host"));
    assert_eq!(f.osrelease.as_deref(), Some("6.1.0"));
    assert_eq!(f.arch.as_deref(), Some("s390x"));
    assert_eq!(f.nrcpus, Some((8, 4)));
    assert_eq!(f.total_mem, Some(16_000_000));
    assert_eq!(
        f.cmdline.as_deref(),
        Some(&["perf".to_string(), "record".to_string()][..])
    );
    assert_eq!(f.event_desc.len(), 1);
    assert_eq!(file.attrs()[0].name, "cpu-clock:u");
    assert_eq!(f.build_ids.len(), 1);
    assert_eq!(f.build_ids[0].pid, 1234);
    assert_eq!(f.build_ids[0].build_id, [1, 2, 3, 4]);
    assert_eq!(f.build_ids[0].filename, "/lib/libc.so.6");
    assert!(f.present.contains(&40));
    assert!(file.notes().contains(&Note::UnknownFeature { bit: 40 }));
}

#[test]
fn feature_with_huge_count_is_a_note_not_an_allocation() {
    let e = Endian::Little;
    let mut cmdline = RecordBuilder::new(e);
    cmdline.u32(u32::MAX).u32(4);
    let mut round = RecordBuilder::new(e);
    round.record(rk::FINISHED_ROUND, 0, |_| {});
    let bytes = FileBuilder::new(e)
        .attr(AttrSpec::default(), &[])
        .records(&round.into_bytes())
        .feature(feature::CMDLINE, cmdline.into_bytes())
        .build_file();
    let file = PerfFile::parse(&bytes).unwrap();
    assert!(
        file.notes()
            .iter()
            .any(|n| matches!(n, Note::FeatureError { bit: 11, .. }))
    );
}

/// A file of a COMM without time, samples at times 30 and 10, a FINISHED_ROUND (which
/// inherits 10), and samples at 20 and 10, in that file order.
fn comm_round_and_samples_file() -> Vec<u8> {
    let mut r = RecordBuilder::new(Endian::Little);
    let sample = |r: &mut RecordBuilder, time: u64| {
        r.record(rk::SAMPLE, 2, |b| {
            b.u64(time).u64(time);
        });
    };
    r.record(rk::COMM, 0, |b| {
        b.u32(1).u32(1).cstr(b"a");
    });
    sample(&mut r, 30);
    sample(&mut r, 10);
    r.record(rk::FINISHED_ROUND, 0, |_| {});
    sample(&mut r, 20);
    sample(&mut r, 10);
    FileBuilder::new(Endian::Little)
        .attr(
            AttrSpec {
                sample_type: st::IP | st::TIME,
                ..AttrSpec::default()
            },
            &[],
        )
        .records(&r.into_bytes())
        .build_file()
}

#[test]
fn sorted_records_order_by_time_and_inherit() {
    let bytes = comm_round_and_samples_file();
    let file = PerfFile::parse(&bytes).unwrap();
    let sorted = file.sorted_records().unwrap();
    assert_eq!(sorted.len(), 6);
    let order: Vec<(u32, Option<u64>)> = sorted
        .map(|e| {
            let e = e.unwrap();
            (e.record.kind(), e.time)
        })
        .collect();
    // Synthesized records without time come first and stay first.
    assert_eq!(
        order,
        [
            (rk::COMM, None),
            (rk::SAMPLE, Some(10)),
            (rk::FINISHED_ROUND, None),
            (rk::SAMPLE, Some(10)),
            (rk::SAMPLE, Some(20)),
            (rk::SAMPLE, Some(30)),
        ]
    );
}

// See: issue #13 (the side-band pass steps over samples unread)
#[test]
fn samples_are_skipped_in_time_order_and_nothing_else_is() {
    let bytes = comm_round_and_samples_file();
    let file = PerfFile::parse(&bytes).unwrap();
    // Time order: COMM, sample, FINISHED_ROUND, three samples. Skipping where it can, a walk
    // reads only the others, and skips each sample once.
    let mut sorted = file.sorted_records().unwrap();
    let mut walk = Vec::new();
    loop {
        if sorted.skip_sample() {
            walk.push("skipped".to_string());
            continue;
        }
        let Some(record) = sorted.next() else { break };
        walk.push(format!("{}", record.unwrap().record.kind()));
    }
    let (comm, round) = (rk::COMM.to_string(), rk::FINISHED_ROUND.to_string());
    assert_eq!(
        walk,
        [&comm, "skipped", &round, "skipped", "skipped", "skipped"]
    );
    assert!(!sorted.skip_sample(), "nothing is left to skip");
    // Skipping is stepping: the records that follow are those a plain walk gives there.
    let mut sorted = file.sorted_records().unwrap();
    assert!(!sorted.skip_sample(), "a COMM is not skipped");
    sorted.next();
    assert!(sorted.skip_sample());
    let next = sorted.next().unwrap().unwrap();
    assert_eq!(next.record.kind(), rk::FINISHED_ROUND);
    assert_eq!(sorted.len(), 3);
}

/// A file of `times.len()` IP|TID|TIME|CPU|PERIOD|CALLCHAIN samples with those times, in file
/// order, with an attr of two ids (so samples are matched to it by id).
fn timed_samples_file(times: &[u64]) -> Vec<u8> {
    let t = st::IDENTIFIER | st::IP | st::TID | st::TIME | st::CPU | st::PERIOD | st::CALLCHAIN;
    let mut r = RecordBuilder::new(Endian::Little);
    for (i, &time) in times.iter().enumerate() {
        let i = i as u64;
        r.record(rk::SAMPLE, 2, |b| {
            b.u64(7)
                .u64(0x40_0000 + i)
                .u32(100)
                .u32(101 + i as u32)
                .u64(time);
            b.u32(i as u32 % 4).u32(0).u64(1000 + i);
            b.u64(2).u64(0x40_0000 + i).u64(0x40_1000);
        });
    }
    FileBuilder::new(Endian::Little)
        .attr(spec_for(t), &[7, 8])
        .records(&r.into_bytes())
        .build_file()
}

#[test]
fn record_refs_decode_as_the_iterator_does_and_heads_match_samples() {
    let bytes = timed_samples_file(&[50, 10, 40, 20, 30]);
    let file = PerfFile::parse(&bytes).unwrap();
    let mut refs = file.sorted_records().unwrap();
    let events: Vec<_> = file.sorted_records().unwrap().map(Result::unwrap).collect();
    for event in &events {
        let record = refs.next_ref().unwrap().unwrap();
        assert_eq!(record.offset(), event.offset);
        assert_eq!(record.kind(), rk::SAMPLE);
        assert_eq!(&file.decode(&record).unwrap(), event);
        let Record::Sample(sample) = event.record else {
            panic!("not a sample");
        };
        let head = file.sample_head(&record).unwrap();
        assert_eq!(
            (head.attr_index, head.cpumode, head.ip, head.pid, head.tid),
            (
                sample.attr_index,
                sample.cpumode,
                sample.ip,
                sample.pid,
                sample.tid
            )
        );
        assert_eq!(
            (head.time, head.cpu, head.period),
            (sample.time, sample.cpu, sample.period)
        );
    }
    assert!(refs.next_ref().is_none());
    let times: Vec<_> = events.iter().map(|e| e.time.unwrap()).collect();
    assert_eq!(times, [10, 20, 30, 40, 50]);
}

#[test]
fn unread_floor_never_passes_a_record_still_to_come() {
    // Times run backwards in places, as records from several CPUs do.
    let times: Vec<u64> = (0..5000u64).map(|i| (i * 7919) % 5003).collect();
    let bytes = timed_samples_file(&times);
    let file = PerfFile::parse(&bytes).unwrap();
    let offsets: Vec<u64> = file
        .sorted_records()
        .unwrap()
        .map(|e| e.unwrap().offset)
        .collect();
    let mut records = file.sorted_records().unwrap();
    let mut seen = 0;
    let mut last_floor = 0;
    loop {
        let floor = records.unread_floor();
        assert!(floor >= last_floor, "the floor only rises");
        last_floor = floor;
        let lowest_to_come = offsets[seen..].iter().min().copied().unwrap_or(u64::MAX);
        assert!(
            floor <= lowest_to_come,
            "floor {floor} passes {lowest_to_come}"
        );
        if records.next_ref().is_none() {
            break;
        }
        seen += 1;
    }
    assert!(last_floor > offsets[0], "the floor moves on");
}

#[test]
fn the_header_pass_reports_its_progress() {
    let times: Vec<u64> = (0..40_000u64).collect();
    let bytes = timed_samples_file(&times);
    let mut reports = Vec::new();
    let file = PerfFile::parse_scanning(&bytes, &ParseOptions::default(), &mut |offset| {
        reports.push(offset)
    })
    .unwrap();
    assert_eq!(file.sorted_records().unwrap().len(), 40_000);
    assert!(
        reports.len() >= bytes.len() / SCAN_REPORT_BYTES - 1,
        "{reports:?}"
    );
    assert!(reports.is_sorted() && reports.iter().all(|&r| r < bytes.len() as u64));
}

fn compressed_file(kind: u32, chunks: usize) -> (Vec<u8>, Vec<u8>) {
    let e = Endian::Little;
    let t = st::IP | st::TIME;
    let mut plain = RecordBuilder::new(e);
    for i in 0..200u64 {
        plain.record(rk::SAMPLE, 2, |b| {
            b.u64(0x1000 + i).u64(i);
        });
    }
    let plain = plain.into_bytes();
    let compressed = zstd::bulk::compress(&plain, 3).unwrap();
    let mut r = RecordBuilder::new(e);
    r.record(rk::COMM, 0, |b| {
        b.u32(1).u32(1).cstr(b"uncompressed");
    });
    // Split the zstd stream so records (and the frame) span chunks.
    let step = compressed.len().div_ceil(chunks);
    for piece in compressed.chunks(step) {
        r.record(kind, 0, |b| {
            if kind == rk::COMPRESSED2 {
                b.u64(piece.len() as u64).bytes(piece);
                while b.len() % 8 != 0 {
                    b.u8(0);
                }
            } else {
                b.bytes(piece);
            }
        });
        r.record(rk::FINISHED_ROUND, 0, |_| {});
    }
    let spec = AttrSpec {
        sample_type: t,
        ..AttrSpec::default()
    };
    let compressed_file = FileBuilder::new(e)
        .attr(spec.clone(), &[])
        .records(&r.into_bytes())
        .build_file();
    let plain_file = FileBuilder::new(e)
        .attr(spec, &[])
        .records(&plain)
        .build_file();
    (compressed_file, plain_file)
}

#[test]
fn compressed_records_expand_across_chunks() {
    for kind in [rk::COMPRESSED, rk::COMPRESSED2] {
        for chunks in [1, 3, 7] {
            let (compressed, plain) = compressed_file(kind, chunks);
            let file = PerfFile::parse(&compressed).unwrap();
            assert!(file.offsets_are_decompressed());
            assert!(file.notes().iter().any(
                |n| matches!(n, Note::Compressed { records, .. } if *records == chunks as u64)
            ));
            let plain = PerfFile::parse(&plain).unwrap();
            let ours: Vec<_> = file
                .records()
                .filter_map(|e| match e.unwrap().record {
                    Record::Sample(s) => Some((s.ip, s.time)),
                    _ => None,
                })
                .collect();
            let want: Vec<_> = plain
                .records()
                .filter_map(|e| match e.unwrap().record {
                    Record::Sample(s) => Some((s.ip, s.time)),
                    _ => None,
                })
                .collect();
            assert_eq!(ours.len(), 200);
            assert_eq!(ours, want);
            assert_eq!(
                file.stats().by_kind.get(&rk::FINISHED_ROUND),
                Some(&(chunks as u64))
            );
        }
    }
}

#[test]
fn decompression_is_capped() {
    let e = Endian::Little;
    let zeros = vec![0u8; 8 << 20];
    let bomb = zstd::bulk::compress(&zeros, 19).unwrap();
    let mut r = RecordBuilder::new(e);
    r.record(rk::COMPRESSED, 0, |b| {
        b.bytes(&bomb);
    });
    let bytes = FileBuilder::new(e)
        .attr(AttrSpec::default(), &[])
        .records(&r.into_bytes())
        .build_file();
    let mut options = ParseOptions::default();
    options.max_decompressed_bytes = 1 << 20;
    let err = PerfFile::parse_with(&bytes, &options).unwrap_err();
    assert!(
        matches!(err, Error::TooLarge { limit, .. } if limit == 1 << 20),
        "{err}"
    );
    let mut garbage = RecordBuilder::new(e);
    garbage.record(rk::COMPRESSED, 0, |b| {
        b.bytes(&[0xde, 0xad, 0xbe, 0xef, 0xff, 0xff, 0xff, 0xff]);
    });
    let bytes = FileBuilder::new(e)
        .attr(AttrSpec::default(), &[])
        .records(&garbage.into_bytes())
        .build_file();
    let err = PerfFile::parse(&bytes).unwrap_err();
    assert!(matches!(err, Error::Decompress { .. }), "{err}");
    assert!(err.to_string().contains("at offset 0x"), "{err}");
    // A stream that stops inside a frame is salvaged with a note.
    let mut cut = RecordBuilder::new(e);
    cut.record(rk::COMPRESSED, 0, |b| {
        b.bytes(&bomb[..bomb.len() / 2]);
    });
    let bytes = FileBuilder::new(e)
        .attr(AttrSpec::default(), &[])
        .records(&cut.into_bytes())
        .build_file();
    let file = PerfFile::parse(&bytes).unwrap();
    assert!(
        file.notes().contains(&Note::IncompleteCompressedStream),
        "{:?}",
        file.notes()
    );
}

#[test]
fn auxtrace_payload_is_skipped() {
    let e = Endian::Little;
    let mut r = RecordBuilder::new(e);
    r.record(rk::AUXTRACE, 0, |b| {
        b.u64(16).u64(0).u64(0).u32(0).u32(0).u32(0).u32(0);
    });
    r.bytes(&[0xff; 16]);
    r.record(rk::FINISHED_ROUND, 0, |_| {});
    let bytes = FileBuilder::new(e)
        .attr(AttrSpec::default(), &[])
        .records(&r.into_bytes())
        .build_file();
    let file = PerfFile::parse(&bytes).unwrap();
    let kinds: Vec<u32> = file.records().map(|e| e.unwrap().record.kind()).collect();
    assert_eq!(kinds, [rk::AUXTRACE, rk::FINISHED_ROUND]);
}

#[test]
fn huge_callchain_count_is_truncation_error() {
    let e = Endian::Little;
    let mut r = RecordBuilder::new(e);
    r.record(rk::SAMPLE, 2, |b| {
        b.u64(u64::MAX / 2).u64(1);
    });
    let bytes = FileBuilder::new(e)
        .attr(
            AttrSpec {
                sample_type: st::CALLCHAIN,
                ..AttrSpec::default()
            },
            &[],
        )
        .records(&r.into_bytes())
        .build_file();
    let file = PerfFile::parse(&bytes).unwrap();
    let err = file.records().next().unwrap().unwrap_err();
    assert!(
        matches!(
            err,
            Error::Truncated {
                what: "callchain entries",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn user_records_decode() {
    let e = Endian::Big;
    let mut r = RecordBuilder::new(e);
    r.record(rk::STAT_CONFIG, 0, |b| {
        b.u64(2).u64(0).u64(1).u64(1).u64(3);
    });
    r.record(rk::STAT, 0, |b| {
        b.u64(9).u32(1).u32(2).u64(100).u64(50).u64(40);
    });
    r.record(rk::STAT_ROUND, 0, |b| {
        b.u64(1).u64(777);
    });
    r.record(rk::TIME_CONV, 0, |b| {
        b.u64(10).u64(20).u64(30);
    });
    r.record(rk::ID_INDEX, 0, |b| {
        b.u64(1).u64(9).u64(0).u64(3).u64(1234);
    });
    r.record(rk::THREAD_MAP, 0, |b| {
        b.u64(1).u64(1234).bytes(b"busy\0\0\0\0\0\0\0\0\0\0\0\0");
    });
    r.record(rk::KSYMBOL, 0, |b| {
        b.u64(0xffff_1000).u32(64).u16(1).u16(0).cstr(b"bpf_prog_x");
    });
    let bytes = FileBuilder::new(e)
        .attr(AttrSpec::default(), &[9])
        .records(&r.into_bytes())
        .build_file();
    let file = PerfFile::parse(&bytes).unwrap();
    let events: Vec<_> = file.records().collect::<Result<_, _>>().unwrap();
    match events[0].record {
        Record::StatConfig(c) => assert_eq!((c.len(), c.get(1)), (2, Some((1, 3)))),
        ref other => panic!("{other:?}"),
    }
    assert_eq!(
        events[1].record,
        Record::Stat(kprof_perfdata::Stat {
            id: 9,
            cpu: 1,
            thread: 2,
            value: 100,
            enabled: 50,
            running: 40
        })
    );
    assert_eq!(
        events[2].record,
        Record::StatRound(kprof_perfdata::StatRound {
            round_type: 1,
            time: 777
        })
    );
    match events[3].record {
        Record::TimeConv(t) => assert_eq!((t.time_shift, t.time_mult, t.time_zero), (10, 20, 30)),
        ref other => panic!("{other:?}"),
    }
    match events[4].record {
        Record::IdIndex(i) => assert_eq!(i.get(0), Some((9, 0, 3, 1234))),
        ref other => panic!("{other:?}"),
    }
    match events[5].record {
        Record::ThreadMap(t) => assert_eq!(t.get(0), Some((1234, &b"busy"[..]))),
        ref other => panic!("{other:?}"),
    }
    match events[6].record {
        Record::Ksymbol(k) => assert_eq!(
            (k.addr, k.len, k.name),
            (0xffff_1000, 64, &b"bpf_prog_x"[..])
        ),
        ref other => panic!("{other:?}"),
    }
}

// See: issue #13 (time order split into pieces that threads read in parallel)
#[test]
fn pieces_of_time_order_yield_together_what_the_whole_yields() {
    // Times run backwards in places, as records from several CPUs do.
    let times: Vec<u64> = (0..3000u64).map(|i| (i * 7919) % 3001).collect();
    let bytes = timed_samples_file(&times);
    let file = PerfFile::parse(&bytes).unwrap();
    let whole: Vec<_> = file.sorted_records().unwrap().map(Result::unwrap).collect();
    let n = file.record_count();
    assert_eq!(n, times.len());
    for pieces in [1, 2, 3, 7, 64] {
        let mut joined = Vec::new();
        for p in 0..pieces {
            let range = n * p / pieces..n * (p + 1) / pieces;
            let mut piece = file.sorted_records_in(range.clone()).unwrap();
            assert_eq!(piece.len(), range.len());
            let offsets: Vec<u64> = whole[range].iter().map(|e| e.offset).collect();
            for (seen, _) in offsets.iter().enumerate() {
                let lowest_to_come = offsets[seen..].iter().min().copied().unwrap();
                assert!(piece.unread_floor() <= lowest_to_come);
                joined.push(piece.next().unwrap().unwrap());
            }
            assert!(piece.next().is_none());
        }
        assert_eq!(joined, whole, "{pieces} pieces");
    }
    let sorted_times: Vec<u64> = (0..n).map(|i| file.sorted_time(i).unwrap()).collect();
    let event_times: Vec<u64> = whole.iter().map(|e| e.time.unwrap()).collect();
    assert_eq!(sorted_times, event_times);
    assert!(sorted_times.is_sorted());
    assert_eq!(file.sorted_time(n), None);
    assert_eq!(
        file.sorted_records_in(10..usize::MAX).unwrap().len(),
        n - 10
    );
    assert_eq!(file.sorted_records_in(n + 5..n + 9).unwrap().len(), 0);
}
