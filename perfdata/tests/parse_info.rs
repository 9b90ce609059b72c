//! [`RecordParseInfo`]: one raw record (as a kernel ring buffer or a file holds it) decoded from
//! its attrs and byte order alone, checked against the values the test builders wrote, in both
//! byte orders. See: issue #12 point 2.
#![allow(clippy::unwrap_used)]

use kprof_perfdata::kinds::{attr_flag, misc, record as rk, sample as st};
use kprof_perfdata::{
    CpuMode, Endian, Event, EventAttr, ForkExit, Lost, LostSamples, PerfFile, Record,
    RecordParseInfo, SampleId, Throttle,
};
use kprof_test_support::{AttrSpec, FileBuilder, RecordBuilder, SampleHeadValues};

const BOTH: [Endian; 2] = [Endian::Little, Endian::Big];

/// An attr as the kernel was given it, with the ids of its fds.
fn attr(endian: Endian, spec: &AttrSpec, ids: &[u64]) -> EventAttr {
    let mut attr = EventAttr::parse(&spec.to_bytes(endian), 0, endian).unwrap();
    attr.ids = ids.to_vec();
    attr
}

fn spec(sample_type: u64, sample_id_all: bool) -> AttrSpec {
    AttrSpec {
        sample_type,
        flags: if sample_id_all {
            attr_flag::SAMPLE_ID_ALL
        } else {
            0
        },
        ..AttrSpec::default()
    }
}

/// One record of `kind` whose body `body` writes.
fn record(endian: Endian, kind: u32, misc: u16, body: impl FnOnce(&mut RecordBuilder)) -> Vec<u8> {
    let mut b = RecordBuilder::new(endian);
    b.record(kind, misc, body);
    b.into_bytes()
}

/// The `sample_id` trailer of `IP | TID | TIME | CPU | PERIOD | IDENTIFIER`: TID, TIME, CPU,
/// IDENTIFIER.
fn trailer(b: &mut RecordBuilder, pid: u32, time: u64, cpu: u32, id: u64) {
    b.u32(pid).u32(pid + 1).u64(time).u32(cpu).u32(0).u64(id);
}

const LIVE: u64 = st::IP | st::TID | st::TIME | st::CPU | st::PERIOD | st::IDENTIFIER;

fn decode<'a>(info: &RecordParseInfo, bytes: &'a [u8]) -> Event<'a> {
    info.decode(bytes, 0x1000).unwrap()
}

#[test]
fn each_side_band_record_type_decodes_with_its_trailer() {
    for endian in BOTH {
        let info = RecordParseInfo::new(vec![attr(endian, &spec(LIVE, true), &[7])], endian);
        let sid = |pid: u32, time: u64, cpu: u32| SampleId {
            pid: Some(pid),
            tid: Some(pid + 1),
            time: Some(time),
            id: Some(7),
            stream_id: None,
            cpu: Some(cpu),
        };

        let bytes = record(endian, rk::MMAP2, 2, |b| {
            b.u32(10).u32(11).u64(0x40_0000).u64(0x1000).u64(0x2000);
            b.u32(8).u32(1).u64(1234).u64(5).u32(5).u32(2);
            b.cstr(b"/usr/bin/hot");
            trailer(b, 10, 100, 1, 7);
        });
        let event = decode(&info, &bytes);
        assert_eq!((event.offset, event.time), (0x1000, Some(100)));
        assert_eq!(event.sample_id, sid(10, 100, 1));
        let Record::Mmap(m) = event.record else {
            panic!("{event:?}")
        };
        assert_eq!(
            (m.pid, m.tid, m.start, m.len, m.pgoff),
            (10, 11, 0x40_0000, 0x1000, 0x2000)
        );
        assert_eq!(
            (m.filename, m.cpumode, m.is_mmap2),
            (&b"/usr/bin/hot"[..], CpuMode::User, true)
        );
        assert_eq!(
            (m.maj, m.min, m.ino, m.prot, m.flags),
            (Some(8), Some(1), Some(1234), Some(5), Some(2))
        );

        let bytes = record(endian, rk::MMAP, 1, |b| {
            b.u32(u32::MAX)
                .u32(0)
                .u64(0xffff_ffff_8100_0000)
                .u64(0x100_0000)
                .u64(0);
            b.cstr(b"[kernel.kallsyms]_text");
            trailer(b, 0, 5, 0, 7);
        });
        let Record::Mmap(m) = decode(&info, &bytes).record else {
            panic!()
        };
        assert_eq!(
            (m.filename, m.cpumode, m.is_mmap2),
            (&b"[kernel.kallsyms]_text"[..], CpuMode::Kernel, false)
        );

        let bytes = record(endian, rk::COMM, misc::COMM_EXEC, |b| {
            b.u32(10).u32(10).cstr(b"hot");
            trailer(b, 10, 101, 0, 7);
        });
        let event = decode(&info, &bytes);
        let Record::Comm(c) = event.record else {
            panic!()
        };
        assert_eq!((c.pid, c.tid, c.name, c.exec), (10, 10, &b"hot"[..], true));
        assert_eq!(event.time, Some(101));

        for kind in [rk::FORK, rk::EXIT] {
            let bytes = record(endian, kind, 0, |b| {
                b.u32(20).u32(10).u32(21).u32(11).u64(102);
                trailer(b, 20, 102, 1, 7);
            });
            let event = decode(&info, &bytes);
            let fork = ForkExit {
                pid: 20,
                ppid: 10,
                tid: 21,
                ptid: 11,
                time: 102,
            };
            let want = if kind == rk::FORK {
                Record::Fork(fork)
            } else {
                Record::Exit(fork)
            };
            assert_eq!((event.record, event.time), (want, Some(102)));
        }

        let bytes = record(endian, rk::LOST, 0, |b| {
            b.u64(7).u64(42);
            trailer(b, 0, 103, 1, 7);
        });
        let event = decode(&info, &bytes);
        assert_eq!(event.record, Record::Lost(Lost { id: 7, lost: 42 }));
        assert_eq!(event.sample_id, sid(0, 103, 1));

        let bytes = record(endian, rk::LOST_SAMPLES, 0, |b| {
            b.u64(3);
            trailer(b, 10, 104, 0, 7);
        });
        assert_eq!(
            decode(&info, &bytes).record,
            Record::LostSamples(LostSamples { lost: 3 })
        );

        for kind in [rk::THROTTLE, rk::UNTHROTTLE] {
            let bytes = record(endian, kind, 0, |b| {
                b.u64(105).u64(7).u64(0);
                trailer(b, 0, 105, 1, 7);
            });
            let event = decode(&info, &bytes);
            let throttle = Throttle {
                time: 105,
                id: 7,
                stream_id: 0,
            };
            let want = if kind == rk::THROTTLE {
                Record::Throttle(throttle)
            } else {
                Record::Unthrottle(throttle)
            };
            assert_eq!((event.record, event.time), (want, Some(105)));
        }

        // perf's own records carry no trailer.
        let bytes = record(endian, rk::FINISHED_ROUND, 0, |_| {});
        assert_eq!(decode(&info, &bytes).record, Record::FinishedRound);
        let bytes = record(endian, 4000, 0, |b| {
            b.u64(1);
        });
        assert!(
            matches!(decode(&info, &bytes).record, Record::Other { kind: 4000, body } if body.len() == 8)
        );
    }
}

#[test]
fn sample_layouts_follow_the_attrs_sample_type() {
    const HEAD: SampleHeadValues = SampleHeadValues::RECOGNIZABLE;
    let layouts = [
        st::IP,
        st::IP | st::TID | st::TIME,
        LIVE,
        LIVE | st::CALLCHAIN,
        st::TID | st::TIME | st::ID | st::CPU | st::PERIOD,
        st::IDENTIFIER | st::TIME | st::ADDR | st::STREAM_ID,
    ];
    for endian in BOTH {
        for sample_type in layouts {
            let info =
                RecordParseInfo::new(vec![attr(endian, &spec(sample_type, true), &[7])], endian);
            let has = |bit: u64| sample_type & bit != 0;
            let bytes = record(endian, rk::SAMPLE, 2, |b| {
                b.sample_head(sample_type, &HEAD);
                if has(st::CALLCHAIN) {
                    b.u64(2).u64(0x40_1000).u64(0x40_2000);
                }
            });
            let event = decode(&info, &bytes);
            let Record::Sample(s) = event.record else {
                panic!("{sample_type:#x}: {event:?}")
            };
            let want = |bit: u64, v: u64| has(bit).then_some(v);
            assert_eq!(s.ip, want(st::IP, HEAD.ip), "{sample_type:#x}");
            assert_eq!(s.pid, has(st::TID).then_some(HEAD.pid));
            assert_eq!(s.tid, has(st::TID).then_some(HEAD.tid));
            assert_eq!(
                (s.time, event.time),
                (want(st::TIME, HEAD.time), want(st::TIME, HEAD.time))
            );
            assert_eq!(
                info.record_time(&bytes),
                want(st::TIME, HEAD.time),
                "{sample_type:#x}"
            );
            assert_eq!(s.addr, want(st::ADDR, HEAD.addr));
            assert_eq!(s.id, want(st::ID | st::IDENTIFIER, HEAD.id));
            assert_eq!(s.stream_id, want(st::STREAM_ID, HEAD.stream_id));
            assert_eq!(s.cpu, has(st::CPU).then_some(HEAD.cpu));
            assert_eq!(s.period, want(st::PERIOD, HEAD.period));
            let chain: Option<Vec<u64>> = s.callchain.map(|c| c.iter().collect());
            assert_eq!(
                chain,
                has(st::CALLCHAIN).then(|| vec![0x40_1000, 0x40_2000])
            );
            assert_eq!(s.cpumode, CpuMode::User);
        }
    }
}

/// Two events with different `sample_type`s: each record finds its own attr by the id that
/// `IDENTIFIER` puts first in samples and last in trailers.
#[test]
fn records_find_their_attr_by_identifier() {
    for endian in BOTH {
        let clock = attr(endian, &spec(LIVE, true), &[7, 8]);
        let tracepoint = attr(endian, &spec(LIVE | st::RAW, true), &[9]);
        let info = RecordParseInfo::new(vec![clock, tracepoint], endian);
        let bytes = record(endian, rk::SAMPLE, 2, |b| {
            b.u64(9)
                .u64(0x40_1000)
                .u32(10)
                .u32(11)
                .u64(2_000)
                .u32(0)
                .u32(0)
                .u64(1);
            b.u32(4).bytes(&[1, 2, 3, 4]);
        });
        let Record::Sample(s) = decode(&info, &bytes).record else {
            panic!()
        };
        assert_eq!((s.attr_index, s.raw), (1, Some(&[1u8, 2, 3, 4][..])));
        assert_eq!(info.record_time(&bytes), Some(2_000));
        let bytes = record(endian, rk::SAMPLE, 2, |b| {
            b.u64(8)
                .u64(0x40_1000)
                .u32(10)
                .u32(11)
                .u64(3_000)
                .u32(0)
                .u32(0)
                .u64(1);
        });
        let Record::Sample(s) = decode(&info, &bytes).record else {
            panic!()
        };
        assert_eq!((s.attr_index, s.time, s.raw), (0, Some(3_000), None));
    }
}

#[test]
fn without_sample_id_all_nothing_is_a_trailer() {
    for endian in BOTH {
        let info = RecordParseInfo::new(vec![attr(endian, &spec(LIVE, false), &[7])], endian);
        let bytes = record(endian, rk::COMM, 0, |b| {
            b.u32(10).u32(10).cstr(b"hot");
        });
        let event = decode(&info, &bytes);
        assert_eq!((event.time, event.sample_id), (None, SampleId::default()));
        assert!(matches!(event.record, Record::Comm(c) if c.name == b"hot"));
        assert_eq!(info.record_time(&bytes), None);
    }
}

#[test]
fn malformed_headers_are_errors() {
    let info = RecordParseInfo::new(
        vec![attr(Endian::Little, &spec(LIVE, true), &[7])],
        Endian::Little,
    );
    let mut bytes = record(Endian::Little, rk::LOST_SAMPLES, 0, |b| {
        b.u64(3);
    });
    assert!(info.decode(&bytes[..6], 0).is_err(), "a cut header");
    bytes[6] = 4; // size 4 < the header's own 8 bytes
    assert!(info.decode(&bytes, 0).is_err());
    bytes[6] = 200; // larger than the bytes given
    assert!(info.decode(&bytes, 0).is_err());
    assert_eq!(info.record_time(&bytes), None);
}

/// The file reader decodes with the same parse info it exposes.
#[test]
fn the_file_reader_decodes_as_its_parse_info_does() {
    for endian in BOTH {
        let mut records = RecordBuilder::new(endian);
        records.record(rk::COMM, 0, |b| {
            b.u32(10).u32(10).cstr(b"hot");
            trailer(b, 10, 50, 0, 7);
        });
        records.record(rk::SAMPLE, 2, |b| {
            b.u64(7)
                .u64(0x40_1000)
                .u32(10)
                .u32(11)
                .u64(60)
                .u32(1)
                .u32(0)
                .u64(1);
        });
        let records = records.into_bytes();
        let bytes = FileBuilder::new(endian)
            .attr(spec(LIVE, true), &[7])
            .records(&records)
            .build_file();
        let file = PerfFile::parse(&bytes).unwrap();
        let info = file.parse_info();
        assert_eq!(info.endian(), endian);
        assert_eq!(info.attrs(), file.attrs());
        let mut seen = 0;
        for event in file.records() {
            let event = event.unwrap();
            let at = usize::try_from(event.offset).unwrap();
            assert_eq!(info.decode(&bytes[at..], event.offset).unwrap(), event);
            seen += 1;
        }
        assert_eq!(seen, 2);
    }
}
