//! FIFO group index.
//!
//! Every group keeps its messages' sequence numbers in order and the
//! `(visible_at, sequence)` of its messages that have been received at
//! least once. A group is *ready* when its head is visible and none of its
//! received messages is still hidden; it then sits in `ready`, keyed by its
//! head sequence. Otherwise it sits in `waiting`, keyed by the time it
//! unblocks (the later of its head's visible-at and its last hidden
//! message's visible-at). Time only moves forward, so a ready group stays
//! ready until the group itself changes, and a waiting group becomes ready
//! at its key: a receive promotes the waiting groups that are due and then
//! merges the ready groups by sequence, which is exactly "messages in send
//! order, skipping blocked groups" without looking at a blocked group.
//!
//! Costs (G = groups, m = messages of one group): add / remove / refresh
//! O(log m + log G); promotion O(log G) per group that became due.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use storage_core::Timestamp;

use super::hash::FastMap;
use super::state::Msg;

/// Where a group currently sits in the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// In neither set (transiently, during a receive).
    None,
    /// In `ready`, keyed by this head sequence.
    Ready(u64),
    /// In `waiting`, keyed by this unblock time and head sequence.
    Waiting(Timestamp, u64),
}

#[derive(Debug)]
struct Group {
    name: Arc<str>,
    /// Sequences of the group's messages, in send order.
    seqs: BTreeSet<u64>,
    /// `(visible_at, sequence)` of messages received at least once.
    received: BTreeSet<(Timestamp, u64)>,
    slot: Slot,
}

/// The group index of one FIFO queue.
#[derive(Debug, Default)]
pub(super) struct FifoIndex {
    groups: FastMap<Arc<str>, Group>,
    /// Ready groups by head sequence (sequences are unique queue-wide).
    ready: BTreeMap<u64, Arc<str>>,
    /// Blocked groups by (unblock time, head sequence).
    waiting: BTreeMap<(Timestamp, u64), Arc<str>>,
}

/// The index key of a message's group: its group id, or `""` for a
/// message without one (only possible through import or a dead-letter
/// move from a standard queue).
pub(super) fn group_key(msg: &Msg) -> &str {
    msg.group_id.as_deref().unwrap_or("")
}

impl FifoIndex {
    /// Adds a message (already in `messages`) to its group.
    pub(super) fn add(
        &mut self,
        seq: u64,
        group: &str,
        visible_at: Timestamp,
        receive_count: u32,
        messages: &FastMap<u64, Msg>,
        now: Timestamp,
    ) {
        let g = match self.groups.get_mut(group) {
            Some(g) => g,
            None => {
                let name: Arc<str> = Arc::from(group);
                self.groups.entry(name.clone()).or_insert(Group {
                    name,
                    seqs: BTreeSet::new(),
                    received: BTreeSet::new(),
                    slot: Slot::None,
                })
            }
        };
        let becomes_head = g.seqs.first().is_none_or(|head| seq < *head);
        g.seqs.insert(seq);
        if receive_count > 0 {
            g.received.insert((visible_at, seq));
        }
        // Appending behind an existing head changes neither the head nor
        // the group's hidden messages, so its slot stays right.
        if becomes_head || receive_count > 0 {
            self.refresh(group, messages, now);
        }
    }

    /// Takes a message out of its group without re-filing the group.
    pub(super) fn detach(
        &mut self,
        seq: u64,
        group: &str,
        visible_at: Timestamp,
        receive_count: u32,
    ) {
        if let Some(g) = self.groups.get_mut(group) {
            g.seqs.remove(&seq);
            if receive_count > 0 {
                g.received.remove(&(visible_at, seq));
            }
        }
    }

    /// Takes a message (already out of `messages`) out of its group and
    /// re-files the group.
    pub(super) fn remove(
        &mut self,
        seq: u64,
        group: &str,
        visible_at: Timestamp,
        receive_count: u32,
        messages: &FastMap<u64, Msg>,
        now: Timestamp,
    ) {
        self.detach(seq, group, visible_at, receive_count);
        self.refresh(group, messages, now);
    }

    /// Records a message's new visibility and receive count, without
    /// re-filing the group.
    pub(super) fn set_visibility(
        &mut self,
        seq: u64,
        group: &str,
        old: (Timestamp, u32),
        new: (Timestamp, u32),
    ) {
        if let Some(g) = self.groups.get_mut(group) {
            if old.1 > 0 {
                g.received.remove(&(old.0, seq));
            }
            if new.1 > 0 {
                g.received.insert((new.0, seq));
            }
        }
    }

    /// Re-files a group in `ready` or `waiting` (or drops it when empty).
    pub(super) fn refresh(&mut self, group: &str, messages: &FastMap<u64, Msg>, now: Timestamp) {
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        match g.slot {
            Slot::None => {}
            Slot::Ready(head) => {
                self.ready.remove(&head);
            }
            Slot::Waiting(at, head) => {
                self.waiting.remove(&(at, head));
            }
        }
        g.slot = Slot::None;
        let Some(&head) = g.seqs.first() else {
            self.groups.remove(group);
            return;
        };
        let head_visible = messages.get(&head).map_or(now, |m| m.visible_at);
        let hidden_until = g.received.last().map_or(Timestamp::ZERO, |(t, _)| *t);
        let until = head_visible.max(hidden_until);
        if until <= now {
            self.ready.insert(head, g.name.clone());
            g.slot = Slot::Ready(head);
        } else {
            self.waiting.insert((until, head), g.name.clone());
            g.slot = Slot::Waiting(until, head);
        }
    }

    /// Moves every waiting group that is due by `now` to `ready`.
    pub(super) fn promote(&mut self, messages: &FastMap<u64, Msg>, now: Timestamp) {
        while let Some(entry) = self.waiting.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let name = entry.remove();
            if let Some(g) = self.groups.get_mut(&*name) {
                g.slot = Slot::None;
            }
            self.refresh(&name, messages, now);
        }
    }

    /// Takes the ready group with the lowest head sequence out of `ready`;
    /// the caller re-files it with [`FifoIndex::push_ready`] or
    /// [`FifoIndex::refresh`].
    pub(super) fn pop_ready(&mut self) -> Option<(u64, Arc<str>)> {
        let (seq, name) = self.ready.pop_first()?;
        if let Some(g) = self.groups.get_mut(&*name) {
            g.slot = Slot::None;
        }
        Some((seq, name))
    }

    /// Files a group as ready at `seq` for the rest of this receive.
    pub(super) fn push_ready(&mut self, seq: u64, name: Arc<str>) {
        if let Some(g) = self.groups.get_mut(&*name) {
            g.slot = Slot::Ready(seq);
            self.ready.insert(seq, name);
        }
    }

    /// The group's next message after `seq`.
    pub(super) fn next_in_group(&self, group: &str, seq: u64) -> Option<u64> {
        let g = self.groups.get(group)?;
        g.seqs.range(seq.saturating_add(1)..).next().copied()
    }

    /// When the first waiting group unblocks.
    pub(super) fn next_wake(&self) -> Option<Timestamp> {
        self.waiting.first_key_value().map(|((t, _), _)| *t)
    }
}
