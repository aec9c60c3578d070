//! The version tokens of KV entries: self-describing, so a conditional
//! write can judge a token without reading the key first (`atomic.rs`).
//!
//! A token names one object state: the ETag (and object version, where
//! the store versions objects) the store reported for it, and the
//! entry's expiry instant as stored in the object's header
//! (`record.rs`). Its string form is
//!
//! ```text
//! <expiry> ":" <etag length> ":" <etag> [ ";v=" <object version> ]
//! ```
//!
//! where `<expiry>` is the instant in milliseconds or `-` (never) and
//! `<etag length>` the ETag's length in bytes, both canonical decimals,
//! and an object version, where present, is not empty:
//! `-:34:"9e107d9d372bb6826bd81d3542a419d6"`. The length prefix makes
//! the split exact whatever characters an ETag holds.
//!
//! Parsing is strict: a string is a token only if it is exactly the
//! encoding of what it parses to (no leading zeros, no `+`, nothing
//! trailing), so two different strings never name the same state. A
//! string that does not parse is a token this store cannot have issued;
//! callers answer it with `Conflict`, never `InvalidInput`.

use object_store::UpdateVersion;
use storage_core::{Timestamp, Version};

/// Separates the ETag from the object version.
const VERSION_SEP: &str = ";v=";

/// A parsed entry token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EntryToken {
    /// The ETag (empty if the store reported only an object version).
    pub(crate) e_tag: String,
    /// The object version, where the store has one.
    pub(crate) version: Option<String>,
    /// The entry's expiry instant (`None`: never; also `None` for a
    /// tombstone).
    pub(crate) expires_at: Option<Timestamp>,
}

impl EntryToken {
    /// The token of an object state; `None` when the store reported
    /// neither an ETag nor a version (such a store cannot do CAS). An
    /// empty object version counts as none.
    pub(crate) fn new(
        e_tag: Option<String>,
        version: Option<String>,
        expires_at: Option<Timestamp>,
    ) -> Option<Self> {
        let version = version.filter(|v| !v.is_empty());
        if e_tag.is_none() && version.is_none() {
            return None;
        }
        Some(EntryToken {
            e_tag: e_tag.unwrap_or_default(),
            version,
            expires_at,
        })
    }

    /// The string form (see the module docs).
    pub(crate) fn encode(&self) -> Version {
        Version::new(self.to_text())
    }

    fn to_text(&self) -> String {
        let expiry = match self.expires_at {
            Some(t) => t.as_millis().to_string(),
            None => "-".to_owned(),
        };
        let mut out = format!("{expiry}:{}:{}", self.e_tag.len(), self.e_tag);
        if let Some(v) = &self.version {
            out.push_str(VERSION_SEP);
            out.push_str(v);
        }
        out
    }

    /// Parses a presented token; `None` for anything that is not exactly
    /// the encoding of a token.
    pub(crate) fn parse(v: &Version) -> Option<Self> {
        let s = v.as_str();
        let (expiry, rest) = s.split_once(':')?;
        let (len, rest) = rest.split_once(':')?;
        let expires_at = match expiry {
            "-" => None,
            ms => Some(Timestamp::from_millis(ms.parse().ok()?)),
        };
        let len: usize = len.parse().ok()?;
        let e_tag = rest.get(..len)?;
        let tail = rest.get(len..)?;
        let version = match tail {
            "" => None,
            t => Some(
                t.strip_prefix(VERSION_SEP)
                    .filter(|v| !v.is_empty())?
                    .to_owned(),
            ),
        };
        let token = EntryToken {
            e_tag: e_tag.to_owned(),
            version,
            expires_at,
        };
        // Canonical form only: "007", "+7" and the like are not tokens.
        (token.to_text() == s).then_some(token)
    }

    /// The `If-Match` condition this token stands for; `None` without an
    /// ETag (such a token matches nothing).
    pub(crate) fn condition(&self) -> Option<UpdateVersion> {
        (!self.e_tag.is_empty()).then(|| UpdateVersion {
            e_tag: Some(self.e_tag.clone()),
            version: self.version.clone(),
        })
    }

    /// Whether the entry this token names is expired at `now` (its
    /// expiry instant is at or before `now`, as `record.rs` judges).
    pub(crate) fn expired_at(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|t| t <= now)
    }
}

/// An ETag reduced to what an `If-Match` comparison might still equate:
/// no weak marker, no quotes, lower case. Used only to refuse more
/// (a forged variant of a tombstone's ETag), never to accept.
pub(crate) fn loose_etag(e: &str) -> String {
    let e = e.strip_prefix("W/").unwrap_or(e);
    e.trim_matches('"').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn tokens_round_trip() {
        let t = Timestamp::from_millis(1_700_000_000_123);
        for (e, v, x) in [
            (Some("\"abc\""), None, None),
            (Some("\"a:b;v=c\""), Some("ver;v=1"), Some(t)),
            (None, Some("7"), Some(Timestamp::from_millis(0))),
            (Some("e"), Some(""), None),
            (Some("0"), None, Some(t)),
        ] {
            let tok = EntryToken::new(e.map(str::to_owned), v.map(str::to_owned), x).unwrap();
            let enc = tok.encode();
            assert_eq!(EntryToken::parse(&enc), Some(tok), "{enc}");
        }
        assert_eq!(EntryToken::new(None, None, None), None);
        assert_eq!(
            EntryToken::new(Some("\"x\"".into()), None, None)
                .unwrap()
                .encode()
                .as_str(),
            "-:3:\"x\""
        );
    }

    #[test]
    fn parsing_is_strict() {
        for bad in [
            "",
            "-",
            "-:",
            "-:3",
            "-:3:ab",
            "-:3:abcd",
            "-:03:abc",
            "-:+3:abc",
            "07:3:abc",
            "+7:3:abc",
            "x:3:abc",
            "-:3:abc;v",
            "-:3:abc;v=",
            "-:3:abc;w=1",
            "-:1:\u{e9}",
            "-:99999999999999999999999:abc",
            "18446744073709551616:3:abc",
            "\"d41d8cd98f00b204e9800998ecf8427e\"",
            "garbage;v=1",
        ] {
            assert_eq!(EntryToken::parse(&Version::new(bad)), None, "{bad:?}");
        }
        assert!(EntryToken::parse(&Version::new("-:2:\u{e9}")).is_some());
        assert!(EntryToken::parse(&Version::new("0:0:;v=9")).is_some());
    }

    #[test]
    fn expiry_at_now_counts_as_expired() {
        let tok =
            EntryToken::new(Some("e".into()), None, Some(Timestamp::from_millis(10))).unwrap();
        assert!(!tok.expired_at(Timestamp::from_millis(9)));
        assert!(tok.expired_at(Timestamp::from_millis(10)));
        let never = EntryToken::new(Some("e".into()), None, None).unwrap();
        assert!(!never.expired_at(Timestamp::from_millis(u64::MAX)));
    }

    #[test]
    fn loose_etags_ignore_quotes_weakness_and_case() {
        let a = loose_etag("\"D41D8CD98F00B204E9800998ECF8427E\"");
        assert_eq!(a, loose_etag("W/\"d41d8cd98f00b204e9800998ecf8427e\""));
        assert_eq!(a, loose_etag("d41d8cd98f00b204e9800998ecf8427e"));
    }
}
