//! Message id → sequence index that never copies an id.
//!
//! Keying a map by `MessageId` would clone the id's `String` on every
//! send (an allocation on the hot path) although the message already
//! holds it. This index is keyed by the id's 64-bit hash instead and
//! confirms a hit against the stored message's own id, so it holds only
//! integers. Distinct ids with the same hash (never for random UUIDs, but
//! possible for imported ids) share a short list.

use std::collections::hash_map::Entry;
use std::hash::Hasher;

use storage_core::MessageId;

use super::hash::{FastHasher, FastMap};
use super::state::Msg;

#[derive(Debug)]
enum Slot {
    One(u64),
    /// Sequences of messages whose ids share one hash (at least two).
    Many(Vec<u64>),
}

/// Message id → sequence, for the messages of one queue.
#[derive(Debug, Default)]
pub(super) struct IdIndex {
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
    pub(super) fn find<'m>(
        &self,
        id: &MessageId,
        messages: &'m FastMap<u64, Msg>,
    ) -> Option<&'m Msg> {
        self.candidates(hash(id))
            .iter()
            .find_map(|seq| messages.get(seq).filter(|m| m.id == *id))
    }

    /// Files `seq` under `id` (which must not be filed already).
    pub(super) fn insert(&mut self, id: &MessageId, seq: u64) {
        self.insert_hashed(hash(id), seq);
    }

    /// Takes `seq`, filed under `id`, out of the index.
    pub(super) fn remove(&mut self, id: &MessageId, seq: u64) {
        self.remove_hashed(hash(id), seq);
    }

    pub(super) fn clear(&mut self) {
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
