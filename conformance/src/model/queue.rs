//! Reference model of the queue tier: the documented semantics of
//! [`QueueStore`](storage_core::QueueStore), written as plainly as possible
//! so the property tests can compare a backend against it step by step.
//!
//! Messages are named by their **send index** (0 for the first message the
//! model ever enqueued, in any queue), because backends hand out random ids;
//! the test driver maps each backend id to the index the model predicted.
//!
//! The model decides exactly:
//! - which messages a receive returns and in which order: standard queues
//!   by (visible-at, send order); FIFO queues in send order, skipping every
//!   group that has a message in flight or whose earliest remaining
//!   message is not yet visible (several consecutive messages of one free
//!   group may come in one call);
//! - redrive: a picked message already received `max_receives` times moves
//!   to an existing dead-letter queue (same index, body, attributes and
//!   send time; receive count 0; no first receive; visible at once; a new
//!   send-order position there) and does not count against `max_messages`;
//! - receipts: only the latest delivery's `(message, receive count)` is
//!   valid, on the queue holding the message;
//! - time boundaries, all half-open like KV expiry: a message is visible
//!   when `visible_at <= now`, gone when `sent_at + retention <= now`, and
//!   a dedup id is free again when `first send + 5 min <= now`;
//! - counts: visible (`visible_at <= now`, FIFO messages waiting behind
//!   their group included), in flight (received, still hidden), delayed
//!   (never received, not yet visible).
//!
//! Errors are predicted as a *set* of acceptable kinds, because the
//! contract does not order checks (a bad batch sent to a missing queue may
//! be `InvalidInput` or `NotFound`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::Bytes;
use storage_core::validate::{
    DEDUP_WINDOW, MAX_BATCH, MAX_DELAY, MAX_MESSAGE_ID_FIELD, MAX_VISIBILITY_TIMEOUT, MAX_WAIT,
};
use storage_core::{
    queue::content_dedup_id, Capabilities, Error, QueueConfig, QueueCounts, SendMessage, Timestamp,
};

/// The error variants the queue tier documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ErrorKind {
    /// [`Error::NotFound`].
    NotFound,
    /// [`Error::AlreadyExists`].
    AlreadyExists,
    /// [`Error::StaleReceipt`].
    StaleReceipt,
    /// [`Error::InvalidInput`].
    InvalidInput,
    /// [`Error::Unsupported`].
    Unsupported,
}

impl ErrorKind {
    /// The kind of a backend error, `None` for kinds the queue tier never
    /// expects (conflicts, transport errors ...).
    pub fn of(e: &Error) -> Option<ErrorKind> {
        match e {
            Error::NotFound { .. } => Some(ErrorKind::NotFound),
            Error::AlreadyExists { .. } => Some(ErrorKind::AlreadyExists),
            Error::StaleReceipt { .. } => Some(ErrorKind::StaleReceipt),
            Error::InvalidInput { .. } => Some(ErrorKind::InvalidInput),
            Error::Unsupported { .. } => Some(ErrorKind::Unsupported),
            _ => None,
        }
    }
}

/// The errors an operation may acceptably fail with.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Expected(pub BTreeSet<ErrorKind>);

impl Expected {
    /// Exactly one acceptable kind.
    pub fn one(kind: ErrorKind) -> Self {
        Expected(BTreeSet::from([kind]))
    }

    /// Whether `e` is one of the acceptable errors.
    pub fn allows(&self, e: &Error) -> bool {
        ErrorKind::of(e).is_some_and(|k| self.0.contains(&k))
    }

    fn add(&mut self, kind: ErrorKind) {
        self.0.insert(kind);
    }

    fn into_result(self) -> Result<(), Expected> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self)
        }
    }
}

/// What the model predicts for one operation.
pub type ModelResult<T> = Result<T, Expected>;

fn fail<T>(kind: ErrorKind) -> ModelResult<T> {
    Err(Expected::one(kind))
}

/// One live message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelMessage {
    /// Global send index (stands in for the backend's random id).
    pub index: usize,
    /// Send order within its current queue.
    pub sequence: u64,
    /// Body.
    pub body: Bytes,
    /// Attributes.
    pub attributes: BTreeMap<String, String>,
    /// FIFO group.
    pub group_id: Option<String>,
    /// Effective dedup id.
    pub dedup_id: Option<String>,
    /// Send time.
    pub sent_at: Timestamp,
    /// When it is (or became) visible.
    pub visible_at: Timestamp,
    /// Deliveries so far (from this queue's point of view).
    pub receive_count: u32,
    /// First delivery, if any.
    pub first_received_at: Option<Timestamp>,
}

/// A remembered FIFO dedup id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelDedup {
    /// Index of the message a duplicate send returns.
    pub index: usize,
    /// When the id may be used again.
    pub expires_at: Timestamp,
}

/// One queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelQueue {
    /// Configuration.
    pub config: QueueConfig,
    /// Live messages in send order.
    pub messages: Vec<ModelMessage>,
    /// Live dedup ids.
    pub dedup: BTreeMap<String, ModelDedup>,
    next_sequence: u64,
}

impl ModelQueue {
    fn new(config: QueueConfig) -> Self {
        ModelQueue {
            config,
            messages: Vec::new(),
            dedup: BTreeMap::new(),
            next_sequence: 0,
        }
    }

    fn push(&mut self, mut m: ModelMessage) {
        m.sequence = self.next_sequence;
        self.next_sequence += 1;
        self.messages.push(m);
    }
}

/// What one message of a send turned into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendOutcome {
    /// Enqueued as a new message with this index.
    New(usize),
    /// A FIFO duplicate of the message with this index; nothing enqueued.
    Duplicate(usize),
}

/// The whole store as the contract describes it.
#[derive(Debug, Clone)]
pub struct QueueModel {
    now: Timestamp,
    caps: Capabilities,
    queues: BTreeMap<String, ModelQueue>,
    next_index: usize,
}

fn name_ok(caps: &Capabilities, name: &str) -> bool {
    !name.is_empty()
        && name.len() <= caps.max_namespace_size
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':' | '/'))
}

fn id_field_ok(v: &str) -> bool {
    !v.is_empty() && v.len() <= MAX_MESSAGE_ID_FIELD && !v.chars().any(char::is_control)
}

fn size_of(m: &SendMessage) -> usize {
    m.body.len()
        + m.attributes
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>()
}

impl QueueModel {
    /// An empty store at `now` with the backend's capabilities.
    pub fn new(now: Timestamp, caps: Capabilities) -> Self {
        QueueModel {
            now,
            caps,
            queues: BTreeMap::new(),
            next_index: 0,
        }
    }

    /// The model's clock.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// A queue's state, if it exists.
    pub fn queue(&self, name: &str) -> Option<&ModelQueue> {
        self.queues.get(name)
    }

    /// Names of every queue, sorted.
    pub fn queue_names(&self) -> Vec<String> {
        self.queues.keys().cloned().collect()
    }

    /// Whether message `index` is still in some queue.
    pub fn is_live(&self, index: usize) -> bool {
        self.queues
            .values()
            .any(|q| q.messages.iter().any(|m| m.index == index))
    }

    /// Moves the clock forward and drops what expired.
    pub fn advance(&mut self, d: Duration) {
        self.now = self.now.saturating_add(d);
        self.sweep();
    }

    /// Drops messages past retention and dedup ids past their window.
    fn sweep(&mut self) {
        let now = self.now;
        for q in self.queues.values_mut() {
            let retention = q.config.retention;
            q.messages
                .retain(|m| m.sent_at.saturating_add(retention) > now);
            q.dedup.retain(|_, d| d.expires_at > now);
        }
    }

    /// Every future instant at which something changes: a message becomes
    /// visible, a message expires, a dedup id frees up. Sorted, distinct.
    pub fn boundaries(&self) -> Vec<Timestamp> {
        let mut out = BTreeSet::new();
        for q in self.queues.values() {
            for m in &q.messages {
                out.insert(m.visible_at);
                out.insert(m.sent_at.saturating_add(q.config.retention));
            }
            for d in q.dedup.values() {
                out.insert(d.expires_at);
            }
        }
        out.into_iter().filter(|t| *t > self.now).collect()
    }

    /// Validates a config the way `QueueConfig::validate` is documented.
    fn check_config(&self, name: &str, config: &QueueConfig) -> Expected {
        let mut e = Expected::default();
        if !name_ok(&self.caps, name) {
            e.add(ErrorKind::InvalidInput);
        }
        if config.visibility_timeout > MAX_VISIBILITY_TIMEOUT
            || config.delay > MAX_DELAY
            || config.retention < Duration::from_secs(1)
            || config.max_message_size == 0
            || (config.content_based_dedup && !config.fifo)
        {
            e.add(ErrorKind::InvalidInput);
        }
        if config.fifo && !self.caps.queue_fifo {
            e.add(ErrorKind::Unsupported);
        }
        if let Some(r) = &config.redrive {
            if !self.caps.queue_dead_letter {
                e.add(ErrorKind::Unsupported);
            }
            if r.max_receives == 0 || !name_ok(&self.caps, &r.dead_letter_queue) {
                e.add(ErrorKind::InvalidInput);
            }
        }
        e
    }

    /// `create_queue`.
    pub fn create_queue(&mut self, name: &str, config: QueueConfig) -> ModelResult<()> {
        self.sweep();
        self.check_config(name, &config).into_result()?;
        match self.queues.get(name) {
            Some(q) if q.config == config => Ok(()),
            Some(_) => fail(ErrorKind::AlreadyExists),
            None => {
                self.queues.insert(name.to_owned(), ModelQueue::new(config));
                Ok(())
            }
        }
    }

    /// `delete_queue`.
    pub fn delete_queue(&mut self, name: &str) -> ModelResult<bool> {
        self.sweep();
        if !name_ok(&self.caps, name) {
            return fail(ErrorKind::InvalidInput);
        }
        Ok(self.queues.remove(name).is_some())
    }

    /// The effective dedup id of a valid message, or why it is invalid.
    fn check_message(config: &QueueConfig, m: &SendMessage) -> Result<Option<String>, ()> {
        if size_of(m) > config.max_message_size {
            return Err(());
        }
        if let Some(d) = m.delay {
            if config.fifo || d > MAX_DELAY {
                return Err(());
            }
        }
        if !config.fifo {
            if m.group_id.is_some() || m.dedup_id.is_some() {
                return Err(());
            }
            return Ok(None);
        }
        match &m.group_id {
            Some(g) if id_field_ok(g) => {}
            _ => return Err(()),
        }
        match &m.dedup_id {
            Some(d) if id_field_ok(d) => Ok(Some(d.clone())),
            Some(_) => Err(()),
            None if config.content_based_dedup => Ok(Some(content_dedup_id(&m.body))),
            None => Err(()),
        }
    }

    /// `send_batch` (and `send`, a batch of one).
    pub fn send_batch(
        &mut self,
        name: &str,
        messages: &[SendMessage],
    ) -> ModelResult<Vec<SendOutcome>> {
        self.sweep();
        let mut e = Expected::default();
        if messages.is_empty() || messages.len() > MAX_BATCH {
            e.add(ErrorKind::InvalidInput);
        }
        if !name_ok(&self.caps, name) {
            e.add(ErrorKind::InvalidInput);
        }
        let now = self.now;
        let Some(q) = self.queues.get_mut(name) else {
            e.add(ErrorKind::NotFound);
            return Err(e);
        };
        let mut dedup_ids = Vec::with_capacity(messages.len());
        for m in messages {
            match Self::check_message(&q.config, m) {
                Ok(d) => dedup_ids.push(d),
                Err(()) => e.add(ErrorKind::InvalidInput),
            }
        }
        e.into_result()?;
        let mut out = Vec::with_capacity(messages.len());
        for (m, dedup_id) in messages.iter().zip(dedup_ids) {
            if let Some(d) = &dedup_id {
                if let Some(entry) = q.dedup.get(d) {
                    out.push(SendOutcome::Duplicate(entry.index));
                    continue;
                }
            }
            let index = self.next_index;
            self.next_index += 1;
            if let Some(d) = &dedup_id {
                q.dedup.insert(
                    d.clone(),
                    ModelDedup {
                        index,
                        expires_at: now.saturating_add(DEDUP_WINDOW),
                    },
                );
            }
            let delay = m.delay.unwrap_or(q.config.delay);
            q.push(ModelMessage {
                index,
                sequence: 0,
                body: m.body.clone(),
                attributes: m.attributes.clone(),
                group_id: if q.config.fifo {
                    m.group_id.clone()
                } else {
                    None
                },
                dedup_id,
                sent_at: now,
                visible_at: now.saturating_add(delay),
                receive_count: 0,
                first_received_at: None,
            });
            out.push(SendOutcome::New(index));
        }
        Ok(out)
    }

    /// `receive` with `wait == 0` (the model has no real time).
    /// Returns the delivered messages as they are right after delivery.
    pub fn receive(
        &mut self,
        name: &str,
        max_messages: usize,
        visibility: Option<Duration>,
        wait: Duration,
    ) -> ModelResult<Vec<ModelMessage>> {
        self.sweep();
        let mut e = Expected::default();
        if max_messages == 0 || max_messages > MAX_BATCH {
            e.add(ErrorKind::InvalidInput);
        }
        if visibility.is_some_and(|v| v > MAX_VISIBILITY_TIMEOUT) || wait > MAX_WAIT {
            e.add(ErrorKind::InvalidInput);
        }
        if !name_ok(&self.caps, name) {
            e.add(ErrorKind::InvalidInput);
        }
        let Some(q) = self.queues.get(name) else {
            e.add(ErrorKind::NotFound);
            return Err(e);
        };
        e.into_result()?;
        let now = self.now;
        let fifo = q.config.fifo;
        let hide = visibility.unwrap_or(q.config.visibility_timeout);
        // Redrive only when the dead-letter queue exists (and is not this
        // queue itself, which would make the move a no-op).
        let redrive = q.config.redrive.clone().filter(|r| {
            r.dead_letter_queue != name && self.queues.contains_key(&r.dead_letter_queue)
        });

        // Candidate positions (into q.messages), in pick order.
        let order: Vec<usize> = if fifo {
            // A group with any message in flight is skipped entirely (even
            // when an earlier message of it is visible again); so is one
            // whose head is not visible yet, and a group stops at its
            // first not-yet-visible message.
            let mut blocked: BTreeSet<String> = q
                .messages
                .iter()
                .filter(|m| m.receive_count > 0 && m.visible_at > now)
                .map(|m| m.group_id.clone().unwrap_or_default())
                .collect();
            let mut picks = Vec::new();
            for (i, m) in q.messages.iter().enumerate() {
                let group = m.group_id.clone().unwrap_or_default();
                if blocked.contains(&group) {
                    continue;
                }
                if m.visible_at > now {
                    blocked.insert(group);
                    continue;
                }
                picks.push(i);
            }
            picks
        } else {
            let mut picks: Vec<usize> = (0..q.messages.len())
                .filter(|&i| q.messages[i].visible_at <= now)
                .collect();
            picks.sort_by_key(|&i| (q.messages[i].visible_at, q.messages[i].sequence));
            picks
        };

        let mut delivered_pos = Vec::new();
        let mut moved_pos = Vec::new();
        for i in order {
            if delivered_pos.len() == max_messages {
                break;
            }
            let rc = q.messages[i].receive_count;
            match &redrive {
                Some(r) if rc >= r.max_receives => moved_pos.push(i),
                _ => delivered_pos.push(i),
            }
        }

        let Some(q) = self.queues.get_mut(name) else {
            return fail(ErrorKind::NotFound);
        };
        let mut out = Vec::with_capacity(delivered_pos.len());
        for &i in &delivered_pos {
            let m = &mut q.messages[i];
            m.receive_count += 1;
            m.visible_at = now.saturating_add(hide);
            m.first_received_at.get_or_insert(now);
            out.push(m.clone());
        }
        // Moves happen in pick order.
        let mut moved = Vec::with_capacity(moved_pos.len());
        for &i in &moved_pos {
            moved.push(q.messages[i].clone());
        }
        let moved_set: BTreeSet<usize> = moved_pos.iter().copied().collect();
        let mut pos = 0;
        q.messages.retain(|_| {
            let keep = !moved_set.contains(&pos);
            pos += 1;
            keep
        });
        if let Some(r) = redrive {
            if let Some(dlq) = self.queues.get_mut(&r.dead_letter_queue) {
                for mut m in moved {
                    m.receive_count = 0;
                    m.first_received_at = None;
                    m.visible_at = now;
                    dlq.push(m);
                }
            }
        }
        Ok(out)
    }

    /// Finds the message a receipt names, if the receipt is the latest.
    fn latest(
        &mut self,
        name: &str,
        index: Option<usize>,
        receive_count: u32,
    ) -> ModelResult<Option<usize>> {
        let Some(q) = self.queues.get(name) else {
            return fail(ErrorKind::NotFound);
        };
        Ok(index.and_then(|idx| {
            q.messages
                .iter()
                .position(|m| m.index == idx && m.receive_count == receive_count)
        }))
    }

    /// `ack` with a receipt naming message `index` (`None`: an id the model
    /// never handed out) at delivery `receive_count`.
    pub fn ack(&mut self, name: &str, index: Option<usize>, receive_count: u32) -> ModelResult<()> {
        self.sweep();
        if !name_ok(&self.caps, name) {
            return fail(ErrorKind::InvalidInput);
        }
        match self.latest(name, index, receive_count)? {
            Some(pos) => {
                if let Some(q) = self.queues.get_mut(name) {
                    q.messages.remove(pos);
                }
                Ok(())
            }
            None => fail(ErrorKind::StaleReceipt),
        }
    }

    /// `change_visibility`.
    pub fn change_visibility(
        &mut self,
        name: &str,
        index: Option<usize>,
        receive_count: u32,
        timeout: Duration,
    ) -> ModelResult<()> {
        self.sweep();
        let mut e = Expected::default();
        if timeout > MAX_VISIBILITY_TIMEOUT || !name_ok(&self.caps, name) {
            e.add(ErrorKind::InvalidInput);
        }
        let found = match self.latest(name, index, receive_count) {
            Ok(found) => found,
            Err(missing) => {
                e.0.extend(missing.0);
                return Err(e);
            }
        };
        let Some(pos) = found else {
            e.add(ErrorKind::StaleReceipt);
            return Err(e);
        };
        e.into_result()?;
        let now = self.now;
        if let Some(q) = self.queues.get_mut(name) {
            q.messages[pos].visible_at = now.saturating_add(timeout);
        }
        Ok(())
    }

    /// `purge`: drops every message, keeps dedup memory.
    pub fn purge(&mut self, name: &str) -> ModelResult<()> {
        self.sweep();
        match self.queues.get_mut(name) {
            Some(q) => {
                q.messages.clear();
                Ok(())
            }
            None => Err(self.missing(name)),
        }
    }

    /// The errors for a queue that does not exist: `NotFound`, or
    /// `InvalidInput` too when the name is not a valid queue name.
    fn missing(&self, name: &str) -> Expected {
        let mut e = Expected::one(ErrorKind::NotFound);
        if !name_ok(&self.caps, name) {
            e.add(ErrorKind::InvalidInput);
        }
        e
    }

    /// `counts`.
    pub fn counts(&mut self, name: &str) -> ModelResult<QueueCounts> {
        self.sweep();
        let now = self.now;
        let Some(q) = self.queues.get(name) else {
            return Err(self.missing(name));
        };
        let mut c = QueueCounts::default();
        for m in &q.messages {
            if m.visible_at <= now {
                c.visible += 1;
            } else if m.receive_count > 0 {
                c.in_flight += 1;
            } else {
                c.delayed += 1;
            }
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> QueueModel {
        let caps = Capabilities {
            queue: true,
            queue_fifo: true,
            queue_dead_letter: true,
            ..Capabilities::DEFAULT_LIMITS
        };
        QueueModel::new(Timestamp::from_millis(1_000_000), caps)
    }

    #[test]
    fn fifo_skips_blocked_groups_and_takes_consecutive_messages() -> Result<(), Expected> {
        let mut m = model();
        m.create_queue("f", QueueConfig::fifo())?;
        let msgs: Vec<SendMessage> = [("a", "1"), ("a", "2"), ("b", "3"), ("a", "4")]
            .iter()
            .map(|(g, d)| SendMessage::new(*d).group(*g).dedup(*d))
            .collect();
        m.send_batch("f", &msgs)?;
        let got = m.receive("f", 1, None, Duration::ZERO)?;
        assert_eq!(got.iter().map(|x| x.index).collect::<Vec<_>>(), vec![0]);
        // Group a is blocked by message 0; b flows.
        let got = m.receive("f", 10, None, Duration::ZERO)?;
        assert_eq!(got.iter().map(|x| x.index).collect::<Vec<_>>(), vec![2]);
        m.advance(Duration::from_secs(30));
        let got = m.receive("f", 10, None, Duration::ZERO)?;
        assert_eq!(
            got.iter().map(|x| x.index).collect::<Vec<_>>(),
            vec![0, 1, 2, 3]
        );
        Ok(())
    }

    #[test]
    fn redrive_moves_without_counting_against_max() -> Result<(), Expected> {
        let mut m = model();
        m.create_queue("dlq", QueueConfig::default())?;
        let cfg = QueueConfig {
            redrive: Some(storage_core::RedrivePolicy {
                max_receives: 1,
                dead_letter_queue: "dlq".into(),
            }),
            ..QueueConfig::default()
        };
        m.create_queue("src", cfg)?;
        m.send_batch("src", &[SendMessage::new("x")])?;
        m.receive("src", 1, Some(Duration::ZERO), Duration::ZERO)?;
        m.send_batch("src", &[SendMessage::new("y")])?;
        let got = m.receive("src", 1, None, Duration::ZERO)?;
        assert_eq!(got.iter().map(|x| x.index).collect::<Vec<_>>(), vec![1]);
        let c = m.counts("dlq")?;
        assert_eq!(c.visible, 1);
        let got = m.receive("dlq", 1, None, Duration::ZERO)?;
        assert_eq!(got[0].index, 0);
        assert_eq!(got[0].receive_count, 1);
        Ok(())
    }
}
