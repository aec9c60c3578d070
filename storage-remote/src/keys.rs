//! Keys and namespaces as object paths.
//!
//! Layout: `<prefix>/<ns>/<key>`, where `<ns>` is the escaped namespace (one
//! path segment) and `<key>` the escaped key, split into segments when
//! long.
//!
//! # Escaping
//!
//! Letters, digits and `-` stay as they are; every other byte becomes an
//! escape character followed by two upper-case hex digits. The escape
//! character is chosen by the byte's place in ASCII so that it sorts
//! between the same unescaped characters as the byte itself:
//!
//! | bytes | escape | example |
//! |---|---|---|
//! | `0x00..=0x2C` (control, space, `!`..`,`, `%`) | `!` | `%` → `!25` |
//! | `0x2E..=0x2F` (`.` `/`) | `.` | `/` → `.2F` |
//! | `0x3A..=0x40` (`:`..`@`) | `=` | `:` → `=3A` |
//! | `0x5B..=0x60` (`[`..`` ` ``, `_`) | `_` | `_` → `_5F` |
//! | `0x7B..=0xFF` (`{`..`~`, DEL, non-ASCII) | `~` | `é` → `~C3~A9` |
//!
//! Each byte's code word sorts like the byte, and no code word is a
//! prefix of another, so comparing escaped strings compares the keys in
//! unsigned byte order: an S3 `ListObjectsV2` (UTF-8 binary order) comes
//! back in key order. The escaped form holds only `[0-9A-Za-z-!.=_~]`, so
//! no key can produce `/`, an empty segment, `.` or `..` (a `.` is always
//! followed by two hex digits), a control byte or a non-UTF-8 byte: no
//! key leaves its namespace's directory.
//!
//! # Long keys
//!
//! An escaped key longer than [`SEGMENT_CHARS`] is cut every
//! `SEGMENT_CHARS` characters; every segment but the last gets a `-`
//! appended (`<200 chars>-/<200 chars>-/<rest>`). The cuts sit at the same
//! offsets in every key, so the order argument above still holds; a
//! directory segment is always one character longer than any file
//! segment, so a key never collides with the directory of a longer key
//! on a local file system (255-byte file names).

use std::ops::Bound;

use bytes::Bytes;
use object_store::path::Path;

/// Most characters of one escaped key segment.
pub const SEGMENT_CHARS: usize = 200;

/// Appended to every key segment that is not the last one.
const CONTINUED: char = '-';

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// The escape character of a byte, or `None` if the byte stays as it is.
fn escape_char(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' | b'A'..=b'Z' | b'a'..=b'z' | b'-' => None,
        0x00..=0x2C => Some(b'!'),
        0x2E..=0x2F => Some(b'.'),
        0x3A..=0x40 => Some(b'='),
        0x5B..=0x60 => Some(b'_'),
        _ => Some(b'~'),
    }
}

/// Escapes `bytes` (order-preserving, see the module docs).
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    escape_into(&mut out, bytes);
    out
}

/// [`escape`], appended to `out`.
fn escape_into(out: &mut String, bytes: &[u8]) {
    for &b in bytes {
        match escape_char(b) {
            None => out.push(char::from(b)),
            Some(e) => {
                out.push(char::from(e));
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0x0F)]));
            }
        }
    }
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Reverses [`escape`]; `None` for a string [`escape`] cannot produce
/// (an object someone else wrote under this prefix).
pub fn unescape(s: &str) -> Option<Vec<u8>> {
    let s = s.as_bytes();
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while let Some(&c) = s.get(i) {
        if matches!(c, b'0'..=b'9' | b'A'..=b'Z' | b'a'..=b'z' | b'-') {
            out.push(c);
            i += 1;
            continue;
        }
        let hi = hex_value(*s.get(i + 1)?)?;
        let lo = hex_value(*s.get(i + 2)?)?;
        let b = (hi << 4) | lo;
        // Only the canonical escape of this byte decodes, so every object
        // name maps to at most one key and back.
        if escape_char(b) != Some(c) {
            return None;
        }
        out.push(b);
        i += 3;
    }
    Some(out)
}

/// The path segments of an escaped key.
fn key_segments(key: &[u8]) -> Vec<String> {
    let escaped = escape(key);
    if escaped.len() <= SEGMENT_CHARS {
        return vec![escaped];
    }
    // `escaped` is ASCII, so byte chunks are char chunks.
    let chunks: Vec<&[u8]> = escaped.as_bytes().chunks(SEGMENT_CHARS).collect();
    let last = chunks.len().saturating_sub(1);
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let mut s = String::from_utf8_lossy(c).into_owned();
            if i < last {
                s.push(CONTINUED);
            }
            s
        })
        .collect()
}

/// A path from segments that are valid by construction: non-empty, only
/// `[0-9A-Za-z-!.=_~:]`, never `.`/`..`. `Path::parse` keeps them verbatim
/// (`Path::from` would percent-encode `~`); the fallback is unreachable
/// but still yields a safe, encoded path rather than a panic.
fn parse(s: String) -> Path {
    match Path::parse(&s) {
        Ok(p) => p,
        Err(_) => Path::from(s),
    }
}

/// Paths of one store: its prefix and the namespace / key layout.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    /// The store prefix (possibly empty).
    root: String,
}

impl Layout {
    /// A layout under `prefix` (already validated).
    pub(crate) fn new(prefix: &str) -> Self {
        Layout {
            root: prefix.trim_matches('/').to_owned(),
        }
    }

    fn join(&self, rest: &str) -> String {
        if self.root.is_empty() {
            rest.to_owned()
        } else {
            format!("{}/{rest}", self.root)
        }
    }

    /// The prefix path (`None` for the bucket root).
    pub(crate) fn root(&self) -> Option<Path> {
        (!self.root.is_empty()).then(|| parse(self.root.clone()))
    }

    /// The directory of a namespace.
    pub(crate) fn namespace(&self, ns: &str) -> Path {
        parse(self.join(&escape(ns.as_bytes())))
    }

    /// The object of one key.
    pub(crate) fn key(&self, ns: &str, key: &[u8]) -> Path {
        // The common case (a key that fits one segment) in one buffer:
        // every KV call builds a path.
        let mut s = String::with_capacity(self.root.len() + 3 * (ns.len() + key.len()) + 2);
        if !self.root.is_empty() {
            s.push_str(&self.root);
            s.push('/');
        }
        escape_into(&mut s, ns.as_bytes());
        let at = s.len();
        s.push('/');
        escape_into(&mut s, key);
        if s.len() - at - 1 > SEGMENT_CHARS {
            s.truncate(at);
            for seg in key_segments(key) {
                s.push('/');
                s.push_str(&seg);
            }
        }
        parse(s)
    }

    /// The listing offset of a forward scan from `lower`: every object of
    /// a key the bound admits sorts strictly after it (`list_with_offset`
    /// is exclusive). For an inclusive bound that is the key's path with
    /// its last character dropped, which sorts before the key's path and
    /// after no key smaller than the key's shared prefix; the few such
    /// keys it lets through are filtered by the scan's own bounds.
    pub(crate) fn listing_offset(&self, ns: &str, lower: &Bound<Bytes>) -> Path {
        match lower {
            Bound::Unbounded => self.namespace(ns),
            Bound::Excluded(k) => self.key(ns, k),
            Bound::Included(k) => {
                let mut s = self.key(ns, k).as_ref().to_owned();
                s.pop();
                while s.ends_with('/') {
                    s.pop();
                }
                parse(s)
            }
        }
    }

    /// The namespace a direct child of the root names, if it is one of
    /// ours.
    pub(crate) fn namespace_of(&self, child: &Path) -> Option<String> {
        let seg = child.filename()?;
        let ns = String::from_utf8(unescape(seg)?).ok()?;
        storage_core::validate::namespace(
            storage_core::At::new("list_namespaces", crate::config::BACKEND),
            &crate::config::CAPABILITIES,
            &ns,
        )
        .ok()?;
        Some(ns)
    }

    /// The key an object under `ns_dir` names, if it is one of ours.
    pub(crate) fn key_of(&self, ns_dir: &Path, object: &Path) -> Option<Vec<u8>> {
        let parts: Vec<_> = object.prefix_match(ns_dir)?.collect();
        let last = parts.len().checked_sub(1)?;
        let mut escaped = String::new();
        for (i, p) in parts.iter().enumerate() {
            let s = p.as_ref();
            if i < last {
                let body = s.strip_suffix(CONTINUED)?;
                if body.len() != SEGMENT_CHARS {
                    return None;
                }
                escaped.push_str(body);
            } else {
                if s.is_empty() || s.len() > SEGMENT_CHARS {
                    return None;
                }
                escaped.push_str(s);
            }
        }
        let key = unescape(&escaped)?;
        // Only the canonical layout of a key decodes.
        (key_segments(&key).len() == parts.len()).then_some(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_round_trips_every_byte_and_keeps_order() {
        let all: Vec<Vec<u8>> = (0u8..=255).map(|b| vec![b]).collect();
        for k in &all {
            assert_eq!(unescape(&escape(k)).as_deref(), Some(&k[..]));
        }
        let mut keys: Vec<Vec<u8>> = Vec::new();
        for a in [
            0u8, b'%', b'-', b'.', b'/', b'0', b'A', b'_', b'a', b'z', 0x7f, 0xff,
        ] {
            keys.push(vec![a]);
            for b in [0u8, b'/', b'a', 0xff] {
                keys.push(vec![a, b]);
            }
        }
        keys.sort();
        let escaped: Vec<String> = keys.iter().map(|k| escape(k)).collect();
        let mut sorted = escaped.clone();
        sorted.sort();
        assert_eq!(escaped, sorted);
    }

    #[test]
    fn hostile_keys_stay_in_their_namespace() {
        let layout = Layout::new("p/q");
        let dir = layout.namespace("ns");
        for k in [
            &b".."[..],
            b".",
            b"/",
            b"../../x",
            b"%2F",
            b"a/../../b",
            b"\0",
            b"\xff\xfe",
        ] {
            let p = layout.key("ns", k);
            assert_eq!(p.prefix_match(&dir).map(|i| i.count()), Some(1), "{p}");
            assert_eq!(layout.key_of(&dir, &p).as_deref(), Some(k));
        }
    }

    #[test]
    fn long_keys_split_and_decode() {
        let layout = Layout::new("");
        let dir = layout.namespace("ns");
        let long = vec![0xffu8; 240];
        let p = layout.key("ns", &long);
        assert!(p.parts().all(|s| s.as_ref().len() <= 255));
        assert_eq!(layout.key_of(&dir, &p), Some(long));
        assert!(p.as_ref().len() <= 1024 - 101);
    }

    #[test]
    fn listing_offsets_admit_every_key_the_bound_admits() {
        let layout = Layout::new("pre");
        let mut keys: Vec<Vec<u8>> = vec![vec![0], vec![0xff], b"a".to_vec(), b"a\0".to_vec()];
        // Keys around the segment cut (escaped lengths 199..=202).
        for n in [66usize, 67, 199, 200, 201] {
            keys.push(vec![b'x'; n]);
            keys.push([vec![b'x'; n], b"/".to_vec()].concat());
            keys.push([vec![0xffu8; n / 3], vec![b'a']].concat());
        }
        for k in &keys {
            let k = Bytes::from(k.clone());
            let inclusive = layout.listing_offset("ns", &Bound::Included(k.clone()));
            let exclusive = layout.listing_offset("ns", &Bound::Excluded(k.clone()));
            let unbounded = layout.listing_offset("ns", &Bound::Unbounded);
            for j in &keys {
                let path = layout.key("ns", j);
                if j[..] >= k[..] {
                    assert!(path > inclusive, "{path} <= {inclusive}");
                }
                assert_eq!(path > exclusive, j[..] > k[..], "{path} vs {exclusive}");
                assert!(path > unbounded);
            }
        }
    }

    #[test]
    fn non_canonical_names_do_not_decode() {
        assert_eq!(unescape("!41"), None); // 'A' is never escaped
        assert_eq!(unescape("~2F"), None); // '/' escapes with '.'
        assert_eq!(unescape("!4"), None);
        assert_eq!(unescape("%41"), None);
    }
}
