//! `perf_event_attr` parsing of every layout version, on attrs encoded by the test builders.
#![allow(clippy::unwrap_used)]

use kprof_perfdata::kinds::attr_flag as flag;
use kprof_perfdata::{ATTR_SIZE_KNOWN, Endian, Error, EventAttr};
use kprof_test_support::AttrSpec;

#[test]
fn parses_known_fields_and_names() {
    let spec = AttrSpec {
        kind: 1,
        config: 0,
        sample_type: 0x107,
        flags: flag::FREQ | flag::SAMPLE_ID_ALL | flag::EXCLUDE_KERNEL,
        sample_period_or_freq: 999,
        ..AttrSpec::default()
    };
    for endian in [Endian::Little, Endian::Big] {
        let bytes = spec.to_bytes(endian);
        let a = EventAttr::parse(&bytes, 0, endian).unwrap();
        assert_eq!(a.kind, 1);
        assert_eq!(a.sample_type, 0x107);
        assert!(a.freq && a.sample_id_all && a.exclude_kernel && !a.exclude_user);
        assert_eq!(a.sample_period_or_freq, 999);
        assert_eq!(a.name, "cpu-clock:u");
        assert_eq!(a.size, ATTR_SIZE_KNOWN as u32);
        assert_eq!(a.extra_bytes, 0);
        // 0x107 has PERIOD: samples carry their weight; at a frequency there is no fixed one.
        assert_eq!(a.fixed_period(), None);
        assert!(!a.period_unknown());
    }
}

// See: issue #10 point 1
#[test]
fn fixed_period_is_the_weight_only_without_freq() {
    let fixed = AttrSpec {
        kind: 1,
        sample_type: 0x7, // IP|TID|TIME, no PERIOD: `perf record -c 10000`
        sample_period_or_freq: 10_000,
        ..AttrSpec::default()
    };
    let a = EventAttr::parse(&fixed.to_bytes(Endian::Little), 0, Endian::Little).unwrap();
    assert_eq!(a.fixed_period(), Some(10_000));
    assert!(!a.period_unknown());
    let by_frequency = AttrSpec {
        flags: flag::FREQ,
        ..fixed.clone()
    };
    let a = EventAttr::parse(&by_frequency.to_bytes(Endian::Little), 0, Endian::Little).unwrap();
    assert_eq!(a.fixed_period(), None);
    assert!(a.period_unknown());
}

#[test]
fn smaller_and_larger_attrs() {
    let spec = AttrSpec {
        kind: 0,
        config: 1,
        sample_regs_user: 0xff,
        size: 72,
        ..AttrSpec::default()
    };
    let bytes = spec.to_bytes(Endian::Little);
    assert_eq!(bytes.len(), 72);
    let a = EventAttr::parse(&bytes, 0, Endian::Little).unwrap();
    assert_eq!(a.name, "instructions");
    assert_eq!(a.sample_regs_user, 0, "VER1 has no sample_regs_user");

    let big = AttrSpec { size: 160, ..spec };
    let bytes = big.to_bytes(Endian::Little);
    let a = EventAttr::parse(&bytes, 0, Endian::Little).unwrap();
    assert_eq!(a.sample_regs_user, 0xff);
    assert_eq!(a.extra_bytes, 24);

    assert!(matches!(
        EventAttr::parse(&[0u8; 40], 0x30, Endian::Little),
        Err(Error::BadAttrSize {
            offset: 0x30,
            size: 40
        })
    ));
}

#[test]
fn tracepoint_fallback_name() {
    let a = EventAttr {
        kind: 2,
        config: 312,
        ..EventAttr::default()
    };
    assert_eq!(a.derived_name(), "tracepoint:312");
}
