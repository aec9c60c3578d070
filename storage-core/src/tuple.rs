//! Order-preserving tuple encoding for composite keys.
//!
//! A key built from several typed parts — a partition key and a sort key,
//! say — is [`pack`]ed into bytes whose **unsigned byte order is the order
//! of the tuples** ([`compare`]). Every backend scans in unsigned byte
//! order, so "partition = X and sort between A and B" is one byte-range
//! scan everywhere ([`range_scan`]), and "partition = X" is one range scan
//! ([`prefix_scan`]).
//!
//! The format is modelled on the FoundationDB tuple layer and uses its type
//! codes for the types it shares; see the table below for what this crate
//! supports and how it treats NaN. It is not tested against an FDB binding,
//! so treat FDB compatibility as a hint, not a promise.
//!
//! # Format
//!
//! A packed tuple is the concatenation of its elements' encodings. Each
//! element starts with a one-byte type code:
//!
//! | code | element | payload |
//! |---|---|---|
//! | `0x00` | [`Element::Null`] | none (inside a nested tuple: `0x00 0xFF`) |
//! | `0x01` | [`Element::Bytes`] | the bytes, each `0x00` written `0x00 0xFF`, then a `0x00` terminator |
//! | `0x02` | [`Element::String`] | the UTF-8 bytes, escaped and terminated like bytes |
//! | `0x05` | [`Element::Nested`] | the elements' encodings (nulls as `0x00 0xFF`), then a `0x00` terminator |
//! | `0x0C`..=`0x13` | negative integer | `0x14 - n`, then the one's complement of the magnitude's `n` big-endian bytes (`n` = 8..=1, minimal) |
//! | `0x14` | integer zero | none |
//! | `0x15`..=`0x1C` | positive integer | `0x14 + n`, then the value's `n` big-endian bytes (`n` = 1..=8, minimal) |
//! | `0x21` | [`Element::Float`] | the IEEE-754 bits, big-endian: sign bit flipped if the sign is clear, all bits flipped if it is set |
//! | `0x26` | `Bool(false)` | none |
//! | `0x27` | `Bool(true)` | none |
//!
//! No type code is `0xFF`, which is what makes the `0x00 0xFF` escape
//! unambiguous. Integers cover `i64::MIN..=u64::MAX` in one type.
//!
//! # Order
//!
//! [`compare`] is the order the bytes follow:
//!
//! - Tuples compare element by element, left to right; a tuple that is a
//!   proper prefix of another sorts first (`(1) < (1, 0)`).
//! - Elements of different types compare by type, in this order:
//!   **null < bytes < string < nested tuple < integer < float < bool**.
//!   Integers never compare equal to floats: `Int(1) < Float(0.5)`.
//! - Bytes and strings compare lexicographically by their (UTF-8) bytes,
//!   shorter-prefix first — for strings that is code-point order.
//! - Integers compare numerically: [`Element::Int`] and [`Element::UInt`]
//!   are one numeric type, so `UInt(5)` equals `Int(5)` and
//!   `Int(-1) < UInt(u64::MAX)`.
//! - Floats follow the IEEE-754 total order:
//!   `-inf < negatives < -0.0 < +0.0 < positives < +inf < NaN`.
//!   `-0.0` and `+0.0` are **distinct** (different bytes, `-0.0` first).
//!   Every NaN (any sign, any payload) is **canonicalised** to the one
//!   quiet NaN `f64::from_bits(0x7FF8_0000_0000_0000)`, which sorts after
//!   `+inf`; all NaNs are equal to each other, and [`unpack`] returns
//!   that canonical NaN.
//! - `false < true`.
//! - Nested tuples compare like tuples (so a nested tuple sorts like its
//!   elements).
//!
//! # Normal form and canonical bytes
//!
//! `pack` is injective on the *normal form* ([`Element::normalize`]):
//! `UInt(x)` with `x <= i64::MAX` becomes `Int(x)`, and every NaN becomes
//! the canonical NaN. [`unpack`] always returns the normal form, so
//! `unpack(&pack(t)) == normalize(t)` exactly (variants and float bits).
//!
//! [`unpack`] accepts only canonical bytes: integers in minimal length,
//! NaN only as the canonical NaN. Hence whenever `unpack(b)` succeeds,
//! `pack(&unpack(b)?) == b`. Malformed input is a [`TupleError`] naming the
//! byte offset, never a panic. Nesting deeper than [`MAX_NESTING_DEPTH`] is
//! rejected by `unpack` (to bound recursion on hostile input), although
//! `pack` will encode it.
//!
//! [`Element`]'s `PartialEq`, `Eq`, `Ord` and `Hash` follow this semantic
//! order, not the Rust structure: `Int(5) == UInt(5)`, NaN equals NaN and
//! `-0.0 != +0.0`.
//!
//! # Scans
//!
//! `pack(prefix ++ more)` always starts with the bytes `pack(prefix)`, but
//! not every key with those leading bytes extends the tuple: `("a\0")`
//! packs to `02 61 00 FF 00`, which starts with `02 61 00` = `("a")`
//! (likewise bytes, and nested tuples via the nested-null escape). The
//! scan helpers account for that: [`prefix_scan`] is the byte range
//! `[pack(prefix), pack(prefix) ++ [0xFF])` — a tuple extension continues
//! with a type code, never `0xFF`, while the longer element continues with
//! the escape `0xFF`. [`range_scan`] builds "prefix and tail between A and
//! B" the same way, and [`string_prefix_scan`] / [`bytes_prefix_scan`]
//! give DynamoDB's `begins_with` on a string or binary sort key. Each is one
//! [`ScanRequest`], so it pages, reverses and resumes like any other scan.
//!
//! # Example: a composite key and a range scan
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::ops::Bound;
//! use bytes::Bytes;
//! use storage_core::tuple::{self, Element};
//! use storage_core::{KvStore, PutOptions};
//!
//! let store = storage_memory::MemoryStore::new();
//! // Items keyed (partition = customer, sort = order number).
//! for (customer, order) in [("alice", 1_i64), ("alice", 7), ("alice", 42), ("bob", 5)] {
//!     let key = tuple::pack(&[customer.into(), order.into()]);
//!     store.put("orders", &key, Bytes::from_static(b"{}"), PutOptions::default()).await?;
//! }
//!
//! // partition = "alice" and 5 <= sort <= 42
//! let request = tuple::range_scan(
//!     &["alice".into()],
//!     Bound::Included(&[Element::Int(5)]),
//!     Bound::Included(&[Element::Int(42)]),
//! );
//! let page = store.scan("orders", request).await?;
//! let sorts: Vec<Element> = page
//!     .entries
//!     .iter()
//!     .map(|e| tuple::unpack(&e.key).map(|t| t[1].clone()))
//!     .collect::<Result<_, _>>()?;
//! assert_eq!(sorts, vec![Element::Int(7), Element::Int(42)]);
//!
//! // partition = "alice": every order of one customer.
//! let page = store.scan("orders", tuple::prefix_scan(&["alice".into()])).await?;
//! assert_eq!(page.entries.len(), 3);
//! # Ok(())
//! # }
//! ```

use std::cmp::Ordering;
use std::hash::{Hash, Hasher};
use std::ops::Bound;

use bytes::Bytes;

use crate::kv::ScanRequest;

/// Type code of [`Element::Null`] (and the terminator of bytes, strings
/// and nested tuples).
pub const NULL_CODE: u8 = 0x00;
/// Type code of [`Element::Bytes`].
pub const BYTES_CODE: u8 = 0x01;
/// Type code of [`Element::String`].
pub const STRING_CODE: u8 = 0x02;
/// Type code of [`Element::Nested`].
pub const NESTED_CODE: u8 = 0x05;
/// Type code of the integer zero; `ZERO_CODE ± n` for `n`-byte integers.
pub const ZERO_CODE: u8 = 0x14;
/// Type code of [`Element::Float`] (64-bit IEEE-754).
pub const FLOAT_CODE: u8 = 0x21;
/// Type code of `Bool(false)`.
pub const FALSE_CODE: u8 = 0x26;
/// Type code of `Bool(true)`.
pub const TRUE_CODE: u8 = 0x27;
/// The byte that follows `0x00` to escape it.
const ESCAPE: u8 = 0xFF;

/// Deepest nesting [`unpack`] accepts (a top-level tuple is depth 0, an
/// element of a nested tuple inside it depth 1, ...).
pub const MAX_NESTING_DEPTH: usize = 64;

/// Bits of the canonical NaN every NaN is normalised to.
pub const CANONICAL_NAN_BITS: u64 = 0x7FF8_0000_0000_0000;

const SIGN_BIT: u64 = 0x8000_0000_0000_0000;

/// One element of a tuple.
///
/// Equality, ordering and hashing are the semantic ones of the module docs
/// ([`compare`]): `Int(5) == UInt(5)`, all NaNs are equal, `-0.0 < +0.0`.
#[derive(Debug, Clone)]
pub enum Element {
    /// A null / absent part; sorts before everything.
    Null,
    /// Raw bytes.
    Bytes(Bytes),
    /// A UTF-8 string.
    String(String),
    /// A signed integer. The normal form of every integer in
    /// `i64::MIN..=i64::MAX`.
    Int(i64),
    /// An unsigned integer. Normal form only above `i64::MAX`; smaller
    /// values normalise to [`Element::Int`].
    UInt(u64),
    /// A 64-bit float (see the module docs for NaN and `-0.0`).
    Float(f64),
    /// A boolean; sorts after every other type.
    Bool(bool),
    /// A nested tuple.
    Nested(Vec<Element>),
}

impl Element {
    /// An unsigned integer in normal form: `Int` when it fits in `i64`.
    pub fn uint(value: u64) -> Element {
        match i64::try_from(value) {
            Ok(v) => Element::Int(v),
            Err(_) => Element::UInt(value),
        }
    }

    /// A float in normal form: every NaN becomes the canonical NaN.
    pub fn float(value: f64) -> Element {
        Element::Float(canonical_float(value))
    }

    /// The normal form of this element (recursively): `UInt(x)` with
    /// `x <= i64::MAX` becomes `Int(x)` and every NaN the canonical NaN.
    /// [`unpack`] returns exactly the normal form of what was packed.
    pub fn normalize(self) -> Element {
        match self {
            Element::UInt(v) => Element::uint(v),
            Element::Float(f) => Element::float(f),
            Element::Nested(items) => {
                Element::Nested(items.into_iter().map(Element::normalize).collect())
            }
            other => other,
        }
    }

    /// Whether this element is already in normal form (recursively).
    pub fn is_normal(&self) -> bool {
        match self {
            Element::UInt(v) => i64::try_from(*v).is_err(),
            Element::Float(f) => !f.is_nan() || f.to_bits() == CANONICAL_NAN_BITS,
            Element::Nested(items) => items.iter().all(Element::is_normal),
            _ => true,
        }
    }

    /// The string, if this is a string element.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Element::String(s) => Some(s),
            _ => None,
        }
    }

    /// The bytes, if this is a bytes element.
    pub fn as_bytes(&self) -> Option<&Bytes> {
        match self {
            Element::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The integer, if this is an integer that fits in `i64`.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Element::Int(v) => Some(*v),
            Element::UInt(v) => i64::try_from(*v).ok(),
            _ => None,
        }
    }

    /// The integer, if this is a non-negative integer.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Element::Int(v) => u64::try_from(*v).ok(),
            Element::UInt(v) => Some(*v),
            _ => None,
        }
    }

    /// The float, if this is a float element.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Element::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// The boolean, if this is a bool element.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Element::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The elements, if this is a nested tuple.
    pub fn as_nested(&self) -> Option<&[Element]> {
        match self {
            Element::Nested(items) => Some(items),
            _ => None,
        }
    }

    /// Rank of the type in the cross-type order.
    fn type_rank(&self) -> u8 {
        match self {
            Element::Null => 0,
            Element::Bytes(_) => 1,
            Element::String(_) => 2,
            Element::Nested(_) => 3,
            Element::Int(_) | Element::UInt(_) => 4,
            Element::Float(_) => 5,
            Element::Bool(_) => 6,
        }
    }
}

impl PartialEq for Element {
    fn eq(&self, other: &Self) -> bool {
        compare_element(self, other) == Ordering::Equal
    }
}

impl Eq for Element {}

impl PartialOrd for Element {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Element {
    fn cmp(&self, other: &Self) -> Ordering {
        compare_element(self, other)
    }
}

impl Hash for Element {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Equal elements have equal encodings (and only they do).
        let mut buf = Vec::new();
        encode_element(&mut buf, self, false);
        buf.hash(state);
    }
}

impl From<&str> for Element {
    fn from(v: &str) -> Self {
        Element::String(v.to_owned())
    }
}

impl From<String> for Element {
    fn from(v: String) -> Self {
        Element::String(v)
    }
}

impl From<&String> for Element {
    fn from(v: &String) -> Self {
        Element::String(v.clone())
    }
}

impl From<Bytes> for Element {
    fn from(v: Bytes) -> Self {
        Element::Bytes(v)
    }
}

impl From<Vec<u8>> for Element {
    fn from(v: Vec<u8>) -> Self {
        Element::Bytes(v.into())
    }
}

impl From<&[u8]> for Element {
    fn from(v: &[u8]) -> Self {
        Element::Bytes(Bytes::copy_from_slice(v))
    }
}

impl From<i64> for Element {
    fn from(v: i64) -> Self {
        Element::Int(v)
    }
}

impl From<i32> for Element {
    fn from(v: i32) -> Self {
        Element::Int(v.into())
    }
}

impl From<u32> for Element {
    fn from(v: u32) -> Self {
        Element::Int(v.into())
    }
}

impl From<u64> for Element {
    /// Normalises: `Int` when the value fits in `i64`.
    fn from(v: u64) -> Self {
        Element::uint(v)
    }
}

impl From<f64> for Element {
    /// Normalises NaN to the canonical NaN.
    fn from(v: f64) -> Self {
        Element::float(v)
    }
}

impl From<bool> for Element {
    fn from(v: bool) -> Self {
        Element::Bool(v)
    }
}

impl From<Vec<Element>> for Element {
    fn from(v: Vec<Element>) -> Self {
        Element::Nested(v)
    }
}

impl<T: Into<Element>> From<Option<T>> for Element {
    /// `None` is [`Element::Null`].
    fn from(v: Option<T>) -> Self {
        v.map_or(Element::Null, Into::into)
    }
}

/// Normalises a whole tuple ([`Element::normalize`] on each element).
pub fn normalize(elements: Vec<Element>) -> Vec<Element> {
    elements.into_iter().map(Element::normalize).collect()
}

/// What went wrong decoding a packed tuple; every variant names the byte
/// offset into the input where the problem was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TupleError {
    /// The input ended inside an element.
    #[error("truncated tuple: {what} at byte {offset} is incomplete")]
    Truncated {
        /// Offset of the element's type code.
        offset: usize,
        /// What was being read.
        what: &'static str,
    },
    /// A byte where a type code was expected is not one.
    #[error("unknown tuple type code 0x{code:02x} at byte {offset}")]
    BadTypeCode {
        /// Offset of the byte.
        offset: usize,
        /// The byte.
        code: u8,
    },
    /// A string element is not valid UTF-8.
    #[error("string at byte {offset} is not valid UTF-8")]
    InvalidUtf8 {
        /// Offset of the string's type code.
        offset: usize,
    },
    /// A negative integer's magnitude exceeds `2^63`.
    #[error("integer at byte {offset} is below i64::MIN")]
    IntegerOutOfRange {
        /// Offset of the integer's type code.
        offset: usize,
    },
    /// A value in a non-canonical encoding (an integer with a redundant
    /// leading byte, a NaN other than the canonical one): decoding it
    /// would not re-encode to the same bytes.
    #[error("non-canonical {what} at byte {offset}")]
    NonCanonical {
        /// Offset of the element's type code.
        offset: usize,
        /// What was non-canonical.
        what: &'static str,
    },
    /// Nested tuples deeper than [`MAX_NESTING_DEPTH`].
    #[error("tuple nesting at byte {offset} is deeper than {max}")]
    TooDeep {
        /// Offset of the nested tuple's type code.
        offset: usize,
        /// The limit.
        max: usize,
    },
}

impl TupleError {
    /// The byte offset the error refers to.
    pub fn offset(&self) -> usize {
        match self {
            TupleError::Truncated { offset, .. }
            | TupleError::BadTypeCode { offset, .. }
            | TupleError::InvalidUtf8 { offset }
            | TupleError::IntegerOutOfRange { offset }
            | TupleError::NonCanonical { offset, .. }
            | TupleError::TooDeep { offset, .. } => *offset,
        }
    }
}

// ---------------------------------------------------------------- order

/// The semantic total order of tuples (see the module docs); the order
/// `pack` preserves: `compare(a, b) == pack(a).cmp(&pack(b))`.
pub fn compare(a: &[Element], b: &[Element]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let o = compare_element(x, y);
        if o != Ordering::Equal {
            return o;
        }
    }
    a.len().cmp(&b.len())
}

fn compare_element(a: &Element, b: &Element) -> Ordering {
    match (a, b) {
        (Element::Null, Element::Null) => Ordering::Equal,
        (Element::Bytes(x), Element::Bytes(y)) => x[..].cmp(&y[..]),
        (Element::String(x), Element::String(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Element::Nested(x), Element::Nested(y)) => compare(x, y),
        (Element::Int(_) | Element::UInt(_), Element::Int(_) | Element::UInt(_)) => {
            int_value(a).cmp(&int_value(b))
        }
        (Element::Float(x), Element::Float(y)) => {
            canonical_float(*x).total_cmp(&canonical_float(*y))
        }
        (Element::Bool(x), Element::Bool(y)) => x.cmp(y),
        _ => a.type_rank().cmp(&b.type_rank()),
    }
}

fn int_value(e: &Element) -> i128 {
    match e {
        Element::Int(v) => i128::from(*v),
        Element::UInt(v) => i128::from(*v),
        _ => 0,
    }
}

fn canonical_float(f: f64) -> f64 {
    if f.is_nan() {
        f64::from_bits(CANONICAL_NAN_BITS)
    } else {
        f
    }
}

// ---------------------------------------------------------------- encode

/// Encodes a tuple. Byte order of the results is [`compare`] order; see the
/// module docs for the format.
pub fn pack(elements: &[Element]) -> Vec<u8> {
    let mut out = Vec::new();
    pack_into(&mut out, elements);
    out
}

/// Appends the encoding of a tuple to `out` (`pack` without allocating a
/// fresh buffer).
pub fn pack_into(out: &mut Vec<u8>, elements: &[Element]) {
    for e in elements {
        encode_element(out, e, false);
    }
}

fn encode_element(out: &mut Vec<u8>, e: &Element, nested: bool) {
    match e {
        Element::Null => {
            out.push(NULL_CODE);
            if nested {
                out.push(ESCAPE);
            }
        }
        Element::Bytes(b) => {
            out.push(BYTES_CODE);
            encode_escaped(out, b);
        }
        Element::String(s) => {
            out.push(STRING_CODE);
            encode_escaped(out, s.as_bytes());
        }
        Element::Nested(items) => {
            out.push(NESTED_CODE);
            for item in items {
                encode_element(out, item, true);
            }
            out.push(NULL_CODE);
        }
        Element::Int(v) => {
            if *v < 0 {
                encode_negative(out, v.unsigned_abs());
            } else {
                encode_non_negative(out, v.unsigned_abs());
            }
        }
        Element::UInt(v) => encode_non_negative(out, *v),
        Element::Float(f) => {
            out.push(FLOAT_CODE);
            out.extend_from_slice(&float_key(*f).to_be_bytes());
        }
        Element::Bool(b) => out.push(if *b { TRUE_CODE } else { FALSE_CODE }),
    }
}

fn encode_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    encode_escaped_body(out, bytes);
    out.push(NULL_CODE);
}

fn encode_escaped_body(out: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        out.push(b);
        if b == 0x00 {
            out.push(ESCAPE);
        }
    }
}

/// Number of significant big-endian bytes of `v` (0 for zero).
fn byte_len(v: u64) -> u8 {
    // leading_zeros <= 64, so this is 0..=8.
    let bits = 64 - v.leading_zeros();
    bits.div_ceil(8) as u8
}

fn encode_non_negative(out: &mut Vec<u8>, v: u64) {
    let n = byte_len(v);
    out.push(ZERO_CODE + n);
    let be = v.to_be_bytes();
    out.extend_from_slice(&be[8 - usize::from(n)..]);
}

fn encode_negative(out: &mut Vec<u8>, magnitude: u64) {
    let n = byte_len(magnitude);
    out.push(ZERO_CODE - n);
    let be = (!magnitude).to_be_bytes();
    out.extend_from_slice(&be[8 - usize::from(n)..]);
}

/// The order-preserving 64-bit key of a float (NaN canonicalised).
fn float_key(f: f64) -> u64 {
    let bits = canonical_float(f).to_bits();
    if bits & SIGN_BIT == 0 {
        bits ^ SIGN_BIT
    } else {
        !bits
    }
}

// ---------------------------------------------------------------- decode

/// Decodes a packed tuple into its elements, in normal form.
///
/// # Errors
///
/// A [`TupleError`] naming the offset of the first problem: truncated
/// input, an unknown type code (which is also how trailing garbage after
/// the last element shows up), invalid UTF-8, an integer below `i64::MIN`,
/// a non-canonical integer or NaN, or nesting deeper than
/// [`MAX_NESTING_DEPTH`]. Never panics.
pub fn unpack(bytes: &[u8]) -> Result<Vec<Element>, TupleError> {
    let mut d = Decoder { buf: bytes, pos: 0 };
    let mut out = Vec::new();
    while d.pos < d.buf.len() {
        out.push(d.element(0)?);
    }
    Ok(out)
}

struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Decoder<'_> {
    fn byte_at(&self, i: usize) -> Option<u8> {
        self.buf.get(i).copied()
    }

    /// Decodes one element at `self.pos`; `depth` is 0 at the top level.
    fn element(&mut self, depth: usize) -> Result<Element, TupleError> {
        let start = self.pos;
        let code = self.byte_at(start).ok_or(TupleError::Truncated {
            offset: start,
            what: "element",
        })?;
        self.pos = start + 1;
        match code {
            NULL_CODE => {
                if depth > 0 {
                    // Inside a nested tuple a null is 0x00 0xFF; the caller
                    // has already checked for the escape.
                    if self.byte_at(self.pos) != Some(ESCAPE) {
                        return Err(TupleError::Truncated {
                            offset: start,
                            what: "nested null",
                        });
                    }
                    self.pos += 1;
                }
                Ok(Element::Null)
            }
            BYTES_CODE => Ok(Element::Bytes(self.escaped(start, "bytes")?.into())),
            STRING_CODE => {
                let raw = self.escaped(start, "string")?;
                String::from_utf8(raw)
                    .map(Element::String)
                    .map_err(|_| TupleError::InvalidUtf8 { offset: start })
            }
            NESTED_CODE => {
                if depth >= MAX_NESTING_DEPTH {
                    return Err(TupleError::TooDeep {
                        offset: start,
                        max: MAX_NESTING_DEPTH,
                    });
                }
                let mut items = Vec::new();
                loop {
                    match self.byte_at(self.pos) {
                        None => {
                            return Err(TupleError::Truncated {
                                offset: start,
                                what: "nested tuple",
                            })
                        }
                        Some(NULL_CODE) if self.byte_at(self.pos + 1) != Some(ESCAPE) => {
                            self.pos += 1;
                            return Ok(Element::Nested(items));
                        }
                        Some(_) => items.push(self.element(depth + 1)?),
                    }
                }
            }
            0x0C..=0x1C => self.integer(start, code),
            FLOAT_CODE => {
                let raw = self.fixed::<8>(start, "float")?;
                let key = u64::from_be_bytes(raw);
                let bits = if key & SIGN_BIT != 0 {
                    key ^ SIGN_BIT
                } else {
                    !key
                };
                let f = f64::from_bits(bits);
                if f.is_nan() && bits != CANONICAL_NAN_BITS {
                    return Err(TupleError::NonCanonical {
                        offset: start,
                        what: "NaN",
                    });
                }
                Ok(Element::Float(f))
            }
            FALSE_CODE => Ok(Element::Bool(false)),
            TRUE_CODE => Ok(Element::Bool(true)),
            _ => Err(TupleError::BadTypeCode {
                offset: start,
                code,
            }),
        }
    }

    /// Reads an escaped, 0x00-terminated body starting at `self.pos`.
    fn escaped(&mut self, start: usize, what: &'static str) -> Result<Vec<u8>, TupleError> {
        let mut out = Vec::new();
        loop {
            let b = self.byte_at(self.pos).ok_or(TupleError::Truncated {
                offset: start,
                what,
            })?;
            self.pos += 1;
            if b == 0x00 {
                if self.byte_at(self.pos) == Some(ESCAPE) {
                    self.pos += 1;
                } else {
                    return Ok(out);
                }
            }
            out.push(b);
        }
    }

    fn fixed<const N: usize>(
        &mut self,
        start: usize,
        what: &'static str,
    ) -> Result<[u8; N], TupleError> {
        let end = self.pos.checked_add(N);
        let slice =
            end.and_then(|end| self.buf.get(self.pos..end))
                .ok_or(TupleError::Truncated {
                    offset: start,
                    what,
                })?;
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        self.pos += N;
        Ok(out)
    }

    fn integer(&mut self, start: usize, code: u8) -> Result<Element, TupleError> {
        let negative = code < ZERO_CODE;
        let n = usize::from(code.abs_diff(ZERO_CODE)); // 0..=8
        let end = self.pos.checked_add(n);
        let raw = end
            .and_then(|end| self.buf.get(self.pos..end))
            .ok_or(TupleError::Truncated {
                offset: start,
                what: "integer",
            })?;
        self.pos += n;
        let mut be = [0u8; 8];
        let dst = be.get_mut(8 - n..).ok_or(TupleError::BadTypeCode {
            offset: start,
            code,
        })?;
        dst.copy_from_slice(raw);
        let stored = u64::from_be_bytes(be);
        if negative {
            // The stored bytes are the one's complement of the magnitude.
            let mask = if n == 8 {
                u64::MAX
            } else {
                (1u64 << (8 * n)) - 1
            };
            let magnitude = !stored & mask;
            if byte_len(magnitude) != n as u8 {
                return Err(TupleError::NonCanonical {
                    offset: start,
                    what: "integer",
                });
            }
            // -magnitude, with magnitude in 1..=2^63.
            0i64.checked_sub_unsigned(magnitude)
                .map(Element::Int)
                .ok_or(TupleError::IntegerOutOfRange { offset: start })
        } else {
            if byte_len(stored) != n as u8 {
                return Err(TupleError::NonCanonical {
                    offset: start,
                    what: "integer",
                });
            }
            Ok(Element::uint(stored))
        }
    }
}

// ---------------------------------------------------------------- scans

/// Never a type code: after `pack(t)`, a tuple extension of `t` continues
/// with a type code, while a key whose last element merely *continues*
/// `t`'s last bytes/string/nested element continues with this escape.
const NOT_A_TYPE_CODE: u8 = 0xFF;

/// `pack(t) ++ [0xFF]`: greater than `pack(t ++ more)` for every `more`,
/// and not greater than any key that sorts after all of them.
fn after_extensions(mut packed: Vec<u8>) -> Bytes {
    packed.push(NOT_A_TYPE_CODE);
    packed.into()
}

/// Every key whose tuple starts with `prefix` (including the key that is
/// exactly `pack(prefix)`), forward, default page size.
///
/// `pack(prefix ++ suffix)` always starts with the bytes `pack(prefix)`,
/// but the converse does not hold: `pack(["a\0"])` starts with the bytes
/// of `pack(["a"])` (`02 61 00 FF 00` vs `02 61 00`), and likewise for
/// bytes and nested tuples. So this is not [`ScanRequest::prefix`] of the
/// packed bytes but the range `[pack(prefix), pack(prefix) ++ [0xFF])`:
/// after `pack(prefix)` a tuple extension continues with a type code,
/// which is never `0xFF`, while such a longer element continues with the
/// escape `0xFF`.
///
/// An empty prefix scans every key ([`ScanRequest::all`]).
pub fn prefix_scan(prefix: &[Element]) -> ScanRequest {
    let packed = pack(prefix);
    if packed.is_empty() {
        return ScanRequest::all();
    }
    ScanRequest {
        start: Bound::Included(Bytes::copy_from_slice(&packed)),
        end: Bound::Excluded(after_extensions(packed)),
        ..ScanRequest::all()
    }
}

/// Keys of the form `prefix ++ [a string starting with partial] ++ rest`:
/// DynamoDB's `begins_with` on a string sort key.
pub fn string_prefix_scan(prefix: &[Element], partial: &str) -> ScanRequest {
    let mut key = pack(prefix);
    key.push(STRING_CODE);
    // No terminator: the escaped body of every string that starts with
    // `partial` starts with the escaped body of `partial`, and vice versa.
    encode_escaped_body(&mut key, partial.as_bytes());
    ScanRequest::prefix(key)
}

/// Keys of the form `prefix ++ [bytes starting with partial] ++ rest`:
/// `begins_with` on a binary sort key.
pub fn bytes_prefix_scan(prefix: &[Element], partial: &[u8]) -> ScanRequest {
    let mut key = pack(prefix);
    key.push(BYTES_CODE);
    encode_escaped_body(&mut key, partial);
    ScanRequest::prefix(key)
}

/// Keys whose tuple is `prefix ++ tail` with `tail` between `start` and
/// `end`: DynamoDB's "partition = X and sort between A and B".
///
/// A bound `B` is compared with the first `B.len()` elements of the tail
/// (so `Included(B)` admits every tail that *starts with* `B`: the item
/// keys `(X, B)` and `(X, B, more...)` alike):
///
/// | bound | keeps tails `t` with | byte bound (`k` = `pack(prefix ++ bound)`) |
/// |---|---|---|
/// | start `Included(A)` | `t[..len A] >= A` | `>= k` |
/// | start `Excluded(A)` | `t[..len A] >  A` | `>= k ++ [0xFF]` |
/// | end `Included(B)` | `t[..len B] <= B` | `< k ++ [0xFF]` |
/// | end `Excluded(B)` | `t[..len B] <  B` | `< k` |
/// | `Unbounded` | anything | the bound of [`prefix_scan`]`(prefix)` |
///
/// (`t[..n]` is the whole tail when it has fewer than `n` elements;
/// comparisons are [`compare`].) The result always lies within
/// `prefix_scan(prefix)`. Bounds that select nothing give an empty range;
/// a start after the end gives a request that [`ScanRequest::validate`]
/// rejects as inverted.
pub fn range_scan(
    prefix: &[Element],
    start: Bound<&[Element]>,
    end: Bound<&[Element]>,
) -> ScanRequest {
    let base = prefix_scan(prefix);
    let joined = |tail: &[Element]| {
        let mut key = pack(prefix);
        pack_into(&mut key, tail);
        key
    };
    let lo = match start {
        Bound::Unbounded => base.start,
        Bound::Included(a) => {
            let key = joined(a);
            if key.is_empty() {
                Bound::Unbounded
            } else {
                Bound::Included(key.into())
            }
        }
        Bound::Excluded(a) => {
            let key = joined(a);
            if key.is_empty() {
                // No tail is greater than the empty tuple in its first
                // zero elements.
                return empty_scan();
            }
            Bound::Included(after_extensions(key))
        }
    };
    let hi = match end {
        Bound::Unbounded => base.end,
        Bound::Included(b) => {
            let key = joined(b);
            if key.is_empty() {
                Bound::Unbounded
            } else {
                Bound::Excluded(after_extensions(key))
            }
        }
        Bound::Excluded(b) => {
            let key = joined(b);
            if key.is_empty() {
                return empty_scan();
            }
            Bound::Excluded(key.into())
        }
    };
    ScanRequest {
        start: lo,
        end: hi,
        ..ScanRequest::all()
    }
}

/// A request that matches no key: `[0x00, 0x00)`.
fn empty_scan() -> ScanRequest {
    let k = Bytes::from_static(&[0x00]);
    ScanRequest {
        start: Bound::Included(k.clone()),
        end: Bound::Excluded(k),
        ..ScanRequest::all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(elements: &[Element]) -> Vec<u8> {
        pack(elements)
    }

    #[test]
    fn exact_bytes_of_small_values() {
        assert_eq!(p(&[]), Vec::<u8>::new());
        assert_eq!(p(&[Element::Null]), vec![0x00]);
        assert_eq!(p(&["".into()]), vec![0x02, 0x00]);
        assert_eq!(p(&["ab".into()]), vec![0x02, b'a', b'b', 0x00]);
        assert_eq!(
            p(&[Element::Bytes(Bytes::from_static(b"a\x00\xff"))]),
            vec![0x01, b'a', 0x00, 0xFF, 0xFF, 0x00]
        );
        assert_eq!(p(&[0i64.into()]), vec![0x14]);
        assert_eq!(p(&[1i64.into()]), vec![0x15, 0x01]);
        assert_eq!(p(&[255i64.into()]), vec![0x15, 0xFF]);
        assert_eq!(p(&[256i64.into()]), vec![0x16, 0x01, 0x00]);
        assert_eq!(p(&[(-1i64).into()]), vec![0x13, 0xFE]);
        assert_eq!(p(&[(-255i64).into()]), vec![0x13, 0x00]);
        assert_eq!(p(&[(-256i64).into()]), vec![0x12, 0xFE, 0xFF]);
        assert_eq!(
            p(&[i64::MAX.into()]),
            vec![0x1C, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]
        );
        assert_eq!(
            p(&[i64::MIN.into()]),
            vec![0x0C, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]
        );
        assert_eq!(p(&[u64::MAX.into()]), {
            let mut v = vec![0x1C];
            v.extend([0xFF; 8]);
            v
        });
        assert_eq!(
            p(&[1.0f64.into()]),
            vec![0x21, 0xBF, 0xF0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            p(&[(-1.0f64).into()]),
            vec![0x21, 0x40, 0x0F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]
        );
        assert_eq!(p(&[0.0f64.into()]), vec![0x21, 0x80, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            p(&[(-0.0f64).into()]),
            vec![0x21, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]
        );
        assert_eq!(
            p(&[Element::Float(-f64::NAN)]),
            vec![0x21, 0xFF, 0xF8, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(p(&[false.into(), true.into()]), vec![0x26, 0x27]);
        assert_eq!(
            p(&[Element::Nested(vec![
                Element::Null,
                "a".into(),
                Element::Nested(vec![])
            ])]),
            vec![0x05, 0x00, 0xFF, 0x02, b'a', 0x00, 0x05, 0x00, 0x00]
        );
        assert_eq!(
            p(&["a".into(), 1i64.into()]),
            vec![0x02, b'a', 0x00, 0x15, 0x01]
        );
    }

    #[test]
    fn decode_errors() {
        assert!(matches!(
            unpack(&[0x02, b'a']),
            Err(TupleError::Truncated { offset: 0, .. })
        ));
        assert!(matches!(
            unpack(&[0x14, 0x03]),
            Err(TupleError::BadTypeCode {
                offset: 1,
                code: 0x03
            })
        ));
        assert!(matches!(
            unpack(&[0x02, 0xC3, 0x28, 0x00]),
            Err(TupleError::InvalidUtf8 { offset: 0 })
        ));
        assert!(matches!(
            unpack(&[0x16, 0x00, 0x01]),
            Err(TupleError::NonCanonical { offset: 0, .. })
        ));
        assert!(matches!(
            unpack(&[0x12, 0xFF, 0x00]),
            Err(TupleError::NonCanonical { offset: 0, .. })
        ));
        // magnitude 2^63 + 1
        assert!(matches!(
            unpack(&[0x0C, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE]),
            Err(TupleError::IntegerOutOfRange { offset: 0 })
        ));
        assert!(matches!(
            unpack(&[0x21, 0xFF, 0xF8, 0, 0, 0, 0, 0, 1]),
            Err(TupleError::NonCanonical { offset: 0, .. })
        ));
        assert!(matches!(
            unpack(&[0x21, 0xFF]),
            Err(TupleError::Truncated { offset: 0, .. })
        ));
        assert!(matches!(
            unpack(&[0x05, 0x14]),
            Err(TupleError::Truncated { offset: 0, .. })
        ));
        let deep = vec![NESTED_CODE; MAX_NESTING_DEPTH + 2];
        assert!(matches!(unpack(&deep), Err(TupleError::TooDeep { .. })));
        let err = unpack(&[0x14, 0xFF]).err();
        assert_eq!(err.map(|e| e.offset()), Some(1));
    }

    #[test]
    fn decode_normal_form() {
        assert_eq!(
            unpack(&p(&[Element::UInt(7)]))
                .ok()
                .and_then(|t| t.into_iter().next())
                .map(|e| matches!(e, Element::Int(7))),
            Some(true)
        );
        let big = unpack(&p(&[Element::UInt(u64::MAX)])).ok();
        assert!(matches!(big.as_deref(), Some([Element::UInt(u64::MAX)])));
        let min = unpack(&p(&[Element::Int(i64::MIN)])).ok();
        assert!(matches!(min.as_deref(), Some([Element::Int(i64::MIN)])));
    }

    #[test]
    fn semantic_equality() {
        assert_eq!(Element::Int(5), Element::UInt(5));
        assert_eq!(Element::Float(f64::NAN), Element::Float(-f64::NAN));
        assert_ne!(Element::Float(0.0), Element::Float(-0.0));
        assert!(Element::Float(-0.0) < Element::Float(0.0));
        assert!(Element::Float(f64::INFINITY) < Element::Float(f64::NAN));
        assert!(Element::Int(-1) < Element::UInt(u64::MAX));
        assert!(Element::Int(i64::MAX) < Element::UInt(u64::MAX));
        assert!(Element::Int(1) < Element::Float(0.5));
    }

    #[test]
    fn range_scan_bounds() {
        let pfx = ["p".into()];
        let r = range_scan(
            &pfx,
            Bound::Included(&[Element::Int(5)]),
            Bound::Excluded(&[Element::Int(9)]),
        );
        assert_eq!(
            r.start,
            Bound::Included(p(&["p".into(), 5i64.into()]).into())
        );
        assert_eq!(r.end, Bound::Excluded(p(&["p".into(), 9i64.into()]).into()));
        let inside = p(&["p".into(), 5i64.into(), "x".into()]);
        assert!(r.contains(&inside));
        assert!(!r.contains(&p(&["p".into(), 9i64.into()])));
        let r = range_scan(&pfx, Bound::Excluded(&[Element::Int(5)]), Bound::Unbounded);
        assert!(!r.contains(&inside));
        assert!(r.contains(&p(&["p".into(), 6i64.into()])));
        assert!(!r.contains(&p(&["q".into()])));
        let all = range_scan(&[], Bound::Unbounded, Bound::Unbounded);
        assert_eq!(all, ScanRequest::all());
        let none = range_scan(&[], Bound::Excluded(&[]), Bound::Unbounded);
        assert!(!none.contains(&[0x00]) && !none.contains(&[0xFF]));
    }

    #[test]
    fn prefix_scan_excludes_escaped_continuations() {
        let cases: [(Element, Element); 3] = [
            ("a".into(), "a\0".into()),
            (b"a".to_vec().into(), b"a\x00b".to_vec().into()),
            (
                Element::Nested(vec![]),
                Element::Nested(vec![Element::Null]),
            ),
        ];
        for (short, long) in cases {
            let (ps, pl) = (
                p(std::slice::from_ref(&short)),
                p(std::slice::from_ref(&long)),
            );
            // The bytes are a prefix, the tuple is not...
            assert!(pl.starts_with(&ps));
            let scan = prefix_scan(std::slice::from_ref(&short));
            // ...so the scan must exclude it, but include real extensions.
            assert!(!scan.contains(&pl), "{short:?} scan contains {long:?}");
            assert!(scan.contains(&ps));
            assert!(scan.contains(&p(&[short.clone(), Element::Null])));
            assert!(scan.contains(&p(&[short.clone(), true.into()])));
            let r = range_scan(
                &[],
                Bound::Unbounded,
                Bound::Included(std::slice::from_ref(&short)),
            );
            assert!(r.contains(&p(&[short.clone(), 1i64.into()])));
            assert!(!r.contains(&pl));
            let r = range_scan(
                &[],
                Bound::Excluded(std::slice::from_ref(&short)),
                Bound::Unbounded,
            );
            assert!(!r.contains(&p(&[short.clone(), 1i64.into()])));
            assert!(r.contains(&pl));
        }
        assert_eq!(prefix_scan(&[]), ScanRequest::all());
        let r = prefix_scan(&["p".into()]);
        assert_eq!(r.start, Bound::Included(Bytes::from_static(b"\x02p\x00")));
        assert_eq!(r.end, Bound::Excluded(Bytes::from_static(b"\x02p\x00\xff")));
    }

    #[test]
    fn begins_with_scans() {
        let pfx = [Element::from("p")];
        let r = string_prefix_scan(&pfx, "ab");
        assert!(r.contains(&p(&["p".into(), "ab".into()])));
        assert!(r.contains(&p(&["p".into(), "abc".into(), 1i64.into()])));
        assert!(!r.contains(&p(&["p".into(), "a".into()])));
        assert!(!r.contains(&p(&["p".into(), "ac".into()])));
        let r = bytes_prefix_scan(&pfx, b"a\x00");
        assert!(r.contains(&p(&["p".into(), b"a\x00b".to_vec().into()])));
        assert!(!r.contains(&p(&["p".into(), b"a".to_vec().into()])));
        assert!(!r.contains(&p(&["p".into(), b"a\x01".to_vec().into()])));
    }
}
