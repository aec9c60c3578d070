//! Opaque version tokens for compare-and-swap.

use std::fmt;
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
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Version(Arc<str>);

impl Version {
    /// Builds a token from a backend's native representation (a counter,
    /// an ETag, ...). Backends call this; callers parse strings instead.
    pub fn new(token: impl Into<Arc<str>>) -> Self {
        Version(token.into())
    }

    /// Builds a token from a backend's counter.
    pub fn from_counter(n: u64) -> Self {
        Version(n.to_string().into())
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
        &self.0
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Version({:?})", &*self.0)
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
        Ok(Version(s.into()))
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
}
