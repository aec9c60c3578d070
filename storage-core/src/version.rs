//! Opaque version tokens for compare-and-swap.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;
use std::sync::Arc;

/// An opaque version token, returned by every write of an
/// [`AtomicKv`](crate::AtomicKv) store and presented back as a condition.
///
/// Callers compare tokens for equality only; they carry no order. A token
/// round-trips through its string form ([`Display`](fmt::Display) /
/// [`FromStr`]) so emulators can hand it out as an ETag or version
/// attribute and accept it back. Tokens are only meaningful to the store
/// that issued them.
///
/// ```
/// use storage_core::Version;
/// let v = Version::new("42");
/// let s = v.to_string();
/// assert_eq!(s.parse::<Version>().unwrap(), v);
/// ```
///
/// Tokens of up to [`Version::INLINE`] bytes — every counter, and most
/// ETags — are held inline: building, cloning and dropping one never
/// touches the allocator, which matters because every write returns one
/// and every versioned read and scanned entry carries one. Longer tokens
/// share one heap string.
#[derive(Clone)]
pub struct Version(Repr);

/// "00", "01", ..., "99".
const DIGIT_PAIRS: [u8; 200] = {
    let mut t = [0u8; 200];
    let mut i = 0;
    while i < 100 {
        t[2 * i] = b'0' + (i / 10) as u8;
        t[2 * i + 1] = b'0' + (i % 10) as u8;
        i += 1;
    }
    t
};

#[derive(Clone)]
enum Repr {
    /// The last `len` bytes of `buf` are the token (valid UTF-8);
    /// right-aligned so counters are formatted in place from the end.
    Inline { len: u8, buf: [u8; Version::INLINE] },
    /// A token longer than [`Version::INLINE`] bytes.
    Heap(Arc<str>),
}

impl Version {
    /// The longest token held without an allocation (a `u64` counter
    /// needs at most 20 digits).
    pub const INLINE: usize = 22;

    /// Builds a token from a backend's native representation (a counter,
    /// an ETag, ...). Backends call this; callers parse strings instead.
    pub fn new(token: impl AsRef<str>) -> Self {
        Version::from_text(token.as_ref())
    }

    fn from_text(s: &str) -> Self {
        match u8::try_from(s.len()) {
            Ok(len) if s.len() <= Self::INLINE => {
                let mut buf = [0u8; Self::INLINE];
                buf[Self::INLINE - s.len()..].copy_from_slice(s.as_bytes());
                Version(Repr::Inline { len, buf })
            }
            _ => Version(Repr::Heap(s.into())),
        }
    }

    /// Builds a token from a backend's counter (its decimal digits, formatted
    /// in place).
    pub fn from_counter(n: u64) -> Self {
        // Scans hand out one token per entry, so this is a hot path:
        // digits go straight into place from the end, two at a time.
        let mut buf = [0u8; Self::INLINE];
        let mut at = Self::INLINE;
        let mut rest = n;
        while rest >= 100 {
            let pair = (rest % 100) as usize * 2;
            rest /= 100;
            at -= 2;
            buf[at..at + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
        }
        if rest >= 10 {
            let pair = rest as usize * 2;
            at -= 2;
            buf[at..at + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
        } else {
            // `rest` is below 10, so the cast cannot truncate.
            at -= 1;
            buf[at] = b'0' + rest as u8;
        }
        // At most 20 digits, so the length fits a `u8`.
        Version(Repr::Inline {
            len: (Self::INLINE - at) as u8,
            buf,
        })
    }

    /// The counter behind a token made by [`Version::from_counter`], or
    /// `None` for any other string. Only the canonical decimal form is
    /// accepted, so `"007"` or `"+7"` never alias token `"7"`.
    ///
    /// ```
    /// use storage_core::Version;
    /// assert_eq!(Version::from_counter(7).to_counter(), Some(7));
    /// assert_eq!(Version::new("007").to_counter(), None);
    /// assert_eq!(Version::new("etag-1").to_counter(), None);
    /// ```
    pub fn to_counter(&self) -> Option<u64> {
        let s = self.as_str();
        let canonical = !s.is_empty()
            && s.bytes().all(|b| b.is_ascii_digit())
            && (s == "0" || !s.starts_with('0'));
        if canonical {
            s.parse().ok()
        } else {
            None
        }
    }

    /// Whether this token names counter `current` (`None`: the key is
    /// absent, which no token matches).
    pub fn matches_counter(&self, current: Option<u64>) -> bool {
        current.is_some() && current == self.to_counter()
    }

    /// The token's string form.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            // Always valid: the bytes were copied from a `&str` or are
            // ASCII digits (the fallback is unreachable).
            Repr::Inline { len, buf } => {
                std::str::from_utf8(&buf[Version::INLINE - usize::from(*len)..]).unwrap_or("")
            }
            Repr::Heap(s) => s,
        }
    }
}

// Equality and hashing are the token string's (a short token is always
// inline and a long one always on the heap, but comparing the strings does
// not depend on that).
impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Version {}

impl Hash for Version {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Version({:?})", self.as_str())
    }
}

/// Error parsing a [`Version`]: the string was empty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a version token cannot be empty")]
pub struct ParseVersionError;

impl FromStr for Version {
    type Err = ParseVersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(ParseVersionError);
        }
        Ok(Version::from_text(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_canonical_decimal_tokens_are_counters() {
        assert_eq!(Version::new("0").to_counter(), Some(0));
        assert_eq!(Version::new("42").to_counter(), Some(42));
        for bad in [
            "007",
            "+7",
            "-1",
            "7a",
            " 7",
            "99999999999999999999999",
            "é",
        ] {
            assert_eq!(Version::new(bad).to_counter(), None, "{bad}");
        }
        assert!(!Version::new("1").matches_counter(None));
        assert!(Version::new("5").matches_counter(Some(5)));
    }

    #[test]
    fn counters_format_as_their_decimal_digits() {
        let edges = (0..20).flat_map(|p| {
            let t = 10u64.pow(p);
            [t - 1, t, t + 1]
        });
        for n in edges.chain([42, 12_345, 987_654_321, u64::MAX - 1, u64::MAX]) {
            let v = Version::from_counter(n);
            assert_eq!(v.as_str(), n.to_string());
            assert_eq!(v, Version::new(n.to_string()));
            assert_eq!(v.to_counter(), Some(n));
        }
    }

    #[test]
    fn short_and_long_tokens_round_trip_and_compare_by_text() {
        use std::collections::hash_map::DefaultHasher;
        let hash = |v: &Version| {
            let mut h = DefaultHasher::new();
            v.hash(&mut h);
            h.finish()
        };
        let exact = "a".repeat(Version::INLINE);
        let long = format!("\"{}\"", "e".repeat(40));
        for text in ["x", "é:1", exact.as_str(), long.as_str()] {
            let v: Version = text.parse().expect("a non-empty token parses");
            assert_eq!(v.as_str(), text);
            assert_eq!(v.to_string(), text);
            assert_eq!(v.clone(), v);
            assert_eq!(v, Version::new(text));
            assert_eq!(hash(&v), hash(&Version::new(text)));
            assert_ne!(v, Version::new(format!("{text}!")));
        }
        assert_eq!(format!("{:?}", Version::new("7")), "Version(\"7\")");
        assert_eq!(std::mem::size_of::<Version>(), 24);
    }
}
