//! Property tests of the order-preserving tuple encoding.
#![allow(clippy::unwrap_used)]

use std::cmp::Ordering;
use std::ops::Bound;

use bytes::Bytes;
use proptest::prelude::*;
use storage_core::tuple::{
    self, bytes_prefix_scan, compare, pack, prefix_scan, range_scan, string_prefix_scan, unpack,
    Element,
};

// ------------------------------------------------------------ generators

/// Floats biased to the edge cases: NaNs of every sign and payload, both
/// zeros, infinities, subnormals, plus arbitrary bit patterns.
fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        3 => prop::sample::select(vec![
            f64::NAN,
            -f64::NAN,
            f64::from_bits(0x7FF0_0000_0000_0001), // signalling NaN
            f64::from_bits(0xFFFF_FFFF_FFFF_FFFF),
            0.0,
            -0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1.0,
            -1.0,
            0.5,
            f64::MIN_POSITIVE,
            -f64::MIN_POSITIVE,
            f64::from_bits(1), // smallest subnormal
            f64::from_bits(0x8000_0000_0000_0001),
            f64::MAX,
            f64::MIN,
        ]),
        1 => any::<u64>().prop_map(f64::from_bits),
    ]
}

fn int() -> impl Strategy<Value = Element> {
    prop_oneof![
        3 => prop::sample::select(vec![
            i64::MIN, i64::MIN + 1, -65536, -65535, -256, -255, -1, 0, 1, 255, 256, 65535,
            65536, i64::MAX - 1, i64::MAX,
        ])
        .prop_map(Element::Int),
        2 => (-3i64..=3).prop_map(Element::Int),
        1 => any::<i64>().prop_map(Element::Int),
        // UInt: both the non-normal small ones and the big ones.
        2 => prop::sample::select(vec![
            0u64, 1, 3, 255, i64::MAX as u64, i64::MAX as u64 + 1, u64::MAX - 1, u64::MAX,
        ])
        .prop_map(Element::UInt),
        1 => any::<u64>().prop_map(Element::UInt),
    ]
}

/// Bytes from a small alphabet (so prefixes and equal values are common)
/// that includes the escape-relevant bytes 0x00 and 0xFF.
fn raw_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => prop::collection::vec(prop::sample::select(vec![0x00u8, 0x01, 0xFE, 0xFF, b'a']), 0..4),
        1 => prop::collection::vec(any::<u8>(), 0..8),
    ]
}

fn string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::collection::vec(
            prop::sample::select(vec!['\0', 'a', 'b', '\u{7f}', '\u{ff}', 'é', '\u{10FFFF}']),
            0..4
        )
        .prop_map(|cs| cs.into_iter().collect()),
        1 => any::<String>(),
    ]
}

fn leaf() -> impl Strategy<Value = Element> {
    prop_oneof![
        1 => Just(Element::Null),
        1 => any::<bool>().prop_map(Element::Bool),
        3 => raw_bytes().prop_map(|b| Element::Bytes(Bytes::from(b))),
        3 => string().prop_map(Element::String),
        4 => int(),
        3 => float().prop_map(Element::Float),
    ]
}

fn element() -> impl Strategy<Value = Element> {
    leaf().prop_recursive(3, 24, 4, |inner| {
        prop::collection::vec(inner, 0..4).prop_map(Element::Nested)
    })
}

fn tuple_of(max: usize) -> impl Strategy<Value = Vec<Element>> {
    prop::collection::vec(element(), 0..max)
}

/// Two tuples that often share a prefix: `base ++ x` and
/// `base[..cut] ++ y`.
fn related_pair() -> impl Strategy<Value = (Vec<Element>, Vec<Element>)> {
    (tuple_of(4), tuple_of(3), tuple_of(3), 0usize..5).prop_map(|(base, x, y, cut)| {
        let cut = cut.min(base.len());
        let mut a = base.clone();
        a.extend(x);
        let mut b = base[..cut].to_vec();
        b.extend(y);
        (a, b)
    })
}

// ------------------------------------------------------------ helpers

/// Structural equality: same variants, float bits identical.
fn same(a: &Element, b: &Element) -> bool {
    match (a, b) {
        (Element::Null, Element::Null) => true,
        (Element::Bytes(x), Element::Bytes(y)) => x == y,
        (Element::String(x), Element::String(y)) => x == y,
        (Element::Int(x), Element::Int(y)) => x == y,
        (Element::UInt(x), Element::UInt(y)) => x == y,
        (Element::Float(x), Element::Float(y)) => x.to_bits() == y.to_bits(),
        (Element::Bool(x), Element::Bool(y)) => x == y,
        (Element::Nested(x), Element::Nested(y)) => same_tuple(x, y),
        _ => false,
    }
}

fn same_tuple(a: &[Element], b: &[Element]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y))
}

fn normalized(t: &[Element]) -> Vec<Element> {
    tuple::normalize(t.to_vec())
}

/// Does `tail` satisfy a range_scan start/end bound (documented semantics:
/// the first `bound.len()` elements of the tail compared with the bound)?
fn admits_start(tail: &[Element], start: Bound<&[Element]>) -> bool {
    match start {
        Bound::Unbounded => true,
        Bound::Included(a) => compare(&tail[..a.len().min(tail.len())], a) != Ordering::Less,
        Bound::Excluded(a) => compare(&tail[..a.len().min(tail.len())], a) == Ordering::Greater,
    }
}

fn admits_end(tail: &[Element], end: Bound<&[Element]>) -> bool {
    match end {
        Bound::Unbounded => true,
        Bound::Included(b) => compare(&tail[..b.len().min(tail.len())], b) != Ordering::Greater,
        Bound::Excluded(b) => compare(&tail[..b.len().min(tail.len())], b) == Ordering::Less,
    }
}

fn starts_with(t: &[Element], prefix: &[Element]) -> bool {
    t.len() >= prefix.len() && compare(&t[..prefix.len()], prefix) == Ordering::Equal
}

fn bound_of(kind: u8, v: &[Element]) -> Bound<&[Element]> {
    match kind % 3 {
        0 => Bound::Unbounded,
        1 => Bound::Included(v),
        _ => Bound::Excluded(v),
    }
}

// ------------------------------------------------------------ properties

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// (1) Byte order of encodings is the semantic order.
    #[test]
    fn order_is_preserved((a, b) in related_pair()) {
        let pa = pack(&a);
        let pb = pack(&b);
        prop_assert_eq!(compare(&a, &b), pa.cmp(&pb), "a={:?} b={:?}", a, b);
        // Antisymmetry of the semantic order itself.
        prop_assert_eq!(compare(&a, &b), compare(&b, &a).reverse());
    }

    /// (1b) Same, element by element (single-element tuples), where the
    /// cross-type and Int/UInt cases are dense.
    #[test]
    fn element_order_is_preserved(a in element(), b in element()) {
        let pa = pack(std::slice::from_ref(&a));
        let pb = pack(std::slice::from_ref(&b));
        prop_assert_eq!(a.cmp(&b), pa.cmp(&pb), "a={:?} b={:?}", a, b);
        prop_assert_eq!(a == b, pa == pb);
    }

    /// (2) Decoding inverts encoding up to the normal form, exactly.
    #[test]
    fn roundtrip(t in tuple_of(6)) {
        let packed = pack(&t);
        let back = unpack(&packed).unwrap();
        let norm = normalized(&t);
        prop_assert!(same_tuple(&back, &norm), "t={:?} back={:?}", t, back);
        prop_assert!(back.iter().all(Element::is_normal));
        prop_assert_eq!(pack(&back), packed);
    }

    /// (3) Arbitrary bytes never panic; what decodes is canonical.
    #[test]
    fn arbitrary_bytes_are_safe(bytes in prop_oneof![
        prop::collection::vec(any::<u8>(), 0..40),
        // Bytes made mostly of type codes and escape-relevant values,
        // so that decoding gets deep more often.
        prop::collection::vec(prop::sample::select(vec![
            0x00u8, 0x01, 0x02, 0x05, 0x0C, 0x13, 0x14, 0x15, 0x1C, 0x21, 0x26, 0x27, 0xFF, 0x61,
        ]), 0..40),
    ]) {
        if let Ok(t) = unpack(&bytes) {
            prop_assert_eq!(pack(&t), bytes);
            prop_assert!(t.iter().all(Element::is_normal));
        }
    }

    /// (3b) Valid encodings with one byte changed, inserted or removed.
    #[test]
    fn mutated_encodings_are_safe(t in tuple_of(5), pos in any::<prop::sample::Index>(), byte in any::<u8>(), op in 0u8..3) {
        let mut bytes = pack(&t);
        if !bytes.is_empty() {
            let i = pos.index(bytes.len());
            match op {
                0 => bytes[i] = byte,
                1 => bytes.insert(i, byte),
                _ => { bytes.remove(i); }
            }
        }
        match unpack(&bytes) {
            Ok(back) => prop_assert_eq!(pack(&back), bytes),
            Err(e) => prop_assert!(e.offset() <= bytes.len()),
        }
    }

    /// (4) pack(prefix) is a byte prefix of pack(prefix ++ suffix), and
    /// that key lies within prefix_scan(prefix).
    #[test]
    fn prefix_property(prefix in tuple_of(4), suffix in tuple_of(4), other in tuple_of(4)) {
        let p = pack(&prefix);
        let mut full = prefix.clone();
        full.extend(suffix);
        let pf = pack(&full);
        prop_assert!(pf.starts_with(&p));
        let scan = prefix_scan(&prefix);
        prop_assert!(scan.contains(&pf));
        // A key is in the scan exactly when its tuple starts with the prefix.
        let po = pack(&other);
        if !po.is_empty() {
            prop_assert_eq!(scan.contains(&po), starts_with(&other, &prefix), "other={:?}", other);
        }
    }

    /// range_scan selects exactly the keys its documentation promises.
    #[test]
    fn range_scan_matches_semantics(
        prefix in tuple_of(3),
        (lo, hi) in related_pair(),
        tail in tuple_of(3),
        (sk, ek) in (any::<u8>(), any::<u8>()),
        cut in 0usize..4,
    ) {
        let start = bound_of(sk, &lo[..lo.len().min(2)]);
        let end = bound_of(ek, &hi[..hi.len().min(2)]);
        let scan = range_scan(&prefix, start, end);
        // Keys: prefix ++ tail, and keys with only part of the prefix.
        let mut key = prefix.clone();
        key.extend(tail.iter().cloned());
        let mut partial = prefix[..cut.min(prefix.len())].to_vec();
        partial.extend(tail.iter().cloned());
        for k in [key, partial] {
            let packed = pack(&k);
            if packed.is_empty() {
                continue; // keys are non-empty
            }
            let expected = starts_with(&k, &prefix)
                && admits_start(&k[prefix.len()..], start)
                && admits_end(&k[prefix.len()..], end);
            prop_assert_eq!(scan.contains(&packed), expected, "k={:?} start={:?} end={:?}", k, start, end);
            if expected {
                prop_assert!(prefix_scan(&prefix).contains(&packed));
            }
        }
    }

    /// begins_with scans select exactly the keys whose next element is a
    /// string / bytes starting with the partial value.
    #[test]
    fn begins_with_matches_semantics(
        prefix in tuple_of(2),
        s in string(),
        partial in string(),
        b in raw_bytes(),
        bpartial in raw_bytes(),
        rest in tuple_of(2),
    ) {
        let mut k = prefix.clone();
        k.push(Element::String(s.clone()));
        k.extend(rest.iter().cloned());
        prop_assert_eq!(string_prefix_scan(&prefix, &partial).contains(&pack(&k)), s.starts_with(&partial));
        prop_assert!(!bytes_prefix_scan(&prefix, &[]).contains(&pack(&k)));

        let mut k = prefix.clone();
        k.push(Element::Bytes(Bytes::from(b.clone())));
        k.extend(rest);
        prop_assert_eq!(bytes_prefix_scan(&prefix, &bpartial).contains(&pack(&k)), b.starts_with(&bpartial));
        prop_assert!(!string_prefix_scan(&prefix, "").contains(&pack(&k)));
    }
}

// ------------------------------------------------------------ examples

#[test]
fn float_order_edge_cases() {
    let ordered = [
        f64::NEG_INFINITY,
        f64::MIN,
        -1.0,
        -f64::MIN_POSITIVE,
        -f64::from_bits(1),
        -0.0,
        0.0,
        f64::from_bits(1),
        f64::MIN_POSITIVE,
        1.0,
        f64::MAX,
        f64::INFINITY,
        f64::NAN,
    ];
    for w in ordered.windows(2) {
        let a = pack(&[w[0].into()]);
        let b = pack(&[w[1].into()]);
        assert!(a < b, "{} !< {}", w[0], w[1]);
    }
    // Every NaN packs identically and decodes to the canonical NaN.
    let nans = [
        f64::NAN,
        -f64::NAN,
        f64::from_bits(0x7FF0_0000_0000_0001),
        f64::from_bits(0xFFF0_0000_0000_0001),
    ];
    for n in nans {
        assert_eq!(
            pack(&[Element::Float(n)]),
            pack(&[Element::Float(f64::NAN)])
        );
        let back = unpack(&pack(&[Element::Float(n)])).unwrap();
        assert_eq!(
            back[0].as_f64().unwrap().to_bits(),
            tuple::CANONICAL_NAN_BITS
        );
    }
}

#[test]
fn integer_order_edge_cases() {
    let ordered = [
        Element::Int(i64::MIN),
        Element::Int(i64::MIN + 1),
        Element::Int(-65536),
        Element::Int(-65535),
        Element::Int(-256),
        Element::Int(-255),
        Element::Int(-1),
        Element::Int(0),
        Element::UInt(1),
        Element::Int(255),
        Element::Int(256),
        Element::Int(i64::MAX),
        Element::UInt(i64::MAX as u64 + 1),
        Element::UInt(u64::MAX),
    ];
    for w in ordered.windows(2) {
        assert!(pack(&w[..1]) < pack(&w[1..]), "{:?} !< {:?}", w[0], w[1]);
        assert_eq!(compare(&w[..1], &w[1..]), Ordering::Less);
    }
}

#[test]
fn type_order() {
    let ordered: Vec<Element> = vec![
        Element::Null,
        Element::Bytes(Bytes::from_static(b"\xff")),
        Element::String(String::new()),
        Element::Nested(vec![]),
        Element::Int(i64::MIN),
        Element::UInt(u64::MAX),
        Element::Float(f64::NEG_INFINITY),
        Element::Float(f64::NAN),
        Element::Bool(false),
        Element::Bool(true),
    ];
    for w in ordered.windows(2) {
        assert!(pack(&w[..1]) < pack(&w[1..]), "{:?} !< {:?}", w[0], w[1]);
    }
}

#[test]
fn prefix_sorts_first_including_nested_nulls() {
    let cases: Vec<(Vec<Element>, Vec<Element>)> = vec![
        (vec!["a".into()], vec!["a".into(), Element::Null]),
        (
            vec![Element::Nested(vec![])],
            vec![Element::Nested(vec![Element::Null])],
        ),
        (
            vec![Element::Nested(vec!["a".into()])],
            vec![Element::Nested(vec!["a".into(), Element::Null])],
        ),
        (vec!["a".into()], vec!["a\0".into()]),
        (vec![b"a".to_vec().into()], vec![b"a\x00".to_vec().into()]),
        (vec!["a".into(), Element::Null], vec!["a\0".into()]),
    ];
    for (a, b) in cases {
        assert!(pack(&a) < pack(&b), "{a:?} !< {b:?}");
        assert_eq!(compare(&a, &b), Ordering::Less);
        assert_eq!(unpack(&pack(&b)).unwrap(), b);
    }
}
