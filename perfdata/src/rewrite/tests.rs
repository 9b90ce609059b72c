//! Unit tests of the rewrite tools on synthetic files built by [`crate::test_util`], which encodes
//! either byte order on its own: the big-endian build of a file is the oracle for [`to_big_endian`].

use super::*;
use crate::kinds::{attr_flag, misc, sample as st};
use crate::test_util::{AttrSpec, FileBuilder, RecordBuilder, feature_string};
use crate::{Note, PerfFile, Record};

const SAMPLE_TYPE: u64 = st::IP | st::TID | st::TIME | st::ID | st::CPU | st::PERIOD | st::CALLCHAIN;

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

/// The same records in `endian`.
fn records(endian: Endian) -> Vec<u8> {
    let mut r = RecordBuilder::new(endian);
    r.record(rk::COMM, misc::COMM_EXEC, |b| {
        b.u32(10).u32(11).cstr(b"work");
        trailer(b, 100);
    });
    r.record(rk::MMAP2, 2, |b| {
        b.u32(10).u32(11).u64(0x40_0000).u64(0x1000).u64(0);
        b.u32(8).u32(1).u64(1234).u64(5).u32(5).u32(2).cstr(b"/bin/work");
        trailer(b, 101);
    });
    r.record(rk::FORK, 0, |b| {
        b.u32(12).u32(10).u32(12).u32(11).u64(102);
        trailer(b, 102);
    });
    r.record(rk::SAMPLE, 2, |b| {
        b.u64(0x40_1234).u32(10).u32(11).u64(103).u64(7).u32(1).u32(0).u64(1_001_000);
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

/// What a reader sees: attrs (without sizes) and every record, rendered.
fn seen(bytes: &[u8]) -> (Vec<(u64, u64, bool, Vec<u64>)>, Vec<String>) {
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
                Record::ThreadMap(m) => format!("threads {:?}", (0..m.len()).map(|i| m.get(i)).collect::<Vec<_>>()),
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
    assert_eq!(parsed.features().cmdline, Some(vec!["perf".into(), "record".into()]));
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
    assert_eq!(seen(&le), seen(&file(Endian::Little, &records(Endian::Little))));
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
        b.u64(1).u32(10).u32(11).u64(103).u64(7).u32(1).u32(0).u64(1).u64(0).u64(99);
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
        .attr(AttrSpec { config: 2, ..spec() }, &[8])
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
    assert!(matches!(to_big_endian(&pipe), Err(RewriteError::NotFileMode(_))));
    assert!(matches!(with_attr_padding(&pipe, 8), Err(RewriteError::NotFileMode(_))));
    assert!(matches!(
        with_unknown_record(b"garbage!", 200, 8),
        Err(RewriteError::NotFileMode(_))
    ));
    let le = file(Endian::Little, &records(Endian::Little));
    for cut in [20, 120, 300, le.len() - 4] {
        let _ = to_big_endian(&le[..cut]);
        let _ = with_attr_padding(&le[..cut], 8);
        let _ = with_unknown_record(&le[..cut], 50, 8);
    }
}
