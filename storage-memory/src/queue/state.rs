//! One queue's state, guarded by the queue's mutex: messages, the delivery
//! index, the retention index, the id index and the dedup memory.
//!
//! Costs (n = messages in the queue, b = messages a receive returns or
//! moves, e = messages past retention, s = entries left stale):
//! - send: O(1) amortised per message on a standard queue (the time
//!   indexes are [`Lanes`]: a push onto a sorted run; a key that fits no
//!   run goes to an ordered set, O(log n)), + O(log m + log G) on FIFO
//!   queues;
//! - receive: O(b + s) on standard queues — the least `(visible_at, seq)`
//!   is the least of at most four run fronts (and the set's first); FIFO
//!   queues merge ready groups by head sequence (see [`super::fifo`]);
//!   neither looks at hidden messages;
//! - ack / change_visibility: O(1) for ids the queue issued (the id names
//!   its sequence, see [`super::ids`]), a hash lookup for others;
//! - retention: one comparison per operation against the earliest
//!   expiry, then O(1) per expired message via `(sent_at, seq)`;
//! - stale index entries (acked, re-hidden or moved messages) are
//!   skipped when they come up and compacted away once they outnumber the
//!   live ones (plus slack), O(1) amortised;
//! - counts: O(n); export: O(n log n); purge: O(n) to drop.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use storage_core::validate::DEDUP_WINDOW;
use storage_core::{
    At, DedupEntry, MessageId, MessageState, QueueConfig, QueueCounts, Receipt, ReceivedMessage,
    Result, SendMessage, Timestamp,
};

use super::fifo::{group_key, FifoIndex};
use super::hash::FastMap;
use super::ids::Ids;
use super::lanes::Lanes;

/// A stored message.
#[derive(Debug)]
pub(crate) struct Msg {
    pub(super) id: MessageId,
    pub(super) seq: u64,
    pub(super) body: Bytes,
    pub(super) attributes: BTreeMap<String, String>,
    pub(super) group_id: Option<String>,
    pub(super) dedup_id: Option<String>,
    pub(super) sent_at: Timestamp,
    pub(super) visible_at: Timestamp,
    pub(super) receive_count: u32,
    pub(super) first_received_at: Option<Timestamp>,
    /// Whether the queue's id index holds this message's id (it does not
    /// for an id the queue issued for this sequence, see [`Ids`]).
    pub(super) indexed: bool,
}

impl Msg {
    fn from_state(s: MessageState) -> Self {
        Msg {
            id: s.id,
            seq: s.sequence,
            body: s.body,
            attributes: s.attributes,
            group_id: s.group_id,
            dedup_id: s.dedup_id,
            sent_at: s.sent_at,
            visible_at: s.visible_at,
            receive_count: s.receive_count,
            first_received_at: s.first_received_at,
            indexed: false,
        }
    }

    fn to_state(&self) -> MessageState {
        MessageState {
            id: self.id.clone(),
            sequence: self.seq,
            body: self.body.clone(),
            attributes: self.attributes.clone(),
            group_id: self.group_id.clone(),
            dedup_id: self.dedup_id.clone(),
            sent_at: self.sent_at,
            visible_at: self.visible_at,
            receive_count: self.receive_count,
            first_received_at: self.first_received_at,
        }
    }

    /// Hides the message for `visibility` and issues the delivery.
    fn deliver(&mut self, now: Timestamp, visibility: Duration) -> ReceivedMessage {
        self.visible_at = now.saturating_add(visibility);
        self.receive_count = self.receive_count.saturating_add(1);
        let first = *self.first_received_at.get_or_insert(now);
        ReceivedMessage {
            id: self.id.clone(),
            body: self.body.clone(),
            attributes: self.attributes.clone(),
            receipt: Receipt {
                message_id: self.id.clone(),
                receive_count: self.receive_count,
            },
            receive_count: self.receive_count,
            sent_at: self.sent_at,
            first_received_at: first,
            group_id: self.group_id.clone(),
            dedup_id: self.dedup_id.clone(),
        }
    }
}

/// A standard queue's delivery entry: `(visible_at, seq, receive_count)`
/// of the message when it was filed; it is stale once the message's
/// visible-at or receive count moved on (or the message left).
type ReadyEntry = (Timestamp, u64, u32);

/// A retention entry: `(sent_at, seq)`; stale once the message left.
type SentEntry = (Timestamp, u64);

/// Later than any expiry.
const NEVER: Timestamp = Timestamp::from_millis(u64::MAX);

fn ready_live(messages: &FastMap<u64, Msg>) -> impl Fn(&ReadyEntry) -> bool + '_ {
    |&(visible_at, seq, count)| {
        messages
            .get(&seq)
            .is_some_and(|m| m.visible_at == visible_at && m.receive_count == count)
    }
}

fn sent_live(messages: &FastMap<u64, Msg>) -> impl Fn(&SentEntry) -> bool + '_ {
    |(_, seq)| messages.contains_key(seq)
}

/// Takes a message out of the message map and its id out of the id
/// index (the one place both happen, so the index cannot keep an id
/// whose message left).
fn take(messages: &mut FastMap<u64, Msg>, ids: &mut Ids, seq: u64) -> Option<Msg> {
    let m = messages.remove(&seq)?;
    if m.indexed {
        ids.forget(&m.id, seq);
    }
    Some(m)
}

/// Files a standard queue message's current delivery entry.
fn file_ready(ready: &mut Lanes<ReadyEntry>, messages: &FastMap<u64, Msg>, seq: u64) {
    if let Some(m) = messages.get(&seq) {
        ready.push(
            (m.visible_at, seq, m.receive_count),
            messages.len(),
            ready_live(messages),
        );
    }
}

/// The delivery order index.
#[derive(Debug)]
enum Order {
    /// Standard queue: every message by `(visible_at, seq)` (entries of
    /// earlier states are left behind and skipped, see [`Lanes`]).
    Standard(Lanes<ReadyEntry>),
    /// FIFO queue: groups.
    Fifo(FifoIndex),
}

/// FIFO dedup memory: id → (message id, expiry), plus the ids in the order
/// they were remembered for lazy expiry.
#[derive(Debug, Default)]
struct Dedup {
    map: HashMap<String, (MessageId, Timestamp)>,
    /// `(expires_at, id)`, non-decreasing in the normal case (the store
    /// clock never runs backwards); an imported out-of-order entry only
    /// delays the purge of later ones, lookups check expiry anyway.
    order: VecDeque<(Timestamp, String)>,
}

impl Dedup {
    fn purge(&mut self, now: Timestamp) {
        while let Some((at, _)) = self.order.front() {
            if *at > now {
                break;
            }
            if let Some((at, id)) = self.order.pop_front() {
                if self.map.get(&id).is_some_and(|(_, exp)| *exp == at) {
                    self.map.remove(&id);
                }
            }
        }
    }

    fn lookup(&self, id: &str, now: Timestamp) -> Option<&MessageId> {
        self.map
            .get(id)
            .filter(|(_, exp)| *exp > now)
            .map(|(m, _)| m)
    }

    fn insert(&mut self, id: String, message: MessageId, expires_at: Timestamp) {
        self.order.push_back((expires_at, id.clone()));
        self.map.insert(id, (message, expires_at));
    }
}

/// Validates a whole batch for `config` before anything is filed and
/// returns the effective dedup ids, one per message on FIFO queues; on
/// standard queues there are none and the vector stays unallocated.
pub(super) fn validate_batch(
    at: At<'_>,
    batch: &[SendMessage],
    config: &QueueConfig,
) -> Result<Vec<Option<String>>> {
    if config.fifo {
        return batch.iter().map(|m| m.validate(at, config)).collect();
    }
    for m in batch {
        m.validate(at, config)?;
    }
    Ok(Vec::new())
}

/// What one receive picked.
#[derive(Debug)]
pub(super) struct Pick<D> {
    /// Deliveries, in delivery order.
    pub(super) delivered: Vec<ReceivedMessage>,
    /// Messages taken out for the dead-letter queue.
    pub(super) moved: Vec<Msg>,
    /// The dead-letter queue, when one was resolved.
    pub(super) dlq: Option<D>,
    /// When nothing was delivered: the next time something may become
    /// deliverable (for long polls on a real clock).
    pub(super) next_visible: Option<Timestamp>,
}

/// A message's delivery attempt was refused: the receipt is stale.
#[derive(Debug, Clone, Copy)]
pub(super) struct Stale;

/// One queue's state.
#[derive(Debug)]
pub(crate) struct QueueCore {
    /// Shared so a send to a content-based-dedup queue can validate (hash
    /// bodies) outside the lock and check, under it, that the config did
    /// not change meanwhile (`Arc::ptr_eq`).
    pub(super) config: Arc<QueueConfig>,
    next_seq: u64,
    messages: FastMap<u64, Msg>,
    ids: Ids,
    /// Retention index: `(sent_at, seq)`, stale entries skipped.
    by_sent: Lanes<SentEntry>,
    /// No message expires before this (a lower bound: the expiry of the
    /// earliest entry in `by_sent`, stale or not), so the check every
    /// operation starts with is one comparison.
    next_expiry: Timestamp,
    order: Order,
    dedup: Dedup,
}

impl QueueCore {
    /// An empty queue.
    pub(super) fn new(config: QueueConfig) -> Self {
        let order = if config.fifo {
            Order::Fifo(FifoIndex::default())
        } else {
            Order::Standard(Lanes::default())
        };
        QueueCore {
            config: Arc::new(config),
            next_seq: 1,
            messages: FastMap::default(),
            ids: Ids::new(),
            by_sent: Lanes::default(),
            next_expiry: NEVER,
            order,
            dedup: Dedup::default(),
        }
    }

    /// A queue holding exactly `state` (config already validated).
    pub(super) fn from_state(
        state: storage_core::QueueState,
        now: Timestamp,
    ) -> Result<Self, String> {
        state.check_consistency()?;
        let mut core = QueueCore::new(state.config);
        core.next_seq = state.next_sequence;
        for m in state.messages {
            core.insert(Msg::from_state(m), now);
        }
        let mut dedup = state.dedup;
        dedup.sort_by(|a, b| (a.expires_at, &a.dedup_id).cmp(&(b.expires_at, &b.dedup_id)));
        for d in dedup {
            core.dedup.insert(d.dedup_id, d.message_id, d.expires_at);
        }
        Ok(core)
    }

    /// The full state, for snapshots.
    pub(super) fn export(&mut self, now: Timestamp) -> storage_core::QueueState {
        self.expire(now);
        self.dedup.purge(now);
        let mut messages: Vec<MessageState> = self.messages.values().map(Msg::to_state).collect();
        messages.sort_by_key(|m| m.sequence);
        let mut dedup: Vec<DedupEntry> = self
            .dedup
            .map
            .iter()
            .filter(|(_, (_, exp))| *exp > now)
            .map(|(id, (message_id, exp))| DedupEntry {
                dedup_id: id.clone(),
                message_id: message_id.clone(),
                expires_at: *exp,
            })
            .collect();
        dedup.sort_by(|a, b| (a.expires_at, &a.dedup_id).cmp(&(b.expires_at, &b.dedup_id)));
        storage_core::QueueState {
            config: QueueConfig::clone(&self.config),
            messages,
            dedup,
            next_sequence: self.next_seq,
        }
    }

    /// Files a message that arrived with its id (import, dead-letter
    /// move). A message with the same id already here is replaced.
    fn insert(&mut self, mut msg: Msg, now: Timestamp) {
        if let Some(old) = self.ids.find(&msg.id, &self.messages).map(|m| m.seq) {
            self.remove(old, now);
        }
        msg.indexed = self.ids.file(&msg.id, msg.seq);
        self.file(msg, now);
    }

    /// Files a message in the message map and the time indexes (its id
    /// is filed already, or was issued for it).
    fn file(&mut self, msg: Msg, now: Timestamp) {
        let (seq, sent_at, visible_at, receive_count) =
            (msg.seq, msg.sent_at, msg.visible_at, msg.receive_count);
        self.messages.insert(seq, msg);
        let live = self.messages.len();
        self.by_sent
            .push((sent_at, seq), live, sent_live(&self.messages));
        self.next_expiry = self
            .next_expiry
            .min(sent_at.saturating_add(self.config.retention));
        match &mut self.order {
            Order::Standard(ready) => file_ready(ready, &self.messages, seq),
            Order::Fifo(fifo) => {
                if let Some(m) = self.messages.get(&seq) {
                    fifo.add(
                        seq,
                        group_key(m),
                        visible_at,
                        receive_count,
                        &self.messages,
                        now,
                    );
                }
            }
        }
    }

    /// Takes a message out of every index (its retention and standard
    /// delivery entries go stale).
    fn remove(&mut self, seq: u64, now: Timestamp) -> Option<Msg> {
        let m = take(&mut self.messages, &mut self.ids, seq)?;
        match &mut self.order {
            Order::Standard(_) => {}
            Order::Fifo(fifo) => fifo.remove(
                seq,
                group_key(&m),
                m.visible_at,
                m.receive_count,
                &self.messages,
                now,
            ),
        }
        Some(m)
    }

    /// Drops every message past retention.
    pub(super) fn expire(&mut self, now: Timestamp) {
        if now < self.next_expiry {
            return;
        }
        let retention = self.config.retention;
        while let Some((_, seq)) = self.by_sent.pop_first_if(sent_live(&self.messages), |e| {
            e.0.saturating_add(retention) <= now
        }) {
            self.remove(seq, now);
        }
        self.next_expiry = self
            .by_sent
            .first(sent_live(&self.messages))
            .map_or(NEVER, |(sent_at, _)| sent_at.saturating_add(retention));
    }

    /// Enqueues validated messages (see [`validate_batch`] for `dedup`)
    /// and returns the ids to report, in order: a duplicate reports the
    /// original's id.
    pub(super) fn send(
        &mut self,
        batch: Vec<SendMessage>,
        mut dedup: Vec<Option<String>>,
        now: Timestamp,
    ) -> Vec<MessageId> {
        if self.config.fifo {
            self.dedup.purge(now);
        }
        let mut ids = Vec::with_capacity(batch.len());
        for (i, msg) in batch.into_iter().enumerate() {
            let id = match dedup.get_mut(i).and_then(Option::take) {
                Some(d) => match self.dedup.lookup(&d, now) {
                    Some(original) => original.clone(),
                    None => {
                        let id = self.enqueue(msg, Some(d.clone()), now);
                        self.dedup
                            .insert(d, id.clone(), now.saturating_add(DEDUP_WINDOW));
                        id
                    }
                },
                None => self.enqueue(msg, None, now),
            };
            ids.push(id);
        }
        ids
    }

    /// Files a new message under the next sequence and returns its id.
    fn enqueue(&mut self, msg: SendMessage, dedup: Option<String>, now: Timestamp) -> MessageId {
        let delay = msg.delay.unwrap_or(self.config.delay);
        let seq = self.next_seq;
        self.next_seq = self.next_seq.saturating_add(1);
        // An issued id is new to this queue; a random one (sequence past
        // 62 bits) replaces any message that happens to carry it.
        let (id, issued) = match self.ids.issue(seq) {
            Some(id) => (id, true),
            None => (MessageId::random(), false),
        };
        let msg = Msg {
            id: id.clone(),
            seq,
            body: msg.body,
            attributes: msg.attributes,
            group_id: msg.group_id,
            dedup_id: dedup,
            sent_at: now,
            visible_at: now.saturating_add(delay),
            receive_count: 0,
            first_received_at: None,
            indexed: false,
        };
        if issued {
            self.file(msg, now);
        } else {
            self.insert(msg, now);
        }
        id
    }

    /// Files a message moved here from another queue's redrive: new
    /// sequence, never received, visible at `now`.
    pub(super) fn accept_dead_letter(&mut self, mut msg: Msg, now: Timestamp) {
        msg.seq = self.next_seq;
        self.next_seq = self.next_seq.saturating_add(1);
        msg.receive_count = 0;
        msg.first_received_at = None;
        msg.visible_at = now;
        self.insert(msg, now);
    }

    /// Picks up to `max` messages (call [`QueueCore::expire`] first).
    /// `resolve(name)` looks up the dead-letter queue, at most once, and
    /// only when a message is due to move.
    pub(super) fn receive<D>(
        &mut self,
        now: Timestamp,
        max: usize,
        visibility: Duration,
        mut resolve: impl FnMut(&str) -> Option<D>,
    ) -> Pick<D> {
        let QueueCore {
            config,
            messages,
            ids,
            order,
            ..
        } = self;
        let mut delivered = Vec::with_capacity(max.min(16));
        let mut moved = Vec::new();
        let mut dlq: Option<Option<D>> = None;
        let redrive = config.redrive.as_ref();
        // Whether a message received `count` times moves instead.
        let mut must_move = |count: u32| match redrive {
            Some(r) if count >= r.max_receives => dlq
                .get_or_insert_with(|| resolve(&r.dead_letter_queue))
                .is_some(),
            _ => false,
        };
        let next_visible = match order {
            Order::Standard(ready) => {
                // A picked message is re-filed at once when its new
                // visible-at is in the future (the loop stops before
                // reaching it); a zero visibility would make it due again
                // in this very call, so those wait in `hidden` until the
                // end (which only allocates in that case).
                let mut hidden = Vec::new();
                while delivered.len() < max {
                    // Liveness is checked here, in the one lookup the
                    // delivery needs anyway.
                    let Some((visible_at, seq, count)) =
                        ready.pop_first_if(|_| true, |e| e.0 <= now)
                    else {
                        break;
                    };
                    let Some(msg) = messages
                        .get_mut(&seq)
                        .filter(|m| m.visible_at == visible_at && m.receive_count == count)
                    else {
                        continue;
                    };
                    if must_move(msg.receive_count) {
                        moved.extend(take(messages, ids, seq));
                        continue;
                    }
                    delivered.push(msg.deliver(now, visibility));
                    if msg.visible_at > now {
                        file_ready(ready, messages, seq);
                    } else {
                        hidden.push(seq);
                    }
                }
                for seq in hidden {
                    file_ready(ready, messages, seq);
                }
                if delivered.is_empty() {
                    ready
                        .first(ready_live(messages))
                        .map(|(t, _, _)| t)
                        .filter(|t| *t > now)
                } else {
                    None
                }
            }
            Order::Fifo(fifo) => {
                fifo.promote(messages, now);
                let mut touched = Vec::new();
                while delivered.len() < max {
                    let Some((seq, name)) = fifo.pop_ready() else {
                        break;
                    };
                    if let Some(msg) = messages.get_mut(&seq) {
                        if must_move(msg.receive_count) {
                            fifo.detach(seq, &name, msg.visible_at, msg.receive_count);
                            moved.extend(take(messages, ids, seq));
                        } else {
                            let old = (msg.visible_at, msg.receive_count);
                            delivered.push(msg.deliver(now, visibility));
                            let new = (msg.visible_at, msg.receive_count);
                            fifo.set_visibility(seq, &name, old, new);
                        }
                    }
                    // The group's next message may follow in this call if
                    // it is visible; it competes with other groups' heads.
                    let next = fifo
                        .next_in_group(&name, seq)
                        .filter(|n| messages.get(n).is_some_and(|m| m.visible_at <= now));
                    if let Some(n) = next {
                        fifo.push_ready(n, name.clone());
                    }
                    touched.push(name);
                }
                for name in touched {
                    fifo.refresh(&name, messages, now);
                }
                fifo.next_wake()
            }
        };
        Pick {
            delivered,
            moved,
            dlq: dlq.flatten(),
            next_visible,
        }
    }

    /// The message of this delivery, if the receipt is its latest one.
    fn current(&self, receipt: &Receipt) -> Result<u64, Stale> {
        let m = self
            .ids
            .find(&receipt.message_id, &self.messages)
            .ok_or(Stale)?;
        if m.receive_count > 0 && m.receive_count == receipt.receive_count {
            Ok(m.seq)
        } else {
            Err(Stale)
        }
    }

    /// Deletes the message of this delivery (call [`QueueCore::expire`] first).
    pub(super) fn ack(&mut self, receipt: &Receipt, now: Timestamp) -> Result<(), Stale> {
        let seq = self.current(receipt)?;
        self.remove(seq, now);
        Ok(())
    }

    /// Re-hides the message of this delivery (call [`QueueCore::expire`] first).
    pub(super) fn change_visibility(
        &mut self,
        receipt: &Receipt,
        timeout: Duration,
        now: Timestamp,
    ) -> Result<(), Stale> {
        let seq = self.current(receipt)?;
        let Some(m) = self.messages.get_mut(&seq) else {
            return Err(Stale);
        };
        let old = m.visible_at;
        let new = now.saturating_add(timeout);
        m.visible_at = new;
        let count = m.receive_count;
        match &mut self.order {
            Order::Standard(ready) => file_ready(ready, &self.messages, seq),
            Order::Fifo(fifo) => {
                if let Some(m) = self.messages.get(&seq) {
                    let group = group_key(m);
                    fifo.set_visibility(seq, group, (old, count), (new, count));
                    fifo.refresh(group, &self.messages, now);
                }
            }
        }
        Ok(())
    }

    /// Drops every message; dedup memory and sequence numbers stay.
    pub(super) fn purge(&mut self) {
        self.messages.clear();
        self.ids.clear();
        self.by_sent.clear();
        self.next_expiry = NEVER;
        self.order = if self.config.fifo {
            Order::Fifo(FifoIndex::default())
        } else {
            Order::Standard(Lanes::default())
        };
    }

    /// Approximate counts (call [`QueueCore::expire`] first).
    pub(super) fn counts(&self, now: Timestamp) -> QueueCounts {
        let mut c = QueueCounts::default();
        for m in self.messages.values() {
            if m.visible_at <= now {
                c.visible += 1;
            } else if m.receive_count > 0 {
                c.in_flight += 1;
            } else {
                c.delayed += 1;
            }
        }
        c
    }
}
