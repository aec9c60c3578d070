//! The SQS-style queue tier.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clock::Timestamp;
use crate::error::{Context, Error, Result};
use crate::validate;

/// Dead-letter redrive of a queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedrivePolicy {
    /// A message already received this many times is moved to the
    /// dead-letter queue instead of being delivered again (>= 1).
    pub max_receives: u32,
    /// Name of the dead-letter queue (in the same store).
    pub dead_letter_queue: String,
}

/// A queue's configuration.
///
/// Durations have millisecond resolution: backends store whole
/// milliseconds (as [`Timestamp`] does), so sub-millisecond parts are not
/// kept across a store or a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueConfig {
    /// How long a received message stays hidden (<= 12 h).
    pub visibility_timeout: Duration,
    /// Delay before a sent message becomes visible (<= 15 min).
    pub delay: Duration,
    /// How long a message is kept after it was sent (>= 1 s).
    pub retention: Duration,
    /// Largest body plus attributes, in bytes.
    pub max_message_size: usize,
    /// Dead-letter redrive, if any.
    pub redrive: Option<RedrivePolicy>,
    /// FIFO queue: group ordering and deduplication.
    pub fifo: bool,
    /// FIFO only: a send without a dedup id is deduplicated by the SHA-256
    /// of its body.
    pub content_based_dedup: bool,
}

impl Default for QueueConfig {
    /// SQS defaults: 30 s visibility, no delay, 4 days retention, 256 KiB.
    fn default() -> Self {
        QueueConfig {
            visibility_timeout: Duration::from_secs(30),
            delay: Duration::ZERO,
            retention: Duration::from_secs(4 * 24 * 60 * 60),
            max_message_size: 256 * 1024,
            redrive: None,
            fifo: false,
            content_based_dedup: false,
        }
    }
}

impl QueueConfig {
    /// A FIFO queue with defaults otherwise.
    pub fn fifo() -> Self {
        QueueConfig {
            fifo: true,
            ..QueueConfig::default()
        }
    }

    /// Checks the documented bounds and that `caps` supports the features
    /// asked for.
    pub fn validate(&self, ctx: &Context, caps: &crate::Capabilities) -> Result<()> {
        validate::visibility_timeout(ctx, self.visibility_timeout)?;
        validate::delay(ctx, self.delay)?;
        if self.retention < Duration::from_secs(1) {
            return Err(Error::invalid(
                ctx.clone(),
                "retention must be at least 1 s",
            ));
        }
        if self.max_message_size == 0 {
            return Err(Error::invalid(
                ctx.clone(),
                "max message size must be positive",
            ));
        }
        if self.content_based_dedup && !self.fifo {
            return Err(Error::invalid(
                ctx.clone(),
                "content-based dedup needs a FIFO queue",
            ));
        }
        if self.fifo && !caps.queue_fifo {
            return Err(Error::unsupported("create_queue(fifo)", ctx.backend));
        }
        if let Some(r) = &self.redrive {
            if !caps.queue_dead_letter {
                return Err(Error::unsupported("create_queue(redrive)", ctx.backend));
            }
            if r.max_receives == 0 {
                return Err(Error::invalid(
                    ctx.clone(),
                    "redrive max_receives must be >= 1",
                ));
            }
            validate::namespace(ctx, caps, &r.dead_letter_queue)?;
        }
        Ok(())
    }
}

/// A message to send.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SendMessage {
    /// The body.
    pub body: Bytes,
    /// String attributes.
    pub attributes: BTreeMap<String, String>,
    /// Per-message delay, overriding the queue's (standard queues only).
    pub delay: Option<Duration>,
    /// FIFO group; required on FIFO queues, refused on standard ones.
    pub group_id: Option<String>,
    /// FIFO deduplication id; required on FIFO queues unless they use
    /// content-based dedup.
    pub dedup_id: Option<String>,
}

impl SendMessage {
    /// A message with this body and nothing else.
    pub fn new(body: impl Into<Bytes>) -> Self {
        SendMessage {
            body: body.into(),
            ..SendMessage::default()
        }
    }

    /// Sets the FIFO group.
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group_id = Some(group.into());
        self
    }

    /// Sets the FIFO dedup id.
    pub fn dedup(mut self, id: impl Into<String>) -> Self {
        self.dedup_id = Some(id.into());
        self
    }

    /// Sets a per-message delay.
    pub fn delayed(mut self, d: Duration) -> Self {
        self.delay = Some(d);
        self
    }

    /// Adds an attribute.
    pub fn attribute(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.attributes.insert(k.into(), v.into());
        self
    }

    /// Size counted against `max_message_size`: body plus attribute names
    /// and values.
    pub fn size(&self) -> usize {
        self.body.len()
            + self
                .attributes
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>()
    }

    /// Validates this message for `config` and returns the effective
    /// dedup id (explicit, or the body's SHA-256 under content-based
    /// dedup; `None` on standard queues).
    pub fn validate(
        &self,
        ctx: impl Into<Context> + Copy,
        config: &QueueConfig,
    ) -> Result<Option<String>> {
        if self.size() > config.max_message_size {
            return Err(Error::invalid(
                ctx,
                format!(
                    "message is {} bytes, the queue's limit is {}",
                    self.size(),
                    config.max_message_size
                ),
            ));
        }
        if let Some(d) = self.delay {
            if config.fifo {
                return Err(Error::invalid(ctx, "FIFO queues take no per-message delay"));
            }
            validate::delay(ctx, d)?;
        }
        if !config.fifo {
            if self.group_id.is_some() || self.dedup_id.is_some() {
                return Err(Error::invalid(
                    ctx,
                    "group and dedup ids are for FIFO queues",
                ));
            }
            return Ok(None);
        }
        let group = self
            .group_id
            .as_deref()
            .ok_or_else(|| Error::invalid(ctx, "FIFO messages need a group id"))?;
        check_id_field(ctx, "group id", group)?;
        match &self.dedup_id {
            Some(d) => {
                check_id_field(ctx, "dedup id", d)?;
                Ok(Some(d.clone()))
            }
            None if config.content_based_dedup => Ok(Some(content_dedup_id(&self.body))),
            None => Err(Error::invalid(
                ctx,
                "FIFO messages need a dedup id unless the queue uses content-based dedup",
            )),
        }
    }
}

fn check_id_field(ctx: impl Into<Context> + Copy, what: &str, v: &str) -> Result<()> {
    if v.is_empty() || v.len() > validate::MAX_MESSAGE_ID_FIELD || v.chars().any(char::is_control) {
        return Err(Error::invalid(
            ctx,
            format!(
                "{what} must be 1..={} printable characters",
                validate::MAX_MESSAGE_ID_FIELD
            ),
        ));
    }
    Ok(())
}

/// The dedup id content-based deduplication uses: hex SHA-256 of the body.
pub fn content_dedup_id(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// A message id, unique within a store.
///
/// A shared string: a message's id travels in every delivery and its
/// receipt, so cloning one is a reference count, not a copy.
///
/// ```
/// use storage_core::MessageId;
/// let id = MessageId::new("m-1");
/// assert_eq!(id.as_str(), "m-1");
/// assert_eq!(id.clone(), id);
/// assert_eq!(MessageId::random().as_str().len(), 36);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageId(Arc<str>);

impl MessageId {
    /// The id `id` (a backend's stored form).
    pub fn new(id: impl AsRef<str>) -> Self {
        MessageId(id.as_ref().into())
    }

    /// A fresh random id (UUID v4, hyphenated lower case).
    pub fn random() -> Self {
        MessageId::from_uuid_bits(uuid::Uuid::new_v4().as_u128())
    }

    /// The id whose text is the hyphenated lower-case UUID form of `bits`
    /// (for backends that derive ids, e.g. from a sequence number).
    ///
    /// ```
    /// use storage_core::MessageId;
    /// let id = MessageId::from_uuid_bits(0x0123_4567_89ab_4def_8123_4567_89ab_cdef);
    /// assert_eq!(id.as_str(), "01234567-89ab-4def-8123-456789abcdef");
    /// ```
    pub fn from_uuid_bits(bits: u128) -> Self {
        let (high, low) = (hex16((bits >> 64) as u64), hex16(bits as u64));
        let mut text = [b'-'; 36];
        text[..8].copy_from_slice(&high[..8]);
        text[9..13].copy_from_slice(&high[8..12]);
        text[14..18].copy_from_slice(&high[12..]);
        text[19..23].copy_from_slice(&low[..4]);
        text[24..].copy_from_slice(&low[4..]);
        match std::str::from_utf8(&text) {
            Ok(text) => MessageId(text.into()),
            // Never: the text is ASCII.
            Err(_) => MessageId(String::from_utf8_lossy(&text).into()),
        }
    }

    /// The id's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The 16 lower-case hex digits of `x`, most significant first, eight
/// at a time (ids are formatted on every send).
fn hex16(x: u64) -> [u8; 16] {
    // Nibble i of `x` into byte i.
    fn spread(x: u32) -> u64 {
        let v = u64::from(x);
        let v = (v | v << 16) & 0x0000_FFFF_0000_FFFF;
        let v = (v | v << 8) & 0x00FF_00FF_00FF_00FF;
        (v | v << 4) & 0x0F0F_0F0F_0F0F_0F0F
    }
    // Each byte 0..=15 to '0'..='9' / 'a'..='f' (bytes of 10 and more
    // carry into bit 4 when 6 is added).
    fn ascii(v: u64) -> [u8; 8] {
        let letters = ((v + 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101;
        (v + 0x3030_3030_3030_3030 + letters * u64::from(b'a' - b'0' - 10)).to_be_bytes()
    }
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&ascii(spread((x >> 32) as u32)));
    out[8..].copy_from_slice(&ascii(spread(x as u32)));
    out
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// As its text, the form snapshots have always stored.
impl Serialize for MessageId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for MessageId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(MessageId::new)
    }
}

/// Proof of one delivery of one message, needed to ack it or change its
/// visibility.
///
/// A receipt names the message and the delivery (its receive count at that
/// delivery), so it goes stale as soon as the message is delivered again.
/// Every backend uses this one format, so receipts survive a snapshot move.
/// String form: `<receive_count>.<message_id>`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Receipt {
    /// The delivered message.
    pub message_id: MessageId,
    /// The message's receive count at this delivery (1 for the first).
    pub receive_count: u32,
}

impl fmt::Display for Receipt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.receive_count, self.message_id)
    }
}

impl fmt::Debug for Receipt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Receipt({self})")
    }
}

/// Error parsing a [`Receipt`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed receipt {0:?}")]
pub struct ParseReceiptError(pub String);

impl FromStr for Receipt {
    type Err = ParseReceiptError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ParseReceiptError(s.to_owned());
        let (count, id) = s.split_once('.').ok_or_else(bad)?;
        let receive_count: u32 = count.parse().map_err(|_| bad())?;
        if receive_count == 0 || id.is_empty() {
            return Err(bad());
        }
        Ok(Receipt {
            message_id: MessageId::new(id),
            receive_count,
        })
    }
}

/// Options of a receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiveOptions {
    /// Most messages to return (1..=10).
    pub max_messages: usize,
    /// Overrides the queue's visibility timeout for these deliveries.
    pub visibility_timeout: Option<Duration>,
    /// Long-poll: wait up to this long (real time) for a message when none
    /// is visible. Zero returns at once.
    pub wait: Duration,
}

impl Default for ReceiveOptions {
    fn default() -> Self {
        ReceiveOptions {
            max_messages: 1,
            visibility_timeout: None,
            wait: Duration::ZERO,
        }
    }
}

impl ReceiveOptions {
    /// Up to `n` messages, no wait.
    pub fn batch(n: usize) -> Self {
        ReceiveOptions {
            max_messages: n,
            ..ReceiveOptions::default()
        }
    }
}

/// One delivered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// Id returned by send.
    pub id: MessageId,
    /// Body.
    pub body: Bytes,
    /// Attributes.
    pub attributes: BTreeMap<String, String>,
    /// Receipt of this delivery.
    pub receipt: Receipt,
    /// Deliveries so far, this one included.
    pub receive_count: u32,
    /// When it was sent.
    pub sent_at: Timestamp,
    /// When it was first delivered.
    pub first_received_at: Timestamp,
    /// FIFO group.
    pub group_id: Option<String>,
    /// FIFO dedup id (explicit or content-based).
    pub dedup_id: Option<String>,
}

/// Approximate message counts of a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct QueueCounts {
    /// Visible now (including FIFO messages waiting behind their group).
    pub visible: u64,
    /// Received and still hidden.
    pub in_flight: u64,
    /// Sent, never received, and not yet visible.
    pub delayed: u64,
}

/// The full state of one message, for snapshots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageState {
    /// Id.
    pub id: MessageId,
    /// Send order within the queue (strictly increasing).
    pub sequence: u64,
    /// Body.
    pub body: Bytes,
    /// Attributes.
    pub attributes: BTreeMap<String, String>,
    /// FIFO group.
    pub group_id: Option<String>,
    /// Effective dedup id.
    pub dedup_id: Option<String>,
    /// When it was sent.
    pub sent_at: Timestamp,
    /// When it becomes (or became) visible.
    pub visible_at: Timestamp,
    /// Deliveries so far.
    pub receive_count: u32,
    /// First delivery, if any.
    pub first_received_at: Option<Timestamp>,
}

/// A remembered FIFO dedup id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DedupEntry {
    /// The dedup id.
    pub dedup_id: String,
    /// The message id a duplicate send returns.
    pub message_id: MessageId,
    /// When the id may be used again.
    pub expires_at: Timestamp,
}

/// The full state of one queue, for snapshots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueState {
    /// Configuration.
    pub config: QueueConfig,
    /// Live messages (not acked, not past retention), in send order.
    pub messages: Vec<MessageState>,
    /// Live dedup entries.
    pub dedup: Vec<DedupEntry>,
    /// Next sequence number to assign.
    pub next_sequence: u64,
}

impl QueueState {
    /// The consistency every imported state must have, whatever the
    /// backend: each message's sequence below `next_sequence` and unique,
    /// message ids unique, dedup ids unique. Returns what is wrong.
    pub fn check_consistency(&self) -> std::result::Result<(), String> {
        let mut seqs = std::collections::HashSet::with_capacity(self.messages.len());
        let mut ids = std::collections::HashSet::with_capacity(self.messages.len());
        for m in &self.messages {
            if m.sequence >= self.next_sequence {
                return Err(format!(
                    "message {} has sequence {} but next_sequence is {}",
                    m.id, m.sequence, self.next_sequence
                ));
            }
            if !seqs.insert(m.sequence) {
                return Err(format!("sequence {} appears twice", m.sequence));
            }
            if !ids.insert(&m.id) {
                return Err(format!("message id {} appears twice", m.id));
            }
        }
        let mut dedup_ids = std::collections::HashSet::with_capacity(self.dedup.len());
        for d in &self.dedup {
            if !dedup_ids.insert(&d.dedup_id) {
                return Err(format!("dedup id {:?} appears twice", d.dedup_id));
            }
        }
        Ok(())
    }
}

/// SQS-style queues.
///
/// Needs [`Capabilities::queue`](crate::Capabilities::queue); FIFO needs
/// `queue_fifo`, redrive needs `queue_dead_letter`.
///
/// # Contract
///
/// - **Create** with the same config is a no-op; with a different config
///   it is `AlreadyExists`. Queue names follow the namespace rules.
/// - **Send** returns one id per message. A message is visible after the
///   message's delay, else the queue's. On FIFO queues, a dedup id seen
///   within the last 5 minutes (store clock) returns the original id and
///   enqueues nothing.
/// - **Receive** atomically picks up to `max_messages` visible messages:
///   standard queues in order of (visible-at, send order), FIFO queues in
///   send order, skipping every group that has any message in flight (even
///   if an earlier one of the group is visible again) or a not-yet-visible
///   head; one call may deliver several consecutive messages of one group,
///   in order. Each pick hides the message for the visibility
///   timeout, increments its receive count, records the first receive and
///   issues a fresh [`Receipt`]. A picked message already received
///   `max_receives` times moves to the dead-letter queue instead (keeping
///   its id, body, attributes and send time, receive count reset to 0,
///   visible at once; a missing DLQ means it is delivered normally); moved
///   messages do not count against `max_messages`. With `wait > 0` and
///   nothing to return, the call waits up to `wait` and returns as soon as
///   a message becomes available.
/// - **Ack** and **change_visibility** take the receipt of the message's
///   latest delivery; any other receipt (earlier delivery, message gone) is
///   `StaleReceipt` and changes nothing. Visibility 0 makes the message
///   visible at once (a nack). A malformed receipt string is `InvalidInput`.
/// - **Instants** are judged like KV expiry: a message is visible once
///   `visible_at <= now`, gone once `sent_at + retention <= now`, and a
///   dedup id is free again once `first send + 5 min <= now` (duplicates do
///   not restart the window).
/// - Messages older than the retention period disappear. Messages leave a
///   queue only by ack, retention, purge, DLQ move or queue deletion: none
///   is lost under concurrent consumers, and one is delivered again only
///   after its visibility expired or it was nacked.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), storage_core::Error> {
/// use storage_core::{QueueConfig, QueueStore, QueueStoreExt, ReceiveOptions, SendMessage};
/// let store = storage_memory::MemoryStore::new();
/// store.create_queue("jobs", QueueConfig::default()).await?;
/// store.send("jobs", SendMessage::new("hello")).await?;
/// let got = store.receive("jobs", ReceiveOptions::default()).await?;
/// assert_eq!(&got[0].body[..], b"hello");
/// store.ack("jobs", &got[0].receipt).await?;
/// assert_eq!(store.counts("jobs").await?.visible, 0);
/// # Ok(())
/// # }
/// ```
#[async_trait]
pub trait QueueStore: Send + Sync + 'static {
    /// The backend's name, as it appears in errors.
    fn backend_name(&self) -> &'static str;

    /// What this store supports.
    fn capabilities(&self) -> crate::Capabilities;

    /// Creates a queue (idempotent for an identical config).
    async fn create_queue(&self, queue: &str, config: QueueConfig) -> Result<()>;

    /// The queue's configuration; `NotFound` if it does not exist.
    async fn queue_config(&self, queue: &str) -> Result<QueueConfig>;

    /// Deletes a queue and its messages; `true` if it existed.
    async fn delete_queue(&self, queue: &str) -> Result<bool>;

    /// Names of queues starting with `prefix`, sorted.
    async fn list_queues(&self, prefix: &str) -> Result<Vec<String>>;

    /// Sends 1..=10 messages, validated as a whole first; returns their ids
    /// in order.
    async fn send_batch(&self, queue: &str, messages: Vec<SendMessage>) -> Result<Vec<MessageId>>;

    /// Receives up to `options.max_messages` messages.
    async fn receive(&self, queue: &str, options: ReceiveOptions) -> Result<Vec<ReceivedMessage>>;

    /// Deletes the message of this delivery.
    async fn ack(&self, queue: &str, receipt: &Receipt) -> Result<()>;

    /// Hides the message of this delivery for `timeout` from now (0 = nack).
    async fn change_visibility(
        &self,
        queue: &str,
        receipt: &Receipt,
        timeout: Duration,
    ) -> Result<()>;

    /// Removes every message (dedup memory is kept).
    async fn purge(&self, queue: &str) -> Result<()>;

    /// Approximate counts.
    async fn counts(&self, queue: &str) -> Result<QueueCounts>;

    /// The queue's full state, for snapshots.
    async fn export_queue(&self, queue: &str) -> Result<QueueState>;

    /// Installs `state` as the queue's full state, creating the queue or
    /// replacing its config, messages and dedup memory.
    async fn import_queue(&self, queue: &str, state: QueueState) -> Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The id text is exactly the uuid crate's hyphenated lower-case form,
    /// over edge values and a spread of random ones.
    #[test]
    fn uuid_text_matches_the_uuid_crate() {
        let edges = [0, u128::MAX, 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210];
        let random = (0..2000).map(|_| uuid::Uuid::new_v4().as_u128());
        let nibbles = (0..32).flat_map(|i| (0..16u128).map(move |d| d << (4 * i)));
        for bits in edges.into_iter().chain(random).chain(nibbles) {
            let mut buf = uuid::Uuid::encode_buffer();
            let want = uuid::Uuid::from_u128(bits)
                .hyphenated()
                .encode_lower(&mut buf)
                .to_owned();
            assert_eq!(MessageId::from_uuid_bits(bits).as_str(), want, "{bits:x}");
        }
    }
}
