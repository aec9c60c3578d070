//! The least any `QueueStore` can do on the bench's queue cycle: the raw
//! `Mutex<{VecDeque, HashMap}>` queue of `memory.rs` (an id per message,
//! a visibility deadline from the clock, a receive count, a receipt check
//! on ack) behind the trait, called exactly like the adapter
//! (`Arc<dyn QueueStore>`, the same cycle closure).
//!
//! What it pays beyond the raw queue is what the API asks of every
//! backend: one boxed future per call, a `&str` queue name to resolve,
//! a `MessageId` (shared text) per message, the `Vec` of ids a send
//! returns, a `ReceivedMessage` with its `Receipt` per delivery and the
//! `Vec` holding them. It keeps nothing else: no retention, delays,
//! redelivery after a timeout, dead-letter queues, FIFO groups or long
//! polls. The memory adapter's queue rows carry it as context (no
//! target): the adapter ÷ this is the adapter's own cost, and this ÷ the
//! raw queue is what the object-safe API costs before any SQS semantics.

use std::collections::{BTreeMap, HashMap, VecDeque};

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;
use storage_core::{
    Capabilities, Context, Error, MessageId, QueueConfig, QueueCounts, QueueState, QueueStore,
    Receipt, ReceiveOptions, ReceivedMessage, Result, SendMessage, Timestamp,
};

use super::memory::now_ms;

const BACKEND: &str = "floor";
const VISIBILITY_MS: u64 = 30_000;

struct Msg {
    id: MessageId,
    body: Bytes,
    sent_at: Timestamp,
    receive_count: u32,
    visible_at: u64,
}

#[derive(Default)]
struct Inner {
    ready: VecDeque<u64>,
    messages: HashMap<u64, Msg>,
    next: u64,
}

/// One standard queue, named at construction, behind [`QueueStore`].
pub struct FloorQueue {
    name: String,
    inner: Mutex<Inner>,
}

impl FloorQueue {
    /// The queue `name` (the only one this store has).
    pub fn new(name: &str) -> Self {
        FloorQueue {
            name: name.to_owned(),
            inner: Mutex::new(Inner::default()),
        }
    }

    fn check(&self, op: &'static str, queue: &str) -> Result<()> {
        if queue == self.name {
            Ok(())
        } else {
            Err(Error::not_found(Context::new(op, BACKEND), queue))
        }
    }
}

#[async_trait]
impl QueueStore for FloorQueue {
    fn backend_name(&self) -> &'static str {
        BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }

    async fn create_queue(&self, queue: &str, _config: QueueConfig) -> Result<()> {
        self.check("create_queue", queue)
    }

    async fn queue_config(&self, _queue: &str) -> Result<QueueConfig> {
        Err(Error::unsupported("queue_config", BACKEND))
    }

    async fn delete_queue(&self, _queue: &str) -> Result<bool> {
        Err(Error::unsupported("delete_queue", BACKEND))
    }

    async fn list_queues(&self, _prefix: &str) -> Result<Vec<String>> {
        Ok(vec![self.name.clone()])
    }

    async fn send_batch(&self, queue: &str, messages: Vec<SendMessage>) -> Result<Vec<MessageId>> {
        self.check("send_batch", queue)?;
        let now = now_ms();
        let mut ids = Vec::with_capacity(messages.len());
        let mut g = self.inner.lock();
        for m in messages {
            let seq = g.next;
            g.next += 1;
            let id = MessageId::new(seq.to_string());
            ids.push(id.clone());
            g.messages.insert(
                seq,
                Msg {
                    id,
                    body: m.body,
                    sent_at: Timestamp::from_millis(now),
                    receive_count: 0,
                    visible_at: now,
                },
            );
            g.ready.push_back(seq);
        }
        Ok(ids)
    }

    async fn receive(&self, queue: &str, options: ReceiveOptions) -> Result<Vec<ReceivedMessage>> {
        self.check("receive", queue)?;
        let mut g = self.inner.lock();
        // Read under the lock: every queued message was stamped earlier.
        let now = now_ms();
        let mut out = Vec::with_capacity(options.max_messages);
        while out.len() < options.max_messages {
            let Some(seq) = g.ready.pop_front() else {
                break;
            };
            if let Some(m) = g.messages.get_mut(&seq).filter(|m| m.visible_at <= now) {
                m.receive_count += 1;
                m.visible_at = now + VISIBILITY_MS;
                out.push(ReceivedMessage {
                    id: m.id.clone(),
                    body: m.body.clone(),
                    attributes: BTreeMap::new(),
                    receipt: Receipt {
                        message_id: m.id.clone(),
                        receive_count: m.receive_count,
                    },
                    receive_count: m.receive_count,
                    sent_at: m.sent_at,
                    first_received_at: Timestamp::from_millis(now),
                    group_id: None,
                    dedup_id: None,
                });
            }
        }
        Ok(out)
    }

    async fn ack(&self, queue: &str, receipt: &Receipt) -> Result<()> {
        self.check("ack", queue)?;
        let stale = || Error::StaleReceipt {
            ctx: Context::new("ack", BACKEND),
            receipt: receipt.to_string(),
        };
        let seq: u64 = receipt.message_id.as_str().parse().map_err(|_| stale())?;
        let mut g = self.inner.lock();
        if g.messages
            .get(&seq)
            .is_some_and(|m| m.receive_count == receipt.receive_count)
        {
            g.messages.remove(&seq);
            Ok(())
        } else {
            Err(stale())
        }
    }

    async fn change_visibility(
        &self,
        _queue: &str,
        _receipt: &Receipt,
        _timeout: std::time::Duration,
    ) -> Result<()> {
        Err(Error::unsupported("change_visibility", BACKEND))
    }

    async fn purge(&self, _queue: &str) -> Result<()> {
        Err(Error::unsupported("purge", BACKEND))
    }

    async fn counts(&self, _queue: &str) -> Result<QueueCounts> {
        Err(Error::unsupported("counts", BACKEND))
    }

    async fn export_queue(&self, _queue: &str) -> Result<QueueState> {
        Err(Error::unsupported("export_queue", BACKEND))
    }

    async fn import_queue(&self, _queue: &str, _state: QueueState) -> Result<()> {
        Err(Error::unsupported("import_queue", BACKEND))
    }
}
