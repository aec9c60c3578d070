//! Message ids: issued so that they name their message, and an index for
//! the ids that do not.
//!
//! A queue issues every id it creates itself from the message's sequence
//! number ([`Ids::issue`]): a UUID v4-shaped text whose first 60 free bits
//! are a random salt drawn when the queue state was created and whose last
//! 62 bits are a salted permutation of the sequence. Looking such an id up
//! decodes the sequence and confirms it against the stored message's own
//! id, so the hot path (send, ack) neither hashes ids nor keeps an index
//! of them. Ids the queue did not issue for that sequence (imported
//! messages, dead-letter arrivals, sequences beyond 62 bits) go to an
//! [`IdIndex`] keyed by the id's hash instead.
//!
//! Ids stay unique within a queue (distinct sequences give distinct
//! ids) and, through the salt, across queues and re-created queues with
//! overwhelming probability. They are not secrets: receipts never were.

use std::collections::hash_map::{Entry, RandomState};
use std::hash::{BuildHasher, Hasher};

use storage_core::MessageId;

use super::hash::{FastHasher, FastMap};
use super::state::Msg;

/// An odd multiplier (the golden ratio's) and its inverse modulo 2^64,
/// which permute the sequence bits.
const MUL: u64 = 0x9E37_79B9_7F4A_7C15;
const MUL_INV: u64 = inverse(MUL);
/// The 62 bits of an id that carry the sequence.
const SEQ_BITS: u64 = (1 << 62) - 1;
/// Eight lower-case hex digits (big-endian in `v`) → their 32-bit value,
/// eight at a time. Other bytes give some value: callers confirm.
fn hex8(v: u64) -> u64 {
    const LOW: u64 = 0x0F0F_0F0F_0F0F_0F0F;
    const ONES: u64 = 0x0101_0101_0101_0101;
    // '0'..='9' are 0x30..=0x39, 'a'..='f' 0x61..=0x66: the low nibble,
    // plus 9 where bit 6 is set.
    let v = (v & LOW) + ((v >> 6) & ONES) * 9;
    let v = (v >> 4 | v) & 0x00FF_00FF_00FF_00FF;
    let v = (v >> 8 | v) & 0x0000_FFFF_0000_FFFF;
    (v >> 16 | v) & 0xFFFF_FFFF
}

/// The inverse of odd `a` modulo 2^64 (Newton's iteration doubles the
/// correct low bits each step: 3, 6, 12, 24, 48, 96).
const fn inverse(a: u64) -> u64 {
    let mut x = a;
    let mut i = 0;
    while i < 5 {
        x = x.wrapping_mul(2u64.wrapping_sub(a.wrapping_mul(x)));
        i += 1;
    }
    x
}

/// The ids of one queue: the issuing salt and the index of other ids.
#[derive(Debug)]
pub(super) struct Ids {
    /// The id's first 64 bits (version nibble set).
    high: u64,
    /// Mixed into the sequence bits.
    low: u64,
    foreign: IdIndex,
}

impl Ids {
    /// A fresh salt.
    pub(super) fn new() -> Self {
        let random = |n: u8| {
            let mut h = RandomState::new().build_hasher();
            h.write_u8(n);
            h.finish()
        };
        Ids {
            high: (random(0) & !0xF000) | 0x4000,
            low: random(1) & SEQ_BITS,
            foreign: IdIndex::default(),
        }
    }

    /// The id this queue gives the message with sequence `seq`, or `None`
    /// past 62 bits of sequence.
    pub(super) fn issue(&self, seq: u64) -> Option<MessageId> {
        if seq > SEQ_BITS {
            return None;
        }
        let low = (1 << 63) | ((seq.wrapping_mul(MUL) & SEQ_BITS) ^ self.low);
        Some(MessageId::from_uuid_bits(
            u128::from(self.high) << 64 | u128::from(low),
        ))
    }

    /// The sequence an issued id names. Unconfirmed: any 36-byte text
    /// with hyphens in place decodes to some sequence, and the caller
    /// compares the message's id.
    fn decode(&self, id: &MessageId) -> Option<u64> {
        let text = id.as_bytes_checked()?;
        let word = |at: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&text[at..at + 8]);
            u64::from_be_bytes(w)
        };
        // Group 4 (19..23) then group 5 (24..36), without the hyphen.
        let first = (word(15) << 32) | (word(24) >> 32);
        let low = hex8(first) << 32 | hex8(word(28));
        Some(((low & SEQ_BITS) ^ self.low).wrapping_mul(MUL_INV) & SEQ_BITS)
    }

    /// The message with this id, looked up in `messages`.
    pub(super) fn find<'m>(
        &self,
        id: &MessageId,
        messages: &'m FastMap<u64, Msg>,
    ) -> Option<&'m Msg> {
        self.decode(id)
            .and_then(|seq| messages.get(&seq))
            .filter(|m| m.id == *id)
            .or_else(|| self.foreign.find(id, messages))
    }

    /// Records that `seq` carries `id`, which arrived with its message;
    /// returns whether the id went to the index (it did not if it is the
    /// id this queue issues for `seq`).
    pub(super) fn file(&mut self, id: &MessageId, seq: u64) -> bool {
        let foreign = self.decode(id) != Some(seq);
        if foreign {
            self.foreign.insert(id, seq);
        }
        foreign
    }

    /// Forgets an id [`Ids::file`] indexed.
    pub(super) fn forget(&mut self, id: &MessageId, seq: u64) {
        self.foreign.remove(id, seq);
    }

    /// Forgets every message (the salt stays).
    pub(super) fn clear(&mut self) {
        self.foreign.clear();
    }
}

/// An id's bytes if it has the 36-byte hyphenated shape of issued ids.
trait Shape {
    fn as_bytes_checked(&self) -> Option<&[u8; 36]>;
}

impl Shape for MessageId {
    fn as_bytes_checked(&self) -> Option<&[u8; 36]> {
        let text: &[u8; 36] = self.as_str().as_bytes().try_into().ok()?;
        (text[8] == b'-' && text[13] == b'-' && text[18] == b'-' && text[23] == b'-')
            .then_some(text)
    }
}

#[derive(Debug)]
enum Slot {
    One(u64),
    /// Sequences of messages whose ids share one hash (at least two).
    Many(Vec<u64>),
}

/// Message id → sequence, for the messages of one queue whose id was not
/// issued for their sequence.
#[derive(Debug, Default)]
struct IdIndex {
    map: FastMap<u64, Slot>,
}

fn hash(id: &MessageId) -> u64 {
    let mut h = FastHasher::default();
    h.write(id.as_str().as_bytes());
    h.finish()
}

impl IdIndex {
    /// The message with this id, looked up in `messages` (the queue's
    /// message map, which this index points into).
    fn find<'m>(&self, id: &MessageId, messages: &'m FastMap<u64, Msg>) -> Option<&'m Msg> {
        self.candidates(hash(id))
            .iter()
            .find_map(|seq| messages.get(seq).filter(|m| m.id == *id))
    }

    /// Files `seq` under `id` (which must not be filed already).
    fn insert(&mut self, id: &MessageId, seq: u64) {
        self.insert_hashed(hash(id), seq);
    }

    /// Takes `seq`, filed under `id`, out of the index.
    fn remove(&mut self, id: &MessageId, seq: u64) {
        self.remove_hashed(hash(id), seq);
    }

    fn clear(&mut self) {
        self.map.clear();
    }

    /// The sequences filed under hash `h`.
    fn candidates(&self, h: u64) -> &[u64] {
        match self.map.get(&h) {
            None => &[],
            Some(Slot::One(seq)) => std::slice::from_ref(seq),
            Some(Slot::Many(seqs)) => seqs,
        }
    }

    fn insert_hashed(&mut self, h: u64, seq: u64) {
        match self.map.entry(h) {
            Entry::Vacant(e) => {
                e.insert(Slot::One(seq));
            }
            Entry::Occupied(mut e) => {
                let slot = e.get_mut();
                match slot {
                    Slot::One(other) => *slot = Slot::Many(vec![*other, seq]),
                    Slot::Many(seqs) => seqs.push(seq),
                }
            }
        }
    }

    fn remove_hashed(&mut self, h: u64, seq: u64) {
        let Entry::Occupied(mut e) = self.map.entry(h) else {
            return;
        };
        let slot = e.get_mut();
        match slot {
            Slot::One(s) => {
                if *s == seq {
                    e.remove();
                }
            }
            Slot::Many(seqs) => {
                seqs.retain(|s| *s != seq);
                match seqs[..] {
                    [] => {
                        e.remove();
                    }
                    [last] => *slot = Slot::One(last),
                    _ => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issued ids are UUID v4-shaped, distinct, and decode to their
    /// sequence; another queue's ids do not, and texts of another shape
    /// do not decode at all.
    #[test]
    fn issued_ids_name_their_sequence() {
        assert_eq!(MUL.wrapping_mul(MUL_INV), 1);
        let (a, b) = (Ids::new(), Ids::new());
        let mut seen = std::collections::HashSet::new();
        for seq in (0..1000).chain([SEQ_BITS - 1, SEQ_BITS]) {
            let id = a.issue(seq).expect("62-bit sequence");
            let t = id.as_str().as_bytes();
            assert_eq!(t.len(), 36, "{id}");
            assert_eq!(t[14], b'4', "{id}: version 4");
            assert!(
                matches!(t[19], b'8' | b'9' | b'a' | b'b'),
                "{id}: RFC variant"
            );
            assert!(id
                .as_str()
                .bytes()
                .all(|c| c == b'-' || c.is_ascii_hexdigit()));
            assert!(!id.as_str().bytes().any(|c| c.is_ascii_uppercase()));
            assert_eq!(a.decode(&id), Some(seq));
            assert_ne!(b.issue(seq), Some(id.clone()));
            assert!(seen.insert(id));
        }
        assert_eq!(a.issue(SEQ_BITS + 1), None);
        let bad = [
            "",
            "1",
            &"0".repeat(36),
            "00000000-0000-4000-8000-0000000000000",
        ];
        for text in bad {
            assert_eq!(a.decode(&MessageId::new(text)), None, "{text:?}");
        }
        assert_eq!(hex8(u64::from_be_bytes(*b"0123abcf")), 0x0123_abcf);
        assert_eq!(hex8(u64::from_be_bytes(*b"fedc9876")), 0xfedc_9876);
    }

    /// Messages under issued ids are found without the index; foreign ids
    /// (and an issued id filed under another sequence) go through it.
    #[test]
    fn find_confirms_issued_ids_and_indexes_the_rest() {
        use bytes::Bytes;
        use storage_core::Timestamp;
        let msg = |id: MessageId, seq: u64| Msg {
            id,
            seq,
            body: Bytes::new(),
            attributes: Default::default(),
            group_id: None,
            dedup_id: None,
            sent_at: Timestamp::ZERO,
            visible_at: Timestamp::ZERO,
            receive_count: 0,
            first_received_at: None,
            indexed: false,
        };
        let mut ids = Ids::new();
        let other = Ids::new();
        let mut messages = FastMap::default();
        let own = ids.issue(1).expect("id");
        let foreign = MessageId::new("imported");
        let moved = other.issue(2).expect("id"); // another queue's id
        let misfiled = ids.issue(7).expect("id"); // ours, but on sequence 3
        for (id, seq) in [(&own, 1), (&foreign, 2), (&moved, 4), (&misfiled, 3)] {
            assert_eq!(ids.file(id, seq), seq != 1, "{id}");
            messages.insert(seq, msg(id.clone(), seq));
        }
        assert_eq!(ids.foreign.map.len(), 3);
        for (id, seq) in [(&own, 1), (&foreign, 2), (&moved, 4), (&misfiled, 3)] {
            assert_eq!(ids.find(id, &messages).map(|m| m.seq), Some(seq), "{id}");
        }
        assert!(ids.find(&ids.issue(2).expect("id"), &messages).is_none());
        for (id, seq) in [(&foreign, 2), (&moved, 4), (&misfiled, 3)] {
            ids.forget(id, seq);
        }
        assert!(ids.foreign.map.is_empty());
    }

    /// Ids sharing a hash (forced here) are kept apart and the slot
    /// shrinks back as they leave.
    #[test]
    fn colliding_hashes_share_a_slot() {
        let mut ix = IdIndex::default();
        ix.insert_hashed(7, 1);
        ix.insert_hashed(7, 2);
        ix.insert_hashed(7, 3);
        ix.insert_hashed(8, 4);
        assert_eq!(ix.candidates(7), &[1, 2, 3]);
        ix.remove_hashed(7, 2);
        assert_eq!(ix.candidates(7), &[1, 3]);
        ix.remove_hashed(7, 1);
        assert!(matches!(ix.map.get(&7), Some(Slot::One(3))));
        ix.remove_hashed(7, 9); // not filed: no change
        assert_eq!(ix.candidates(7), &[3]);
        ix.remove_hashed(7, 3);
        assert!(ix.candidates(7).is_empty());
        assert_eq!(ix.candidates(8), &[4]);
    }
}
