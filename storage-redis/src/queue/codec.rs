//! What the queue scripts store, as the client writes and reads it: the
//! opaque message payload, the message record, the config fields, and
//! the range checks that keep every number exact in Lua.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use storage_core::clock::duration_millis;
use storage_core::{
    Context, DedupEntry, Error, MessageId, MessageState, QueueConfig, Receipt, ReceivedMessage,
    Result, Timestamp,
};

/// Largest instant, duration or sequence number the scripts handle:
/// Lua numbers are doubles, exact up to 2^53 (ms: about year 287,000).
pub(crate) const MAX_EXACT: u64 = (1 << 53) - 1;

/// Longest FIFO group id the `len5(group)` index prefix can hold.
const MAX_GROUP_LEN: usize = 99_999;

/// The part of a message Lua never looks at.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Payload {
    pub(crate) body: Bytes,
    pub(crate) attributes: BTreeMap<String, String>,
    pub(crate) group_id: Option<String>,
    pub(crate) dedup_id: Option<String>,
}

impl Payload {
    pub(crate) fn encode(&self, ctx: impl Into<Context>) -> Result<Vec<u8>> {
        postcard::to_stdvec(self).map_err(|e| corrupt(ctx, "message payload", e))
    }

    pub(crate) fn decode(ctx: impl Into<Context>, bytes: &[u8]) -> Result<Payload> {
        postcard::from_bytes(bytes).map_err(|e| corrupt(ctx, "message payload", e))
    }
}

/// Stored data this crate could not have written.
pub(crate) fn corrupt(ctx: impl Into<Context>, what: &str, e: impl std::fmt::Display) -> Error {
    Error::Backend {
        ctx: ctx.into(),
        source: format!("malformed {what} in Redis: {e}").into(),
    }
}

/// The config as the scripts keep it: exact JSON (compared for create and
/// by sends) and the fields Lua reads.
#[derive(Debug, Clone)]
pub(crate) struct ConfigFields {
    pub(crate) json: String,
    pub(crate) vis: String,
    pub(crate) delay: String,
    pub(crate) retention: String,
    pub(crate) fifo: &'static str,
    pub(crate) dlq: String,
    pub(crate) max_receives: String,
}

impl ConfigFields {
    pub(crate) fn new(ctx: impl Into<Context>, config: &QueueConfig) -> Result<ConfigFields> {
        let ctx = ctx.into();
        let retention = duration_millis(config.retention);
        if retention > MAX_EXACT {
            return Err(Error::invalid(
                ctx,
                "retention is beyond the supported range",
            ));
        }
        let json = serde_json::to_string(config).map_err(|e| corrupt(ctx.clone(), "config", e))?;
        Ok(ConfigFields {
            json,
            vis: duration_millis(config.visibility_timeout).to_string(),
            delay: duration_millis(config.delay).to_string(),
            retention: retention.to_string(),
            fifo: if config.fifo { "1" } else { "0" },
            dlq: config
                .redrive
                .as_ref()
                .map_or_else(String::new, |r| r.dead_letter_queue.clone()),
            max_receives: config
                .redrive
                .as_ref()
                .map_or(0, |r| r.max_receives)
                .to_string(),
        })
    }
}

/// Parses a stored config.
pub(crate) fn parse_config(ctx: impl Into<Context>, json: &[u8]) -> Result<QueueConfig> {
    serde_json::from_slice(json).map_err(|e| corrupt(ctx, "queue config", e))
}

/// A message's sequence as its 16-digit index id.
pub(crate) fn sid(seq: u64) -> String {
    format!("{seq:016}")
}

/// The record the scripts keep per message.
pub(crate) fn record(m: &MessageState) -> String {
    format!(
        "{}:{}:{}:{}:{}",
        m.visible_at.as_millis(),
        m.receive_count,
        m.first_received_at
            .map_or_else(String::new, |t| t.as_millis().to_string()),
        m.sent_at.as_millis(),
        m.id
    )
}

/// Parses a stored decimal.
pub(crate) fn decimal(ctx: impl Into<Context>, what: &str, bytes: &[u8]) -> Result<u64> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| corrupt(ctx, what, String::from_utf8_lossy(bytes)))
}

/// Parses a stored record and payload back into a message state.
pub(crate) fn message_state(
    ctx: &Context,
    sid: &[u8],
    record: &[u8],
    payload: &[u8],
) -> Result<MessageState> {
    let bad = || {
        corrupt(
            ctx.clone(),
            "message record",
            String::from_utf8_lossy(record),
        )
    };
    let text = std::str::from_utf8(record).map_err(|_| bad())?;
    let mut parts = text.splitn(5, ':');
    let mut next = || parts.next().ok_or_else(bad);
    let visible_at = next()?.parse::<u64>().map_err(|_| bad())?;
    let receive_count = next()?.parse::<u32>().map_err(|_| bad())?;
    let first = next()?;
    let first_received_at = if first.is_empty() {
        None
    } else {
        Some(Timestamp::from_millis(first.parse().map_err(|_| bad())?))
    };
    let sent_at = next()?.parse::<u64>().map_err(|_| bad())?;
    let id = next()?.to_owned();
    let p = Payload::decode(ctx.clone(), payload)?;
    Ok(MessageState {
        id: MessageId::new(id),
        sequence: decimal(ctx.clone(), "message sequence", sid)?,
        body: p.body,
        attributes: p.attributes,
        group_id: p.group_id,
        dedup_id: p.dedup_id,
        sent_at: Timestamp::from_millis(sent_at),
        visible_at: Timestamp::from_millis(visible_at),
        receive_count,
        first_received_at,
    })
}

/// A delivery from the receive script's five fields.
pub(crate) fn delivery(ctx: &Context, fields: &[Option<Vec<u8>>]) -> Result<ReceivedMessage> {
    let field = |i: usize| -> Result<&[u8]> {
        fields
            .get(i)
            .and_then(|f| f.as_deref())
            .ok_or_else(|| corrupt(ctx.clone(), "receive reply", "missing field"))
    };
    let p = Payload::decode(ctx.clone(), field(0)?)?;
    let receive_count = u32::try_from(decimal(ctx.clone(), "receive count", field(1)?)?)
        .map_err(|e| corrupt(ctx.clone(), "receive count", e))?;
    let first = Timestamp::from_millis(decimal(ctx.clone(), "first receive", field(2)?)?);
    let sent = Timestamp::from_millis(decimal(ctx.clone(), "send time", field(3)?)?);
    let id = MessageId::new(
        std::str::from_utf8(field(4)?).map_err(|e| corrupt(ctx.clone(), "message id", e))?,
    );
    Ok(ReceivedMessage {
        receipt: Receipt {
            message_id: id.clone(),
            receive_count,
        },
        id,
        body: p.body,
        attributes: p.attributes,
        receive_count,
        sent_at: sent,
        first_received_at: first,
        group_id: p.group_id,
        dedup_id: p.dedup_id,
    })
}

/// Checks that every number of an imported state stays exact in Lua, and
/// that its ids fit the index formats.
pub(crate) fn check_importable(
    messages: &[MessageState],
    dedup: &[DedupEntry],
    next_sequence: u64,
) -> std::result::Result<(), String> {
    if next_sequence > MAX_EXACT {
        return Err(format!("next_sequence {next_sequence} is beyond 2^53"));
    }
    for m in messages {
        let instants = [Some(m.sent_at), Some(m.visible_at), m.first_received_at];
        if instants.iter().flatten().any(|t| t.as_millis() > MAX_EXACT) {
            return Err(format!("message {} has an instant beyond 2^53 ms", m.id));
        }
        if m.id.as_str().is_empty() {
            return Err("a message has an empty id".to_owned());
        }
        if m.group_id.as_ref().is_some_and(|g| g.len() > MAX_GROUP_LEN) {
            return Err(format!("message {} has an over-long group id", m.id));
        }
    }
    if let Some(d) = dedup.iter().find(|d| d.expires_at.as_millis() > MAX_EXACT) {
        return Err(format!("dedup id {:?} expires beyond 2^53 ms", d.dedup_id));
    }
    Ok(())
}
