//! Unit tests of the rewrite tools on synthetic files built by [`crate::builders`], which encodes
//! either byte order on its own: the big-endian build of a file is the oracle for [`to_big_endian`].

use super::*;
use crate::builders::{AttrSpec, FileBuilder, RecordBuilder, feature_string};
use kprof_perfdata::kinds::{attr_flag, misc, sample as st};
use kprof_perfdata::{Note, PerfFile, Record};

const SAMPLE_TYPE: u64 =
    st::IP | st::TID | st::TIME | st::ID | st::CPU | st::PERIOD | st::CALLCHAIN;

fn spec() -> AttrSpec {
    AttrSpec {
        sample_type: SAMPLE_TYPE,
        flags: attr_flag::FREQ | attr_flag::SAMPLE_ID_ALL | attr_flag::DISABLED | attr_flag::MMAP2,
        sample_period_or_freq: 999,
        size: 128,
        ..AttrSpec::default()
    }
}

/// `sample_id` trailer for [`SAMPLE_TYPE`]: pid/tid, time, id, cpu/res.
fn trailer(b: &mut RecordBuilder, time: u64) {
    b.u32(10).u32(11).u64(time).u64(7).u32(1).u32(0);
}

/// A [`SAMPLE_TYPE`] sample's fields before its period: the ip, then (in the order of the
/// trailer) pid/tid, time 103, id, cpu/res.
fn sample_up_to_period(b: &mut RecordBuilder, ip: u64) {
    b.u64(ip);
    trailer(b, 103);
}

/// The same records in `endian`.
fn records(endian: Endian) -> Vec<u8> {
    let mut r = RecordBuilder::new(endian);
    r.record(rk::COMM, misc::COMM_EXEC, |b| {
        b.u32(10).u32(11).cstr(b"work");
        trailer(b, 100);
    });
    r.record(rk::MMAP2, 2, |b| {
        b.u32(10).u32(11).u64(0x40_0000).u64(0x1000).u64(0);
        b.u32(8)
            .u32(1)
            .u64(1234)
            .u64(5)
            .u32(5)
            .u32(2)
            .cstr(b"/bin/work");
        trailer(b, 101);
    });
    r.record(rk::FORK, 0, |b| {
        b.u32(12).u32(10).u32(12).u32(11).u64(102);
        trailer(b, 102);
    });
    r.record(rk::SAMPLE, 2, |b| {
        sample_up_to_period(b, 0x40_1234);
        b.u64(1_001_000);
        b.u64(3).u64(u64::MAX - 511).u64(0x40_1234).u64(0x40_1000);
    });
    r.record(rk::FINISHED_ROUND, 0, |_| {});
    r.record(rk::THREAD_MAP, 0, |b| {
        b.u64(1).u64(10).bytes(&[b'w'; 16]);
    });
    r.record(rk::CPU_MAP, 0, |b| {
        b.u16(0).u16(2).u16(0).u16(1);
    });
    r.into_bytes()
}

fn file(endian: Endian, records: &[u8]) -> Vec<u8> {
    file_with(endian, records, None)
}

fn file_with(endian: Endian, records: &[u8], extra: Option<(u32, Vec<u8>)>) -> Vec<u8> {
    let mut cmdline = RecordBuilder::new(endian);
    cmdline.u32(2);
    let mut args = cmdline.into_bytes();
    args.extend(feature_string(endian, "perf"));
    args.extend(feature_string(endian, "record"));
    let mut nrcpus = RecordBuilder::new(endian);
    nrcpus.u32(4).u32(2);
    let mut builder = FileBuilder::new(endian)
        .attr(spec(), &[7, 8])
        .records(records)
        .feature(feat::HOSTNAME, feature_string(endian, "host"))
        .feature(feat::NRCPUS, nrcpus.into_bytes())
        .feature(feat::CMDLINE, args);
    if let Some((bit, payload)) = extra {
        builder = builder.feature(bit, payload);
    }
    builder.build_file()
}

/// Per attr: sample_type, flags, freq, ids.
type AttrFacts = Vec<(u64, u64, bool, Vec<u64>)>;

/// What a reader sees: attrs (without sizes) and every record, rendered.
fn seen(bytes: &[u8]) -> (AttrFacts, Vec<String>) {
    let f = PerfFile::parse(bytes).unwrap();
    let attrs = f
        .attrs()
        .iter()
        .map(|a| (a.sample_type, a.flags, a.freq, a.ids.clone()))
        .collect();
    let records = f
        .records()
        .map(|e| {
            let e = e.unwrap();
            match e.record {
                Record::Other { kind, .. } => format!("other {kind}"),
                Record::Sample(s) => format!(
                    "{:?} {:?} {:?} {:?} {:?} {:?}",
                    s.ip,
                    s.tid,
                    s.time,
                    s.cpu,
                    s.period,
                    s.callchain.map(|c| c.iter().collect::<Vec<_>>())
                ),
                Record::ThreadMap(m) => format!(
                    "threads {:?}",
                    (0..m.len()).map(|i| m.get(i)).collect::<Vec<_>>()
                ),
                Record::CpuMap(m) => format!("cpu map {}", m.map_type),
                other => format!("{other:?} {:?}", e.sample_id),
            }
        })
        .collect();
    (attrs, records)
}

#[test]
fn big_endian_copy_matches_a_big_endian_build() {
    let le = file(Endian::Little, &records(Endian::Little));
    let be = file(Endian::Big, &records(Endian::Big));
    let swapped = to_big_endian(&le).unwrap();
    assert_eq!(swapped.get(..8), Some(&b"2ELIFREP"[..]));
    assert_eq!(swapped, be, "byte-for-byte what a big-endian perf writes");
    let parsed = PerfFile::parse(&swapped).unwrap();
    assert_eq!(parsed.endian(), Endian::Big);
    assert_eq!(seen(&swapped), seen(&le));
    assert_eq!(
        parsed.features().cmdline,
        Some(vec!["perf".into(), "record".into()])
    );
    assert_eq!(parsed.features().nrcpus, Some((4, 2)));
}

#[test]
fn attr_bitfield_is_laid_out_from_the_top() {
    let le = file(Endian::Little, &records(Endian::Little));
    let swapped = to_big_endian(&le).unwrap();
    let attr = 104 + 40;
    let word = u64::from_be_bytes(swapped[attr..attr + 8].try_into().unwrap());
    // `disabled` (bit 0) is the most significant bit on a big-endian machine.
    assert_eq!(word >> 63, 1);
    assert_eq!(word.reverse_bits(), spec().flags);
}

#[test]
fn compressed_records_are_expanded() {
    let plain = records(Endian::Little);
    let compressed = zstd::bulk::compress(&plain, 3).unwrap();
    let mut r = RecordBuilder::new(Endian::Little);
    let half = compressed.len() / 2;
    // One zstd frame split over two COMPRESSED2 records (data_size, data, padding to 8 bytes).
    for chunk in [&compressed[..half], &compressed[half..]] {
        r.record(rk::COMPRESSED2, 0, |b| {
            b.u64(chunk.len() as u64).bytes(chunk);
            while b.len() % 8 != 0 {
                b.u8(0);
            }
        });
    }
    // The COMPRESSED feature must be dropped from the (uncompressed) copy.
    let le = file_with(
        Endian::Little,
        &r.into_bytes(),
        Some((feat::COMPRESSED, vec![1; 20])),
    );
    assert_eq!(
        seen(&le),
        seen(&file(Endian::Little, &records(Endian::Little)))
    );
    let swapped = to_big_endian(&le).unwrap();
    let be = file(Endian::Big, &records(Endian::Big));
    assert_eq!(swapped, be);
}

#[test]
fn dropped_and_unknown_features_leave_the_bitmap() {
    let le = FileBuilder::new(Endian::Little)
        .attr(spec(), &[7])
        .records(&records(Endian::Little))
        .feature(feat::HOSTNAME, feature_string(Endian::Little, "host"))
        .feature(feat::CPU_TOPOLOGY, vec![1, 2, 3, 4])
        .feature(200, vec![9; 8])
        .build_file();
    let swapped = to_big_endian(&le).unwrap();
    let parsed = PerfFile::parse(&swapped).unwrap();
    assert_eq!(parsed.features().present, vec![feat::HOSTNAME]);
    assert_eq!(parsed.features().hostname.as_deref(), Some("host"));
}

#[test]
fn unknown_record_types_cannot_be_swapped() {
    let mut r = RecordBuilder::new(Endian::Little);
    r.record(300, 0, |b| {
        b.u64(1);
    });
    let le = file(Endian::Little, &r.into_bytes());
    let data_off = 104 + 144 + 16;
    assert_eq!(
        to_big_endian(&le),
        Err(RewriteError::UnknownRecord {
            kind: 300,
            offset: data_off as u64
        })
    );
    assert!(matches!(
        to_big_endian(&to_big_endian(&file(Endian::Little, &records(Endian::Little))).unwrap()),
        Err(RewriteError::NotFileMode(_))
    ));
}

#[test]
fn sample_size_mismatch_is_an_error() {
    let mut r = RecordBuilder::new(Endian::Little);
    r.record(rk::SAMPLE, 2, |b| {
        sample_up_to_period(b, 1);
        b.u64(1).u64(0).u64(99);
    });
    let le = file(Endian::Little, &r.into_bytes());
    assert!(matches!(
        to_big_endian(&le),
        Err(RewriteError::Unsupported { .. })
    ));
}

#[test]
fn attr_padding_reads_the_same_plus_a_note() {
    for endian in [Endian::Little, Endian::Big] {
        let original = file(endian, &records(endian));
        let padded = with_attr_padding(&original, 64).unwrap();
        assert_eq!(padded.len(), original.len() + 64);
        let f = PerfFile::parse(&padded).unwrap();
        assert_eq!(seen(&padded), seen(&original));
        assert_eq!(f.attrs()[0].size, 128 + 64);
        assert!(
            f.notes().contains(&Note::AttrExtraBytes {
                attr_index: 0,
                bytes: 128 + 64 - 136
            }),
            "{:?}",
            f.notes()
        );
        assert_eq!(f.features().hostname.as_deref(), Some("host"));
        // The junk is not zero: a future perf's fields, not padding.
        let junk_at = 104 + 128;
        assert!(padded[junk_at..junk_at + 64].iter().all(|&b| b != 0));
    }
}

#[test]
fn attr_padding_of_several_attrs() {
    let le = FileBuilder::new(Endian::Little)
        .attr(spec(), &[7])
        .attr(
            AttrSpec {
                config: 2,
                ..spec()
            },
            &[8],
        )
        .records(&records(Endian::Little))
        .feature(feat::HOSTNAME, feature_string(Endian::Little, "host"))
        .build_file();
    let padded = with_attr_padding(&le, 24).unwrap();
    let f = PerfFile::parse(&padded).unwrap();
    assert_eq!(f.attrs().len(), 2);
    assert_eq!(f.attrs()[1].name, "page-faults");
    assert_eq!(f.attrs()[1].ids, vec![8]);
    assert_eq!(seen(&padded).1, seen(&le).1);
    assert_eq!(f.features().hostname.as_deref(), Some("host"));
}

#[test]
fn unknown_record_reads_the_same_plus_a_note() {
    for endian in [Endian::Little, Endian::Big] {
        let original = file(endian, &records(endian));
        for kind in [200, 50] {
            let bytes = with_unknown_record(&original, kind, 24).unwrap();
            let f = PerfFile::parse(&bytes).unwrap();
            assert!(
                f.notes()
                    .contains(&Note::UnknownRecordType { kind, count: 1 }),
                "{:?}",
                f.notes()
            );
            let (attrs, mut records) = seen(&bytes);
            let at = records.iter().position(|r| r == &format!("other {kind}"));
            records.remove(at.unwrap());
            assert_eq!((attrs, records), seen(&original));
            assert_eq!(f.features().hostname.as_deref(), Some("host"));
            let inserted = f
                .records()
                .map(|e| e.unwrap())
                .find(|e| e.record.kind() == kind)
                .unwrap();
            if kind < 64 {
                // A kernel record carries the sample_id trailer of the record before it.
                assert_eq!(inserted.sample_id.time, Some(100));
                assert_eq!(inserted.time, Some(100));
            } else {
                assert_eq!(inserted.time, None);
            }
        }
    }
}

#[test]
fn rewrites_refuse_pipe_mode_and_garbage() {
    let pipe = FileBuilder::new(Endian::Little)
        .attr(spec(), &[7])
        .records(&records(Endian::Little))
        .build_pipe();
    assert!(matches!(
        to_big_endian(&pipe),
        Err(RewriteError::NotFileMode(_))
    ));
    assert!(matches!(
        with_attr_padding(&pipe, 8),
        Err(RewriteError::NotFileMode(_))
    ));
    assert!(matches!(
        with_unknown_record(b"garbage!", 200, 8),
        Err(RewriteError::NotFileMode(_))
    ));
    let le = file(Endian::Little, &records(Endian::Little));
    assert!(with_attr_padding(&le, usize::MAX).is_err());
    assert!(with_unknown_record(&le, 200, usize::MAX).is_err());
    assert!(with_unknown_record(&le, 200, 70_000).is_err());
}

/// Cut or damaged input ends in `Ok` or `Err`, never a panic.
#[test]
fn damaged_input_never_panics() {
    let le = file(Endian::Little, &full_file_records());
    let be = to_big_endian(&le).unwrap();
    for bytes in [&le, &be] {
        for cut in 0..bytes.len() {
            let _ = to_big_endian(&bytes[..cut]);
            let _ = with_attr_padding(&bytes[..cut], 8);
            let _ = with_unknown_record(&bytes[..cut], 50, 8);
        }
        for at in 0..bytes.len() {
            for flip in [0xff, 0x80, 0x01] {
                let mut damaged = bytes.clone();
                damaged[at] ^= flip;
                let _ = to_big_endian(&damaged);
                let _ = with_attr_padding(&damaged, 8);
                let _ = with_unknown_record(&damaged, 50, 8);
            }
        }
    }
}

/// The synthetic records plus a compressed copy of them.
fn full_file_records() -> Vec<u8> {
    let plain = records(Endian::Little);
    let compressed = zstd::bulk::compress(&plain, 1).unwrap();
    let mut r = RecordBuilder::new(Endian::Little);
    r.record(rk::COMPRESSED2, 0, |b| {
        b.u64(compressed.len() as u64).bytes(&compressed);
        while b.len() % 8 != 0 {
            b.u8(0);
        }
    });
    let mut all = plain;
    all.extend(r.into_bytes());
    all
}

/// Every `sample_type` bit at once, in `endian`; the branch flags word is given per byte order.
fn full_sample(endian: Endian, branch_flags: u64) -> Vec<u8> {
    let mut r = RecordBuilder::new(endian);
    r.record(rk::SAMPLE, 2, |b| {
        b.u64(7)
            .u64(0x40_1234)
            .u32(10)
            .u32(11)
            .u64(103)
            .u64(0xdead)
            .u64(7)
            .u64(9);
        b.u32(1).u32(0).u64(1_000);
        // READ: GROUP | TOTAL_TIME_ENABLED | ID | LOST with two members.
        b.u64(2)
            .u64(5_000)
            .u64(11)
            .u64(7)
            .u64(0)
            .u64(12)
            .u64(8)
            .u64(1);
        b.u64(2).u64(u64::MAX - 511).u64(0x40_1234);
        b.u32(12).bytes(b"raw-payload!");
        // BRANCH_STACK with HW_INDEX: nr, hw_idx, (from, to, flags).
        b.u64(1)
            .u64(3)
            .u64(0x40_1000)
            .u64(0x40_2000)
            .u64(branch_flags);
        // REGS_USER: abi 2, two registers (mask 0b101).
        b.u64(2).u64(0x1111).u64(0x2222);
        // STACK_USER: size 16, bytes, dyn_size 8.
        b.u64(16).bytes(&[0xab; 16]).u64(8);
        // WEIGHT_STRUCT: the union's `full` u64 (var1_dw 100, var2_w 2, var3_w 3).
        b.u64(100 | 2 << 32 | 3 << 48);
        b.u64(0x5080_0142)
            .u64(0x4)
            .u64(2)
            .u64(0x3333)
            .u64(0x12_3000)
            .u64(77)
            .u64(4096)
            .u64(4096);
        b.u64(8).bytes(b"aux-data");
    });
    r.into_bytes()
}

#[test]
fn every_sample_field_is_swapped_in_its_width() {
    let all = st::IDENTIFIER
        | st::IP
        | st::TID
        | st::TIME
        | st::ADDR
        | st::ID
        | st::STREAM_ID
        | st::CPU
        | st::PERIOD
        | st::READ
        | st::CALLCHAIN
        | st::RAW
        | st::BRANCH_STACK
        | st::REGS_USER
        | st::STACK_USER
        | st::WEIGHT_STRUCT
        | st::DATA_SRC
        | st::TRANSACTION
        | st::REGS_INTR
        | st::PHYS_ADDR
        | st::CGROUP
        | st::DATA_PAGE_SIZE
        | st::CODE_PAGE_SIZE
        | st::AUX;
    let spec = AttrSpec {
        sample_type: all,
        read_format: 0b1_1101, // TOTAL_TIME_ENABLED | ID | GROUP | LOST
        branch_sample_type: kprof_perfdata::kinds::branch::HW_INDEX,
        sample_regs_user: 0b101,
        sample_regs_intr: 0b1,
        ..AttrSpec::default()
    };
    // mispred = 1, cycles = 0x1234, type = 5, priv = 3 (perf_event.h bit order, LSB first) ...
    let le_flags = 1 | 0x1234 << 4 | 5 << 20 | 3 << 30;
    // ... and on a big-endian machine, where fields are allocated from the MSB down.
    let be_flags = 1 << 63 | 0x1234 << (64 - 4 - 16) | 5 << (64 - 20 - 4) | 3 << (64 - 30 - 3);
    let build = |e: Endian, flags: u64| {
        FileBuilder::new(e)
            .attr(spec.clone(), &[7])
            .records(&full_sample(e, flags))
            .build_file()
    };
    let le = build(Endian::Little, le_flags);
    let be = build(Endian::Big, be_flags);
    assert_eq!(to_big_endian(&le).unwrap(), be);
    let parsed = PerfFile::parse(&be).unwrap();
    let Record::Sample(s) = parsed.records().next().unwrap().unwrap().record else {
        panic!("a sample");
    };
    let le_parsed = PerfFile::parse(&le).unwrap();
    let Record::Sample(le_sample) = le_parsed.records().next().unwrap().unwrap().record else {
        panic!("a sample");
    };
    // The reader gives the same values in both byte orders, bitfields and unions included.
    let branch = s.branch_stack.unwrap();
    assert_eq!(branch.get(0), Some((0x40_1000, 0x40_2000, le_flags)));
    assert_eq!(branch.get(0), le_sample.branch_stack.unwrap().get(0));
    assert_eq!(s.weight, Some(100 | 2 << 32 | 3 << 48));
    assert_eq!(s.weight, le_sample.weight);
    assert_eq!(s.data_src, le_sample.data_src);
    assert_eq!(
        s.read.map(|r| r.values().collect::<Vec<_>>()),
        le_sample.read.map(|r| r.values().collect::<Vec<_>>())
    );
    assert_eq!(s.stack_user, le_sample.stack_user);
    assert_eq!(
        (s.ip, s.pid, s.tid, s.cpu, s.period),
        (Some(0x40_1234), Some(10), Some(11), Some(1), Some(1_000))
    );
    assert_eq!(s.raw, Some(&b"raw-payload!"[..]));
    assert_eq!(s.aux, Some(&b"aux-data"[..]));
    assert_eq!(s.regs_user.unwrap().get(2), Some(0x2222));
    assert_eq!(s.code_page_size, Some(4096));
}

#[test]
fn branch_flags_fields_keep_their_bit_order() {
    assert_eq!(records::branch_flags_big_endian(1), 1 << 63);
    // cycles (16 bits from bit 4) lands on bits 44..60 with its value intact.
    assert_eq!(records::branch_flags_big_endian(0xffff << 4), 0xffff << 44);
    assert_eq!(records::branch_flags_big_endian(0x8000 << 4), 0x8000 << 44);
}

#[test]
fn samples_find_their_attr_by_identifier() {
    let one = AttrSpec {
        sample_type: st::IDENTIFIER | st::IP | st::TID | st::TIME,
        flags: attr_flag::SAMPLE_ID_ALL,
        ..AttrSpec::default()
    };
    let two = AttrSpec {
        sample_type: st::IDENTIFIER | st::IP | st::TIME | st::CALLCHAIN | st::CPU,
        flags: attr_flag::SAMPLE_ID_ALL,
        config: 2,
        ..AttrSpec::default()
    };
    let build = |e: Endian| {
        let mut r = RecordBuilder::new(e);
        r.record(rk::COMM, 0, |b| {
            // Trailer of attr `one`: pid/tid, time, identifier.
            b.u32(1).u32(2).cstr(b"x").u32(1).u32(2).u64(50).u64(11);
        });
        r.record(rk::SAMPLE, 2, |b| {
            b.u64(22)
                .u64(0x1000)
                .u64(60)
                .u32(3)
                .u32(0)
                .u64(1)
                .u64(0x1000);
        });
        r.record(rk::SAMPLE, 2, |b| {
            b.u64(11).u64(0x2000).u32(1).u32(2).u64(70);
        });
        FileBuilder::new(e)
            .attr(one.clone(), &[11])
            .attr(two.clone(), &[22])
            .records(&r.into_bytes())
            .build_file()
    };
    let le = build(Endian::Little);
    assert_eq!(to_big_endian(&le).unwrap(), build(Endian::Big));
    assert_eq!(seen(&to_big_endian(&le).unwrap()), seen(&le));
}

/// An EVENT_DESC payload naming each `(spec, name, ids)`.
fn event_desc(endian: Endian, events: &[(AttrSpec, &str, &[u64])]) -> Vec<u8> {
    let mut b = RecordBuilder::new(endian);
    b.u32(events.len() as u32).u32(events[0].0.size);
    let mut out = b.into_bytes();
    for (spec, name, ids) in events {
        out.extend(spec.to_bytes(endian));
        let mut rest = RecordBuilder::new(endian);
        rest.u32(ids.len() as u32);
        out.extend(rest.into_bytes());
        out.extend(feature_string(endian, name));
        let mut id_bytes = RecordBuilder::new(endian);
        for &id in *ids {
            id_bytes.u64(id);
        }
        out.extend(id_bytes.into_bytes());
    }
    out
}

#[test]
fn attr_padding_grows_event_desc_attrs_too() {
    for endian in [Endian::Little, Endian::Big] {
        let other = AttrSpec {
            config: 2,
            ..spec()
        };
        let desc = event_desc(
            endian,
            &[
                (spec(), "first:u", &[7]),
                (other.clone(), "second", &[8, 9]),
            ],
        );
        let original = FileBuilder::new(endian)
            .attr(spec(), &[7])
            .attr(other, &[8, 9])
            .records(&records(endian))
            .feature(feat::HOSTNAME, feature_string(endian, "host"))
            .feature(feat::EVENT_DESC, desc)
            .feature(
                feat::CLOCKID,
                RecordBuilder::new(endian).u64(1).clone().into_bytes(),
            )
            .build_file();
        let padded = with_attr_padding(&original, 64).unwrap();
        assert_eq!(padded.len(), original.len() + 4 * 64);
        let f = PerfFile::parse(&padded).unwrap();
        let names: Vec<&str> = f.attrs().iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["first:u", "second"]);
        let desc = &f.features().event_desc;
        assert_eq!(desc.len(), 2);
        assert_eq!(desc[1].ids, vec![8, 9]);
        assert_eq!(desc[1].attr.size, 128 + 64);
        assert_eq!(desc[1].attr.extra_bytes, 128 + 64 - 136);
        assert_eq!(
            f.features().clockid_res_ns,
            Some(1),
            "sections after EVENT_DESC moved"
        );
        assert_eq!(f.features().hostname.as_deref(), Some("host"));
        assert!(
            !f.notes()
                .iter()
                .any(|n| matches!(n, Note::FeatureError { .. })),
            "{:?}",
            f.notes()
        );
        // And the big-endian copy of a file with EVENT_DESC is what a big-endian perf writes.
        if endian == Endian::Little {
            let be_desc = event_desc(
                Endian::Big,
                &[
                    (spec(), "first:u", &[7]),
                    (
                        AttrSpec {
                            config: 2,
                            ..spec()
                        },
                        "second",
                        &[8, 9],
                    ),
                ],
            );
            let be = FileBuilder::new(Endian::Big)
                .attr(spec(), &[7])
                .attr(
                    AttrSpec {
                        config: 2,
                        ..spec()
                    },
                    &[8, 9],
                )
                .records(&records(Endian::Big))
                .feature(feat::HOSTNAME, feature_string(Endian::Big, "host"))
                .feature(feat::EVENT_DESC, be_desc)
                .feature(
                    feat::CLOCKID,
                    RecordBuilder::new(Endian::Big).u64(1).clone().into_bytes(),
                )
                .build_file();
            assert_eq!(to_big_endian(&original).unwrap(), be);
        }
    }
}
