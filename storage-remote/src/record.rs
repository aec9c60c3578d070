//! The bytes of one stored object.
//!
//! - A **live record** is one header byte, an optional expiry, then the
//!   value: `0x01 <value>` (no expiry) or `0x02 <expiry ms, u64 BE>
//!   <value>`. It is never empty, even for an empty value.
//! - A **tombstone** is the empty object: what a conditional delete
//!   writes. It is recognisable from a listing's size alone, without a
//!   read.
//!
//! Expiry is judged by the store's clock on every read (an entry whose
//! expiry instant is at or before now is absent), so a manual clock
//! drives it in tests; nothing deletes expired objects behind the
//! caller's back.

use bytes::{BufMut, Bytes, BytesMut};
use storage_core::Timestamp;

const LIVE: u8 = 0x01;
const LIVE_EXPIRING: u8 = 0x02;

/// A decoded object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Record {
    /// A value, with its expiry instant.
    Live {
        value: Bytes,
        expires_at: Option<Timestamp>,
    },
    /// A conditional delete's marker.
    Tombstone,
}

impl Record {
    /// Encodes a live record.
    pub(crate) fn encode(value: &[u8], expires_at: Option<Timestamp>) -> Bytes {
        let mut out = BytesMut::with_capacity(value.len() + 9);
        match expires_at {
            None => out.put_u8(LIVE),
            Some(t) => {
                out.put_u8(LIVE_EXPIRING);
                out.put_u64(t.as_millis());
            }
        }
        out.put_slice(value);
        out.freeze()
    }

    /// Decodes an object's bytes; `None` if they are not a record (an
    /// object someone else wrote under this store's prefix).
    pub(crate) fn decode(raw: Bytes) -> Option<Record> {
        match raw.first() {
            None => Some(Record::Tombstone),
            Some(&LIVE) => Some(Record::Live {
                value: raw.slice(1..),
                expires_at: None,
            }),
            Some(&LIVE_EXPIRING) => {
                let ms: [u8; 8] = raw.get(1..9)?.try_into().ok()?;
                Some(Record::Live {
                    value: raw.slice(9..),
                    expires_at: Some(Timestamp::from_millis(u64::from_be_bytes(ms))),
                })
            }
            Some(_) => None,
        }
    }

    /// The value and expiry if the record is live at `now`.
    pub(crate) fn live_at(self, now: Timestamp) -> Option<(Bytes, Option<Timestamp>)> {
        match self {
            Record::Live { value, expires_at } if expires_at.is_none_or(|t| t > now) => {
                Some((value, expires_at))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let t = Timestamp::from_millis(1234);
        for (v, e) in [(&b""[..], None), (b"x", Some(t)), (b"\x01\x02", None)] {
            let raw = Record::encode(v, e);
            assert!(!raw.is_empty());
            assert_eq!(
                Record::decode(raw),
                Some(Record::Live {
                    value: Bytes::copy_from_slice(v),
                    expires_at: e
                })
            );
        }
        assert_eq!(Record::decode(Bytes::new()), Some(Record::Tombstone));
        assert_eq!(Record::decode(Bytes::from_static(b"\x02\x00")), None);
        assert_eq!(Record::decode(Bytes::from_static(b"junk")), None);
    }

    #[test]
    fn expiry_at_now_is_absent() {
        let t = Timestamp::from_millis(10);
        let r = Record::Live {
            value: Bytes::new(),
            expires_at: Some(t),
        };
        assert!(r.clone().live_at(Timestamp::from_millis(9)).is_some());
        assert!(r.live_at(t).is_none());
    }
}
