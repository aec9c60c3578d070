//! The SQS-style queue tier on Redis.
//!
//! Every operation is one Lua script ([`scripts`]) over the queue's keys
//! ([`keys`]: one hash tag per store, so dead-letter moves are atomic on
//! a Cluster too); "now" is the store clock's. Message payloads (body,
//! attributes, group and dedup ids) are opaque to Lua ([`codec`]).
//!
//! # Costs (n messages in the queue, b delivered or moved, G groups)
//!
//! - send: O(log n) per message (+ O(log n) group re-file on FIFO);
//! - receive: O(b log n) on standard queues (a `ZRANGEBYSCORE` over the
//!   visible-at index); on FIFO queues O(b log n) too, popping ready groups
//!   by head sequence, plus O(log G) per group that unblocked — blocked
//!   groups and hidden messages are never visited;
//! - ack / change_visibility: O(log n);
//! - retention: O(log n) per expired message, once, in whichever script
//!   runs first after it expired;
//! - counts: O(log n); export / import: O(n); purge / delete: O(1)
//!   (`UNLINK` frees memory in the background).
//!
//! # Sends and the config
//!
//! A send is validated against the queue's config on the client (sizes,
//! FIFO ids, content-based dedup hashing), so the store caches configs.
//! The script compares the cached config with the stored one and refuses
//! the batch if they differ (a queue deleted and re-created differently by
//! another instance); the client then re-validates against the fresh
//! config and retries. A send is therefore one round trip in the steady
//! state and never applies a stale validation.
//!
//! # Long polls
//!
//! See [`notify`]: a waiting receive registers locally *before* each
//! re-check and is woken by pub/sub when any store instance sends, nacks,
//! acks on a FIFO queue, dead-letters into, imports or deletes the queue;
//! a manual clock move and the next visible instant wake it too.

mod codec;
mod keys;
mod notify;
mod scripts;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use redis::{AsyncCommands, Script};
use serde::Serialize;
use storage_core::clock::duration_millis;
use storage_core::validate::{self, DEDUP_WINDOW};
use storage_core::wake::{long_poll, Attempt};
use storage_core::{
    At, Capabilities, Context, DedupEntry, Error, MessageId, QueueConfig, QueueCounts, QueueState,
    QueueStore, Receipt, ReceiveOptions, ReceivedMessage, Result, SendMessage, Timestamp,
};
use tracing::Instrument;

use crate::backend::RedisStore;
use crate::config::BACKEND;
use crate::error::map_err;
use crate::kv::{malformed, Reply};

use self::codec::{corrupt, decimal, ConfigFields, Payload};
pub(crate) use self::keys::QueueKeys;
pub(crate) use self::notify::Notifier;

/// A config as sends validate against it.
#[derive(Debug)]
struct Cached {
    config: QueueConfig,
    json: String,
}

/// Per-store queue state on the client: key names, the config cache and
/// the long-poll listener.
#[derive(Debug)]
pub(crate) struct Queues {
    keys: QueueKeys,
    configs: RwLock<HashMap<String, Arc<Cached>>>,
    notifier: Notifier,
}

impl Queues {
    /// `urls`: where the wake-up listener may subscribe.
    pub(crate) fn new(prefix: &str, urls: Vec<String>) -> Self {
        let keys = QueueKeys::new(prefix);
        let notifier = Notifier::new(keys.channel().to_owned(), urls);
        Queues {
            keys,
            configs: RwLock::new(HashMap::new()),
            notifier,
        }
    }

    fn cached(&self, queue: &str) -> Option<Arc<Cached>> {
        self.configs
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(queue)
            .cloned()
    }

    fn remember(&self, queue: &str, cached: Arc<Cached>) {
        self.configs
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(queue.to_owned(), cached);
    }

    fn forget(&self, queue: &str) {
        self.configs
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(queue);
    }
}

/// The payload as a send encodes it (same encoding as [`Payload`]).
#[derive(Serialize)]
struct PayloadRef<'a> {
    body: &'a bytes::Bytes,
    attributes: &'a std::collections::BTreeMap<String, String>,
    group_id: &'a Option<String>,
    dedup_id: &'a Option<String>,
}

fn span(op: &'static str, queue: &str) -> tracing::Span {
    tracing::debug_span!("queue", backend = BACKEND, op = op, queue = queue)
}

fn at<'a>(op: &'static str, queue: &'a str) -> At<'a> {
    At::scoped(op, BACKEND, queue)
}

fn not_found(op: &'static str, queue: &str) -> Error {
    Error::not_found(
        Context::scoped(op, BACKEND, queue),
        format!("queue {queue:?}"),
    )
}

fn stale(op: &'static str, queue: &str, receipt: &Receipt) -> Error {
    Error::StaleReceipt {
        ctx: Context::scoped(op, BACKEND, queue),
        receipt: receipt.to_string(),
    }
}

/// The status word a script reply starts with.
fn status(reply: &Reply) -> &[u8] {
    reply.first().and_then(|s| s.as_deref()).unwrap_or(b"")
}

/// The common outcome of the receipt scripts.
fn receipt_outcome(op: &'static str, queue: &str, receipt: &Receipt, reply: &Reply) -> Result<()> {
    match status(reply) {
        b"ok" => Ok(()),
        b"stale" => Err(stale(op, queue, receipt)),
        b"nf" => Err(not_found(op, queue)),
        _ => Err(malformed(at(op, queue))),
    }
}

impl RedisStore {
    fn queues(&self) -> &Queues {
        &self.inner.queues
    }

    fn check_queue(&self, op: &'static str, queue: &str) -> Result<()> {
        validate::namespace(at(op, queue), &self.inner.caps, queue)
    }

    /// A script on the queue's keys (plus `extra` keys), with `args`.
    async fn queue_script(
        &self,
        op: &'static str,
        queue: &str,
        script: &Script,
        extra: &[&str],
        args: &[&[u8]],
    ) -> Result<Reply> {
        let keys = self.queues().keys.all(queue);
        let mut inv = script.prepare_invoke();
        for k in &keys {
            inv.key(k);
        }
        for k in extra {
            inv.key(*k);
        }
        for a in args {
            inv.arg(*a);
        }
        self.run(op, queue, &inv).await
    }

    /// The queue's config from the server (and into the cache).
    async fn fetch_config(&self, op: &'static str, queue: &str) -> Result<Arc<Cached>> {
        let json: Option<Vec<u8>> = self
            .conn()
            .hget(self.queues().keys.config(queue), "cfg")
            .await
            .map_err(|e| map_err(at(op, queue), e))?;
        let Some(json) = json else {
            self.queues().forget(queue);
            return Err(not_found(op, queue));
        };
        self.cache_config(op, queue, &json)
    }

    fn cache_config(&self, op: &'static str, queue: &str, json: &[u8]) -> Result<Arc<Cached>> {
        let config = codec::parse_config(at(op, queue), json)?;
        let cached = Arc::new(Cached {
            config,
            json: String::from_utf8_lossy(json).into_owned(),
        });
        self.queues().remember(queue, cached.clone());
        Ok(cached)
    }

    async fn q_create(&self, queue: &str, config: QueueConfig) -> Result<()> {
        let ctx = Context::scoped("create_queue", BACKEND, queue);
        self.check_queue("create_queue", queue)?;
        config.validate(&ctx, &self.inner.caps)?;
        let f = ConfigFields::new(ctx.clone(), &config)?;
        let config_key = self.queues().keys.config(queue);
        let mut inv = scripts::CREATE.prepare_invoke();
        inv.key(&config_key).key(self.queues().keys.registry());
        inv.arg(queue)
            .arg(&f.json)
            .arg(&f.vis)
            .arg(&f.delay)
            .arg(&f.retention)
            .arg(f.fifo)
            .arg(&f.dlq)
            .arg(&f.max_receives);
        let reply = self.run("create_queue", queue, &inv).await?;
        match status(&reply) {
            b"ok" | b"same" => Ok(()),
            b"differs" => Err(Error::AlreadyExists {
                ctx,
                what: format!("queue {queue:?} with a different configuration"),
            }),
            _ => Err(malformed(ctx)),
        }
    }

    async fn q_send(&self, queue: &str, messages: Vec<SendMessage>) -> Result<Vec<MessageId>> {
        const OP: &str = "send_batch";
        self.check_queue(OP, queue)?;
        validate::batch_size(at(OP, queue), messages.len())?;
        let ids: Vec<MessageId> = messages.iter().map(|_| MessageId::random()).collect();
        let mut cached = match self.queues().cached(queue) {
            Some(c) => c,
            None => self.fetch_config(OP, queue).await?,
        };
        // A config changed underneath is re-read and the batch
        // re-validated; three changes in a row is someone's loop.
        for _ in 0..3 {
            let now = self.now_ms();
            let mut args: Vec<Vec<u8>> = Vec::with_capacity(5 + 5 * messages.len());
            args.push(now.to_string().into_bytes());
            args.push(cached.json.clone().into_bytes());
            args.push(duration_millis(DEDUP_WINDOW).to_string().into_bytes());
            args.push(self.queues().keys.channel().as_bytes().to_vec());
            args.push(queue.as_bytes().to_vec());
            for (m, id) in messages.iter().zip(&ids) {
                let dedup = m.validate(at(OP, queue), &cached.config)?;
                let payload = postcard::to_stdvec(&PayloadRef {
                    body: &m.body,
                    attributes: &m.attributes,
                    group_id: &m.group_id,
                    dedup_id: &dedup,
                })
                .map_err(|e| corrupt(at(OP, queue), "message payload", e))?;
                args.push(id.as_str().as_bytes().to_vec());
                args.push(payload);
                args.push(
                    m.delay
                        .map_or_else(String::new, |d| duration_millis(d).to_string())
                        .into_bytes(),
                );
                args.push(m.group_id.clone().unwrap_or_default().into_bytes());
                args.push(dedup.unwrap_or_default().into_bytes());
            }
            let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
            let reply = self
                .queue_script(OP, queue, &scripts::SEND, &[], &refs)
                .await?;
            match status(&reply) {
                b"ok" => {
                    return reply[1..]
                        .iter()
                        .map(|id| {
                            id.as_deref()
                                .map(|b| MessageId::new(String::from_utf8_lossy(b)))
                                .ok_or_else(|| malformed(at(OP, queue)))
                        })
                        .collect();
                }
                b"nf" => {
                    self.queues().forget(queue);
                    return Err(not_found(OP, queue));
                }
                b"cfg" => {
                    let json = reply
                        .get(1)
                        .and_then(|j| j.as_deref())
                        .ok_or_else(|| malformed(at(OP, queue)))?;
                    cached = self.cache_config(OP, queue, json)?;
                }
                _ => return Err(malformed(at(OP, queue))),
            }
        }
        Err(Error::Unavailable {
            ctx: Context::scoped(OP, BACKEND, queue),
            source: "the queue's config kept changing during the send; retry".into(),
        })
    }

    /// One receive attempt; never waits.
    async fn receive_once(&self, queue: &str, options: ReceiveOptions) -> Result<Attempt> {
        const OP: &str = "receive";
        let now = self.now_ms();
        let max = options.max_messages.to_string();
        let vis = options
            .visibility_timeout
            .map_or_else(String::new, |d| duration_millis(d).to_string());
        let keys = &self.queues().keys;
        let reply = self
            .queue_script(
                OP,
                queue,
                &scripts::RECEIVE,
                &[],
                &[
                    now.to_string().as_bytes(),
                    max.as_bytes(),
                    vis.as_bytes(),
                    keys.base().as_bytes(),
                    queue.as_bytes(),
                    keys.channel().as_bytes(),
                ],
            )
            .await?;
        match status(&reply) {
            b"ok" => {}
            b"nf" => return Err(not_found(OP, queue)),
            _ => return Err(malformed(at(OP, queue))),
        }
        let ctx = Context::scoped(OP, BACKEND, queue);
        let next = match reply.get(1).and_then(|n| n.as_deref()) {
            Some(b"") | None => None,
            Some(n) => Some(Timestamp::from_millis(decimal(
                ctx.clone(),
                "visible-at",
                n,
            )?)),
        };
        let got = reply[2..]
            .chunks(5)
            .map(|fields| codec::delivery(&ctx, fields))
            .collect::<Result<Vec<_>>>()?;
        Ok((got, next))
    }

    async fn q_receive(
        &self,
        queue: &str,
        options: ReceiveOptions,
    ) -> Result<Vec<ReceivedMessage>> {
        let ctx = at("receive", queue);
        self.check_queue("receive", queue)?;
        validate::batch_size(ctx, options.max_messages)?;
        if let Some(v) = options.visibility_timeout {
            validate::visibility_timeout(ctx, v)?;
        }
        validate::wait(ctx, options.wait)?;
        if options.wait.is_zero() {
            return Ok(self.receive_once(queue, options).await?.0);
        }
        let notifier = &self.queues().notifier;
        let recheck = (!notifier.listening().await).then_some(notify::FALLBACK_RECHECK);
        long_poll(
            notifier.waiters(),
            self.inner.clock.as_ref(),
            queue,
            options.wait,
            recheck,
            || self.receive_once(queue, options),
        )
        .await
    }

    async fn receipt_script(
        &self,
        op: &'static str,
        queue: &str,
        script: &Script,
        receipt: &Receipt,
        timeout: Option<Duration>,
    ) -> Result<()> {
        self.check_queue(op, queue)?;
        let now = self.now_ms().to_string();
        let count = receipt.receive_count.to_string();
        let keys = &self.queues().keys;
        let mut args: Vec<&[u8]> = vec![
            now.as_bytes(),
            receipt.message_id.as_str().as_bytes(),
            count.as_bytes(),
        ];
        let timeout = timeout.map(|t| duration_millis(t).to_string());
        if let Some(t) = &timeout {
            args.push(t.as_bytes());
        }
        args.push(keys.channel().as_bytes());
        args.push(queue.as_bytes());
        let reply = self.queue_script(op, queue, script, &[], &args).await?;
        receipt_outcome(op, queue, receipt, &reply)
    }

    /// A script whose reply is just a status (and maybe data), on a
    /// queue that must exist.
    async fn simple(&self, op: &'static str, queue: &str, script: &Script) -> Result<Reply> {
        self.check_queue(op, queue)?;
        let now = self.now_ms().to_string();
        let reply = self
            .queue_script(op, queue, script, &[], &[now.as_bytes()])
            .await?;
        match status(&reply) {
            b"ok" => Ok(reply),
            b"nf" => Err(not_found(op, queue)),
            _ => Err(malformed(at(op, queue))),
        }
    }

    async fn q_counts(&self, queue: &str) -> Result<QueueCounts> {
        const OP: &str = "counts";
        let reply = self.simple(OP, queue, &scripts::COUNTS).await?;
        let ctx = Context::scoped(OP, BACKEND, queue);
        let n = |i: usize| -> Result<u64> {
            let b = reply
                .get(i)
                .and_then(|b| b.as_deref())
                .ok_or_else(|| malformed(ctx.clone()))?;
            decimal(ctx.clone(), "count", b)
        };
        Ok(QueueCounts {
            visible: n(1)?,
            in_flight: n(2)?,
            delayed: n(3)?,
        })
    }

    async fn q_export(&self, queue: &str) -> Result<QueueState> {
        const OP: &str = "export_queue";
        let reply = self.simple(OP, queue, &scripts::EXPORT).await?;
        let ctx = Context::scoped(OP, BACKEND, queue);
        let field = |i: usize| -> Result<&[u8]> {
            reply
                .get(i)
                .and_then(|b| b.as_deref())
                .ok_or_else(|| malformed(ctx.clone()))
        };
        let config = codec::parse_config(ctx.clone(), field(1)?)?;
        let next_sequence = decimal(ctx.clone(), "sequence", field(2)?)?;
        let count = usize::try_from(decimal(ctx.clone(), "message count", field(3)?)?)
            .map_err(|e| corrupt(ctx.clone(), "message count", e))?;
        let mut messages = Vec::with_capacity(count);
        let mut i = 4;
        for _ in 0..count {
            messages.push(codec::message_state(
                &ctx,
                field(i)?,
                field(i + 1)?,
                field(i + 2)?,
            )?);
            i += 3;
        }
        messages.sort_by_key(|m| m.sequence);
        let mut dedup = Vec::new();
        while i + 2 < reply.len() {
            dedup.push(DedupEntry {
                dedup_id: String::from_utf8_lossy(field(i)?).into_owned(),
                expires_at: Timestamp::from_millis(decimal(
                    ctx.clone(),
                    "dedup expiry",
                    field(i + 1)?,
                )?),
                message_id: MessageId::new(String::from_utf8_lossy(field(i + 2)?)),
            });
            i += 3;
        }
        dedup.sort_by(|a, b| (a.expires_at, &a.dedup_id).cmp(&(b.expires_at, &b.dedup_id)));
        Ok(QueueState {
            config,
            messages,
            dedup,
            next_sequence,
        })
    }

    async fn q_import(&self, queue: &str, state: QueueState) -> Result<()> {
        const OP: &str = "import_queue";
        let ctx = Context::scoped(OP, BACKEND, queue);
        self.check_queue(OP, queue)?;
        state.config.validate(&ctx, &self.inner.caps)?;
        state
            .check_consistency()
            .and_then(|()| {
                codec::check_importable(&state.messages, &state.dedup, state.next_sequence)
            })
            .map_err(|reason| Error::invalid(ctx.clone(), reason))?;
        let f = ConfigFields::new(ctx.clone(), &state.config)?;
        let keys = &self.queues().keys;
        let mut args: Vec<Vec<u8>> = Vec::with_capacity(12 + 4 * state.messages.len());
        for s in [
            &self.now_ms().to_string(),
            queue,
            keys.channel(),
            &f.json,
            &f.vis,
            &f.delay,
            &f.retention,
            f.fifo,
            &f.dlq,
            &f.max_receives,
            &state.next_sequence.to_string(),
            &state.messages.len().to_string(),
        ] {
            args.push(s.as_bytes().to_vec());
        }
        for m in &state.messages {
            args.push(codec::sid(m.sequence).into_bytes());
            args.push(codec::record(m).into_bytes());
            args.push(
                Payload {
                    body: m.body.clone(),
                    attributes: m.attributes.clone(),
                    group_id: m.group_id.clone(),
                    dedup_id: m.dedup_id.clone(),
                }
                .encode(ctx.clone())?,
            );
            args.push(m.group_id.clone().unwrap_or_default().into_bytes());
        }
        for d in &state.dedup {
            args.push(d.dedup_id.clone().into_bytes());
            args.push(d.expires_at.as_millis().to_string().into_bytes());
            args.push(d.message_id.as_str().as_bytes().to_vec());
        }
        let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        let reply = self
            .queue_script(OP, queue, &scripts::IMPORT, &[keys.registry()], &refs)
            .await?;
        self.queues().forget(queue);
        match status(&reply) {
            b"ok" => Ok(()),
            _ => Err(malformed(ctx)),
        }
    }
}

#[async_trait]
impl QueueStore for RedisStore {
    fn backend_name(&self) -> &'static str {
        BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.caps
    }

    async fn create_queue(&self, queue: &str, config: QueueConfig) -> Result<()> {
        self.q_create(queue, config)
            .instrument(span("create_queue", queue))
            .await
    }

    async fn queue_config(&self, queue: &str) -> Result<QueueConfig> {
        self.check_queue("queue_config", queue)?;
        let cached = self
            .fetch_config("queue_config", queue)
            .instrument(span("queue_config", queue))
            .await?;
        Ok(cached.config.clone())
    }

    async fn delete_queue(&self, queue: &str) -> Result<bool> {
        self.check_queue("delete_queue", queue)?;
        let keys = &self.queues().keys;
        let reply = self
            .queue_script(
                "delete_queue",
                queue,
                &scripts::DELETE,
                &[keys.registry()],
                &[queue.as_bytes(), keys.channel().as_bytes()],
            )
            .instrument(span("delete_queue", queue))
            .await?;
        self.queues().forget(queue);
        Ok(status(&reply) == b"1")
    }

    async fn list_queues(&self, prefix: &str) -> Result<Vec<String>> {
        let (lo, hi) = if prefix.is_empty() {
            ("-".to_owned(), "+".to_owned())
        } else {
            (format!("[{prefix}"), format!("({prefix}\u{7f}"))
        };
        let names: Vec<String> = self
            .conn()
            .zrangebylex(self.queues().keys.registry(), lo, hi)
            .await
            .map_err(|e| map_err(Context::new("list_queues", BACKEND), e))?;
        Ok(names)
    }

    async fn send_batch(&self, queue: &str, messages: Vec<SendMessage>) -> Result<Vec<MessageId>> {
        self.q_send(queue, messages)
            .instrument(span("send_batch", queue))
            .await
    }

    async fn receive(&self, queue: &str, options: ReceiveOptions) -> Result<Vec<ReceivedMessage>> {
        // Boxed: the long poll's state is much larger than a plain receive's.
        Box::pin(self.q_receive(queue, options))
            .instrument(span("receive", queue))
            .await
    }

    async fn ack(&self, queue: &str, receipt: &Receipt) -> Result<()> {
        self.receipt_script("ack", queue, &scripts::ACK, receipt, None)
            .instrument(span("ack", queue))
            .await
    }

    async fn change_visibility(
        &self,
        queue: &str,
        receipt: &Receipt,
        timeout: Duration,
    ) -> Result<()> {
        validate::visibility_timeout(at("change_visibility", queue), timeout)?;
        self.receipt_script(
            "change_visibility",
            queue,
            &scripts::CHANGE_VISIBILITY,
            receipt,
            Some(timeout),
        )
        .instrument(span("change_visibility", queue))
        .await
    }

    async fn purge(&self, queue: &str) -> Result<()> {
        self.simple("purge", queue, &scripts::PURGE)
            .instrument(span("purge", queue))
            .await
            .map(drop)
    }

    async fn counts(&self, queue: &str) -> Result<QueueCounts> {
        self.q_counts(queue).instrument(span("counts", queue)).await
    }

    async fn export_queue(&self, queue: &str) -> Result<QueueState> {
        self.q_export(queue)
            .instrument(span("export_queue", queue))
            .await
    }

    async fn import_queue(&self, queue: &str, state: QueueState) -> Result<()> {
        self.q_import(queue, state)
            .instrument(span("import_queue", queue))
            .await
    }
}
