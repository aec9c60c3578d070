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
//! A handle over a store private to it ([`RemoteStore::in_memory`](crate::RemoteStore::in_memory))
//! prefixes the tokens it hands out for live entries with a **tag**:
//! `~` and eight characters of URL-safe base64, 48 bits of a keyed hash
//! (a per-handle random key) of the object's path and the rest of the
//! token. A tag that checks out proves this handle issued the token for
//! that path, i.e. for a live record it wrote or read there, which lets a
//! conditional write skip its read (`atomic.rs`). The tag is no part of
//! the state a token names: two tokens naming one state compare equal
//! on a read path whatever their tags.
//!
//! Parsing is strict: a string is a token only if it is exactly the
//! encoding of what it parses to (no leading zeros, no `+`, nothing
//! trailing), so two different strings never name the same state with
//! the same tag. A string that does not parse is a token this store
//! cannot have issued; callers answer it with `Conflict`, never
//! `InvalidInput`.

use std::hash::{BuildHasher, Hasher};

use object_store::path::Path;
use object_store::UpdateVersion;
use storage_core::{Timestamp, Version};

/// Separates the ETag from the object version.
const VERSION_SEP: &str = ";v=";

/// Starts a tagged token (never the first character of an untagged one,
/// which is a digit or `-`).
const TAG_MARK: char = '~';
/// Characters of a tag: 6 bits each.
const TAG_CHARS: usize = 8;
const TAG_BITS: u32 = 6 * TAG_CHARS as u32;
/// URL-safe base64, in value order.
const TAG_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

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
    /// The issuing handle's tag ([`Tagger`]), if any.
    pub(crate) tag: Option<u64>,
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
            tag: None,
        })
    }

    /// The string form (see the module docs).
    pub(crate) fn encode(&self) -> Version {
        Version::new(self.to_text())
    }

    fn to_text(&self) -> String {
        // One exact-size buffer: tokens are built on every versioned read
        // and conditional write.
        let tag_len = if self.tag.is_some() { 1 + TAG_CHARS } else { 0 };
        let mut out = String::with_capacity(tag_len + self.untagged_len());
        if let Some(tag) = self.tag {
            out.push(TAG_MARK);
            for i in (0..TAG_CHARS).rev() {
                let digit = (tag >> (6 * i)) & 63;
                out.push(char::from(TAG_ALPHABET[digit as usize]));
            }
        }
        match self.expires_at {
            Some(t) => push_decimal(&mut out, t.as_millis()),
            None => out.push('-'),
        }
        out.push(':');
        push_decimal(&mut out, self.e_tag.len() as u64);
        out.push(':');
        out.push_str(&self.e_tag);
        if let Some(v) = &self.version {
            out.push_str(VERSION_SEP);
            out.push_str(v);
        }
        out
    }

    /// The length of the text after the tag.
    fn untagged_len(&self) -> usize {
        let expiry = self.expires_at.map_or(1, |t| decimal_len(t.as_millis()));
        let version = self
            .version
            .as_ref()
            .map_or(0, |v| VERSION_SEP.len() + v.len());
        expiry + 1 + decimal_len(self.e_tag.len() as u64) + 1 + self.e_tag.len() + version
    }

    /// Whether both name the same object state (tags aside).
    pub(crate) fn same_state(&self, other: &EntryToken) -> bool {
        self.e_tag == other.e_tag
            && self.version == other.version
            && self.expires_at == other.expires_at
    }

    /// Parses a presented token; `None` for anything that is not exactly
    /// the encoding of a token.
    pub(crate) fn parse(v: &Version) -> Option<Self> {
        let s = v.as_str();
        let (tag, untagged) = match s.strip_prefix(TAG_MARK) {
            Some(rest) => {
                let chars = rest.get(..TAG_CHARS)?;
                let mut tag = 0u64;
                for c in chars.bytes() {
                    let digit = TAG_ALPHABET.iter().position(|&a| a == c)?;
                    tag = (tag << 6) | digit as u64;
                }
                (Some(tag), rest.get(TAG_CHARS..)?)
            }
            None => (None, s),
        };
        let (expiry, rest) = untagged.split_once(':')?;
        let (len, rest) = rest.split_once(':')?;
        let expires_at = match expiry {
            "-" => None,
            ms => Some(Timestamp::from_millis(canonical_decimal(ms)?)),
        };
        let len = usize::try_from(canonical_decimal(len)?).ok()?;
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
            tag,
        };
        // Canonical form only ("007", "+7" and the like are refused above):
        // the string is exactly this token's encoding (pinned by the
        // `parse_accepts_exactly_encodings` test).
        Some(token)
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

/// Appends `n` in decimal.
fn push_decimal(out: &mut String, n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[i..] {
        out.push(char::from(d));
    }
}

/// Digits of `n` in decimal.
fn decimal_len(n: u64) -> usize {
    n.checked_ilog10().map_or(1, |l| l as usize + 1)
}

/// A decimal in canonical form (digits only, no leading zero but for
/// "0", within `u64`); `None` otherwise.
fn canonical_decimal(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let canonical =
        !b.is_empty() && b.iter().all(u8::is_ascii_digit) && (b[0] != b'0' || b.len() == 1);
    if canonical {
        s.parse().ok()
    } else {
        None
    }
}

/// Tags the tokens of one handle: 48 bits of SipHash, keyed by a
/// per-handle random key (std's `RandomState`), over the object's path
/// and the token's untagged text. Tokens are not credentials (whoever can
/// forge one can also plainly `put` the key); the tag only has to make a
/// token this handle did not issue, or issued for another path or state,
/// fail the check but for a 2⁻⁴⁸ chance.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tagger {
    key: std::collections::hash_map::RandomState,
}

impl Tagger {
    fn tag(&self, path: &Path, token: &EntryToken) -> u64 {
        let mut h = self.key.build_hasher();
        // Every field length-prefixed or flagged: distinct (path, state)
        // pairs feed distinct byte strings.
        let path = path.as_ref().as_bytes();
        h.write_usize(path.len());
        h.write(path);
        match token.expires_at {
            Some(t) => {
                h.write_u8(1);
                h.write_u64(t.as_millis());
            }
            None => h.write_u8(0),
        }
        h.write_usize(token.e_tag.len());
        h.write(token.e_tag.as_bytes());
        match &token.version {
            Some(v) => {
                h.write_u8(1);
                h.write_usize(v.len());
                h.write(v.as_bytes());
            }
            None => h.write_u8(0),
        }
        h.finish() & ((1 << TAG_BITS) - 1)
    }

    /// `token`, tagged for `path`.
    pub(crate) fn tagged(&self, path: &Path, mut token: EntryToken) -> EntryToken {
        token.tag = Some(self.tag(path, &token));
        token
    }

    /// The token `v`, if it parses and carries this handle's tag for
    /// `path`.
    pub(crate) fn vouched(&self, path: &Path, v: &Version) -> Option<EntryToken> {
        let token = EntryToken::parse(v)?;
        (token.tag == Some(self.tag(path, &token))).then_some(token)
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
    fn tagged_tokens_round_trip_and_parse_strictly() {
        let t = Timestamp::from_millis(1_700_000_000_123);
        for tag in [0, 1, 63, 64, (1 << TAG_BITS) - 1, 0x1234_5678_9abc] {
            let mut tok = EntryToken::new(Some("17".into()), Some("v".into()), Some(t)).unwrap();
            tok.tag = Some(tag);
            let enc = tok.encode();
            assert_eq!(enc.as_str().len(), 1 + TAG_CHARS + tok.untagged_len());
            assert_eq!(EntryToken::parse(&enc), Some(tok), "{enc}");
        }
        let mut tok = EntryToken::new(Some("7".into()), None, None).unwrap();
        tok.tag = Some(0);
        assert_eq!(tok.encode().as_str(), "~AAAAAAAA-:1:7");
        for bad in [
            "~",
            "~AAAAAAAA",
            "~AAAAAAA-:1:7",
            "~AAAAAAA!-:1:7",
            "~AAAAAAAAA-:1:7",
            "~~AAAAAAAA-:1:7",
            "~AAAAAAA\u{e9}-:1:7",
            "AAAAAAAA-:1:7",
        ] {
            assert_eq!(EntryToken::parse(&Version::new(bad)), None, "{bad:?}");
        }
    }

    #[test]
    fn tags_check_out_for_their_path_state_and_handle_only() {
        let (one, two) = (Tagger::default(), Tagger::default());
        let (p, q) = (Path::from("ns/a"), Path::from("ns/b"));
        let tok = EntryToken::new(Some("5".into()), None, None).unwrap();
        let v = one.tagged(&p, tok.clone()).encode();
        let back = one.vouched(&p, &v).unwrap();
        assert!(back.same_state(&tok));
        assert_eq!(one.vouched(&q, &v), None, "another path");
        assert_eq!(two.vouched(&p, &v), None, "another handle");
        assert_eq!(one.vouched(&p, &tok.encode()), None, "untagged");
        // The tag moved onto another state.
        let tag = &v.as_str()[..1 + TAG_CHARS];
        for other in ["-:1:6", "1:1:5", "-:1:5;v=1"] {
            let moved = Version::new(format!("{tag}{other}"));
            assert_eq!(one.vouched(&p, &moved), None, "{moved}");
        }
    }

    /// Whatever parses is exactly the encoding of what it parses to:
    /// checked over every combination of token parts, canonical and not
    /// (tag, expiry, ETag length, ETag, tail).
    #[test]
    fn parse_accepts_exactly_encodings() {
        let tags = ["", "~AAAAAAAA", "~Aa_-0009", "~AAA", "~", "~AAAAAAAA~"];
        let expiries = [
            "-",
            "0",
            "00",
            "7",
            "+7",
            "07",
            "12",
            "18446744073709551616",
            "",
            "--",
        ];
        let lens = ["0", "1", "2", "3", "01", "+1", "", "18446744073709551616"];
        let etags = ["", "x", "ab", "a:b", "\u{e9}", "x;v=1"];
        let tails = ["", ";v=", ";v=1", ";v", ";w=1", ":", "x"];
        let mut parsed = 0;
        for tag in tags {
            for expiry in expiries {
                for len in lens {
                    for etag in etags {
                        for tail in tails {
                            let text = format!("{tag}{expiry}:{len}:{etag}{tail}");
                            if let Some(tok) = EntryToken::parse(&Version::new(&text)) {
                                parsed += 1;
                                assert_eq!(tok.to_text(), text, "{text:?}");
                            }
                        }
                    }
                }
            }
        }
        assert!(parsed > 100, "only {parsed} combinations parsed");
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
