//! PERF_SAMPLE_CGROUP in samples, PERF_RECORD_CGROUP records read and written, and the cgroup
//! id → path table, on files built by the test builders.
#![allow(clippy::unwrap_used)]

use kprof_perfdata::cgroups::{CgroupNames, UNKNOWN_CGROUP};
use kprof_perfdata::kinds::{attr_flag, misc, record as rk, sample as st};
use kprof_perfdata::{Endian, PerfFile, Record};
use kprof_test_support::{AttrSpec, FileBuilder, RecordBuilder};
#[test]
fn cgroup_records_name_sample_ids() {
    for endian in [Endian::Little, Endian::Big] {
        let sample_type = st::IP | st::TID | st::TIME | st::CGROUP;
        let spec = AttrSpec {
            sample_type,
            flags: attr_flag::SAMPLE_ID_ALL,
            ..AttrSpec::default()
        };
        let mut r = RecordBuilder::new(endian);
        // Synthesized: path padded to 8 bytes, then the sample_id trailer (tid, time).
        r.record(rk::CGROUP, 0, |b| {
            b.u64(1).cstr(b"/").u32(0).u32(0).u64(0);
        });
        r.record(rk::CGROUP, 0, |b| {
            b.u64(4242).cstr(b"/kprof/a").u32(0).u32(0).u64(0);
        });
        r.record(rk::SAMPLE, misc::CPUMODE_MASK & 2, |b| {
            b.u64(0x1000).u32(1).u32(1).u64(10).u64(4242);
        });
        r.record(rk::SAMPLE, misc::CPUMODE_MASK & 2, |b| {
            b.u64(0x1000).u32(1).u32(1).u64(11).u64(77);
        });
        let bytes = FileBuilder::new(endian)
            .attr(spec, &[7])
            .records(&r.into_bytes())
            .build_file();
        let file = PerfFile::parse(&bytes).unwrap();
        let names = CgroupNames::from_file(&file).unwrap();
        assert_eq!(names.len(), 2);
        assert_eq!(names.path(1), Some("/"));
        let mut labels = Vec::new();
        for event in file.records() {
            if let Record::Sample(s) = event.unwrap().record {
                labels.push(names.label(s.cgroup).to_owned());
            }
        }
        assert_eq!(labels, ["/kprof/a", UNKNOWN_CGROUP]);
        assert_eq!(names.label(None), UNKNOWN_CGROUP);
        assert_eq!(
            names.iter().collect::<Vec<_>>(),
            [(1, "/"), (4242, "/kprof/a")]
        );
    }
}

#[test]
fn written_cgroup_records_read_back() {
    use kprof_perfdata::writer::{RecordWriter, SampleIdLayout, Writer, WriterAttr, encode_cgroup};
    let sample_type = st::IP | st::TID | st::TIME | st::IDENTIFIER | st::CGROUP;
    let spec = AttrSpec {
        sample_type,
        flags: attr_flag::SAMPLE_ID_ALL,
        ..AttrSpec::default()
    };
    let attr = WriterAttr {
        attr: spec.to_bytes(if cfg!(target_endian = "big") {
            Endian::Big
        } else {
            Endian::Little
        }),
        ids: vec![9],
        name: "cpu-clock".to_owned(),
    };
    let layout = SampleIdLayout::new(sample_type);
    let sid = kprof_perfdata::SampleId {
        id: Some(9),
        ..kprof_perfdata::SampleId::default()
    };
    let mut writer = Writer::new(std::io::Cursor::new(Vec::new()), vec![attr]).unwrap();
    // Path lengths around the 8-byte padding boundary.
    let paths: [&[u8]; 4] = [b"/", b"/1234567", b"/12345678", b"/a/b/c"];
    for (id, path) in (1..).zip(paths) {
        writer
            .write_record(&encode_cgroup(&layout, id, path, &sid))
            .unwrap();
    }
    let bytes = writer
        .finish(&kprof_perfdata::Features::default())
        .unwrap()
        .into_inner();
    let file = PerfFile::parse(&bytes).unwrap();
    let mut seen = Vec::new();
    for event in file.records() {
        let event = event.unwrap();
        if let Record::Cgroup(c) = event.record {
            assert_eq!(event.sample_id.id, Some(9));
            seen.push((c.id, c.path.to_vec()));
        }
    }
    let want: Vec<(u64, Vec<u8>)> = (1..).zip(paths.iter().map(|p| p.to_vec())).collect();
    assert_eq!(seen, want);
}

/// PERF_SAMPLE_CGROUP sits after PHYS_ADDR and before DATA_PAGE_SIZE, CODE_PAGE_SIZE and AUX
/// (`perf_output_sample` in kernel/events/core.c), whatever else is set.
#[test]
fn sample_cgroup_position_among_other_bits() {
    /// A `sample_type` and the body it lays out, with 4242 as the cgroup id.
    type Case<'a> = (u64, &'a dyn Fn(&mut RecordBuilder));
    let cases: [Case<'_>; 3] = [
        // perf record --all-cgroups -g: IDENTIFIER IP TID TIME CPU PERIOD CALLCHAIN CGROUP.
        (
            st::IDENTIFIER
                | st::IP
                | st::TID
                | st::TIME
                | st::CPU
                | st::PERIOD
                | st::CALLCHAIN
                | st::CGROUP,
            &|b| {
                b.u64(7)
                    .u64(0x1000)
                    .u32(5)
                    .u32(6)
                    .u64(100)
                    .u32(1)
                    .u32(0)
                    .u64(1);
                b.u64(2).u64(0x1000).u64(0x2000).u64(4242);
            },
        ),
        // Between REGS_INTR / PHYS_ADDR and DATA_PAGE_SIZE / CODE_PAGE_SIZE / AUX.
        (
            st::IP
                | st::REGS_INTR
                | st::PHYS_ADDR
                | st::CGROUP
                | st::DATA_PAGE_SIZE
                | st::CODE_PAGE_SIZE
                | st::AUX,
            &|b| {
                b.u64(0x1000).u64(2).u64(0xdd).u64(0xbeef).u64(4242);
                b.u64(4096).u64(8192).u64(8).bytes(&[1; 8]);
            },
        ),
        // After a copied user stack and WEIGHT, with RAW before them.
        (
            st::TID | st::RAW | st::STACK_USER | st::WEIGHT | st::CGROUP,
            &|b| {
                b.u32(5).u32(6).u32(4).bytes(&[1, 2, 3, 4]);
                b.u64(8).bytes(&[9; 8]).u64(8).u64(55).u64(4242);
            },
        ),
    ];
    for (sample_type, body) in cases {
        let spec = AttrSpec {
            sample_type,
            sample_regs_intr: 0b1,
            sample_stack_user: 8,
            ..AttrSpec::default()
        };
        let mut r = RecordBuilder::new(Endian::Little);
        r.record(rk::SAMPLE, 2, body);
        let bytes = FileBuilder::new(Endian::Little)
            .attr(spec, &[7])
            .records(&r.into_bytes())
            .build_file();
        let file = PerfFile::parse(&bytes).unwrap();
        let sample = file
            .records()
            .find_map(|e| match e.unwrap().record {
                Record::Sample(s) => Some(s),
                _ => None,
            })
            .unwrap();
        assert_eq!(sample.cgroup, Some(4242), "sample_type {sample_type:#x}");
    }
}
