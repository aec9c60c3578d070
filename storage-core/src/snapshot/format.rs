//! Encoding and decoding of the byte format documented in the module docs.

use std::io::Write;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{len_u64, KvEntry, Snapshot, Summary};
use crate::clock::Timestamp;
use crate::error::{Context, Error, Result};
use crate::queue::{DedupEntry, MessageState, QueueConfig, QueueState};

/// The first eight bytes of every snapshot.
pub const MAGIC: [u8; 8] = *b"STORSNAP";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Length of the SHA-256 trailer.
pub const CHECKSUM_LEN: usize = 32;

/// Magic plus version.
const PREAMBLE_LEN: usize = 12;
/// Width of a frame's length prefix.
const LEN_PREFIX: usize = 4;

pub(super) const DECODE_OP: &str = "import_snapshot";
pub(super) const ENCODE_OP: &str = "export_snapshot";
pub(super) const FORMAT_BACKEND: &str = "snapshot";

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    exported_at: Timestamp,
    backend: String,
    namespaces: u64,
    entries: u64,
    queues: u64,
    messages: u64,
}

/// A record as read. Variant order is the wire tag: never reorder.
#[derive(Debug, Deserialize)]
enum Record {
    KvEntry {
        namespace: String,
        key: Bytes,
        value: Bytes,
        version: Option<String>,
        expires_at: Option<Timestamp>,
    },
    Queue {
        name: String,
        config: QueueConfig,
        next_sequence: u64,
        dedup: Vec<DedupEntry>,
    },
    Message {
        queue: String,
        message: MessageState,
    },
    End {
        records: u64,
    },
}

/// A record as written, borrowing from the snapshot. Must serialize exactly
/// like [`Record`] (same variants, same fields, same order).
#[derive(Debug, Serialize)]
enum RecordRef<'a> {
    KvEntry {
        namespace: &'a str,
        key: &'a Bytes,
        value: &'a Bytes,
        version: Option<&'a str>,
        expires_at: Option<Timestamp>,
    },
    Queue {
        name: &'a str,
        config: &'a QueueConfig,
        next_sequence: u64,
        dedup: &'a [DedupEntry],
    },
    Message {
        queue: &'a str,
        message: &'a MessageState,
    },
    End {
        records: u64,
    },
}

fn decode_err(reason: impl Into<String>) -> Error {
    Error::invalid(Context::new(DECODE_OP, FORMAT_BACKEND), reason)
}

fn encode_err(reason: impl Into<String>) -> Error {
    Error::invalid(Context::new(ENCODE_OP, FORMAT_BACKEND), reason)
}

/// The canonical record order, checked by both the encoder and the decoder.
#[derive(Debug, Default)]
struct OrderCheck {
    last_kv: Option<(String, Bytes)>,
    /// Current queue name and its `next_sequence`.
    queue: Option<(String, u64)>,
    last_sequence: Option<u64>,
}

impl OrderCheck {
    fn kv(&mut self, namespace: &str, key: &Bytes) -> Result<(), String> {
        if let Some((q, _)) = &self.queue {
            return Err(format!(
                "KV entry of namespace {namespace:?} after queue {q:?} (KV entries come first)"
            ));
        }
        if let Some((ns, k)) = &self.last_kv {
            let ascending = match namespace.as_bytes().cmp(ns.as_bytes()) {
                std::cmp::Ordering::Greater => true,
                std::cmp::Ordering::Equal => key > k,
                std::cmp::Ordering::Less => false,
            };
            if !ascending {
                return Err(format!(
                    "KV entry {namespace:?}/{} does not follow {ns:?}/{} in strictly increasing order",
                    hex::encode(key),
                    hex::encode(k)
                ));
            }
        }
        self.last_kv = Some((namespace.to_owned(), key.clone()));
        Ok(())
    }

    fn queue(&mut self, name: &str, next_sequence: u64) -> Result<(), String> {
        if let Some((q, _)) = &self.queue {
            if name.as_bytes() <= q.as_bytes() {
                return Err(format!(
                    "queue {name:?} does not follow queue {q:?} in strictly increasing order"
                ));
            }
        }
        self.queue = Some((name.to_owned(), next_sequence));
        self.last_sequence = None;
        Ok(())
    }

    fn message(&mut self, queue: &str, sequence: u64) -> Result<(), String> {
        let Some((q, next)) = &self.queue else {
            return Err(format!(
                "message of queue {queue:?} before any queue record"
            ));
        };
        if q != queue {
            return Err(format!(
                "message of queue {queue:?} inside queue {q:?} (messages follow their queue)"
            ));
        }
        if let Some(last) = self.last_sequence {
            if sequence <= last {
                return Err(format!(
                    "message sequence {sequence} of queue {q:?} does not follow {last}"
                ));
            }
        }
        if sequence >= *next {
            return Err(format!(
                "message sequence {sequence} of queue {q:?} is not below its next_sequence {next}"
            ));
        }
        self.last_sequence = Some(sequence);
        Ok(())
    }
}

/// A writer that hashes and counts what passes through it.
struct HashingWriter<'a> {
    out: &'a mut dyn Write,
    hasher: Sha256,
    written: u64,
}

impl HashingWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.out.write_all(bytes).map_err(|e| Error::Backend {
            ctx: Context::new(ENCODE_OP, FORMAT_BACKEND),
            source: Box::new(e),
        })?;
        self.hasher.update(bytes);
        self.written = self.written.saturating_add(len_u64(bytes.len()));
        Ok(())
    }

    fn frame<T: Serialize>(&mut self, what: &str, value: &T) -> Result<()> {
        let payload = postcard::to_stdvec(value)
            .map_err(|e| encode_err(format!("cannot encode {what}: {e}")))?;
        let len = u32::try_from(payload.len()).map_err(|_| {
            encode_err(format!(
                "{what} is {} bytes, more than a record can hold",
                payload.len()
            ))
        })?;
        self.write(&len.to_le_bytes())?;
        self.write(&payload)
    }
}

/// Writes `snapshot` in the snapshot format to `out`; returns what it wrote
/// (with `bytes` the total size). Namespaces without entries are skipped.
///
/// # Errors
///
/// [`Error::InvalidInput`] (context `export_snapshot`) if the snapshot
/// breaks the canonical order (keys of a namespace not strictly
/// increasing, message sequences not strictly increasing or not below the
/// queue's `next_sequence`) or a record exceeds 4 GiB;
/// [`Error::Backend`] if `out` fails. `out` may hold a partial snapshot
/// after an error.
pub fn encode(snapshot: &Snapshot, out: &mut dyn Write) -> Result<Summary> {
    // Check the order before writing a byte, so a bad snapshot writes nothing.
    let mut order = OrderCheck::default();
    for (ns, entries) in &snapshot.namespaces {
        for e in entries {
            order.kv(ns, &e.key).map_err(encode_err)?;
        }
    }
    for (name, q) in &snapshot.queues {
        order.queue(name, q.next_sequence).map_err(encode_err)?;
        for m in &q.messages {
            order.message(name, m.sequence).map_err(encode_err)?;
        }
    }

    let mut summary = snapshot.summary();
    let mut w = HashingWriter {
        out,
        hasher: Sha256::new(),
        written: 0,
    };
    w.write(&MAGIC)?;
    w.write(&FORMAT_VERSION.to_le_bytes())?;
    w.frame(
        "the header",
        &Header {
            exported_at: snapshot.exported_at,
            backend: snapshot.backend.clone(),
            namespaces: summary.namespaces,
            entries: summary.entries,
            queues: summary.queues,
            messages: summary.messages,
        },
    )?;
    let mut records: u64 = 0;
    for (ns, entries) in &snapshot.namespaces {
        for e in entries {
            records = records.saturating_add(1);
            w.frame(
                "a KV entry",
                &RecordRef::KvEntry {
                    namespace: ns,
                    key: &e.key,
                    value: &e.value,
                    version: e.version.as_deref(),
                    expires_at: e.expires_at,
                },
            )?;
        }
    }
    for (name, q) in &snapshot.queues {
        records = records.saturating_add(1);
        w.frame(
            "a queue",
            &RecordRef::Queue {
                name,
                config: &q.config,
                next_sequence: q.next_sequence,
                dedup: &q.dedup,
            },
        )?;
        for m in &q.messages {
            records = records.saturating_add(1);
            w.frame(
                "a message",
                &RecordRef::Message {
                    queue: name,
                    message: m,
                },
            )?;
        }
    }
    w.frame("the End record", &RecordRef::End { records })?;
    let digest = w.hasher.clone().finalize();
    w.write(&digest)?;
    w.out.flush().map_err(|e| Error::Backend {
        ctx: Context::new(ENCODE_OP, FORMAT_BACKEND),
        source: Box::new(e),
    })?;
    summary.bytes = w.written;
    Ok(summary)
}

/// One length-prefixed frame of `data` starting at `pos`: the payload and
/// the offset after it, or `None` when the frame runs past the end.
fn frame_at(data: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    let prefix_end = pos.checked_add(LEN_PREFIX)?;
    let prefix: [u8; LEN_PREFIX] = data.get(pos..prefix_end)?.try_into().ok()?;
    let len = usize::try_from(u32::from_le_bytes(prefix)).ok()?;
    let end = prefix_end.checked_add(len)?;
    Some((data.get(prefix_end..end)?, end))
}

/// Decodes and fully verifies a snapshot.
///
/// Checks, in order: the magic, the format version, the SHA-256 trailer
/// (a snapshot cut short is reported as truncated rather than as a
/// checksum mismatch), then the framing, every record, the record order,
/// the `End` record's count and the header's counts. Nothing is returned
/// unless everything holds.
///
/// # Errors
///
/// [`Error::InvalidInput`] in context `import_snapshot` on `snapshot`, with
/// one of these reasons: `bad magic ...`, `unsupported format version N
/// ...`, `truncated at byte X ...`, `checksum mismatch ...`, `malformed
/// header record ...`, `malformed record #n ...`, `records out of order at
/// record #n ...`, `header counts ... do not match ...`. Never panics.
pub fn decode(bytes: &[u8]) -> Result<Snapshot> {
    let len = bytes.len();
    let head = bytes.get(..MAGIC.len()).unwrap_or(bytes);
    if !MAGIC.starts_with(head) {
        return Err(decode_err(format!(
            "bad magic {}: not a snapshot (expected {:?})",
            hex::encode(head),
            String::from_utf8_lossy(&MAGIC)
        )));
    }
    let version_bytes: Option<[u8; 4]> = bytes
        .get(MAGIC.len()..PREAMBLE_LEN)
        .and_then(|b| b.try_into().ok());
    let Some(version_bytes) = version_bytes else {
        return Err(decode_err(format!(
            "truncated at byte {len}: the magic and format version need {PREAMBLE_LEN} bytes"
        )));
    };
    let version = u32::from_le_bytes(version_bytes);
    if version != FORMAT_VERSION {
        return Err(decode_err(format!(
            "unsupported format version {version} (this build reads version {FORMAT_VERSION})"
        )));
    }
    let body_len = len.saturating_sub(CHECKSUM_LEN);
    let (body, trailer) = match (bytes.get(..body_len), bytes.get(body_len..)) {
        (Some(b), Some(t)) if body_len >= PREAMBLE_LEN && t.len() == CHECKSUM_LEN => (b, t),
        _ => return Err(diagnose(bytes)),
    };
    if Sha256::digest(body).as_slice() != trailer {
        return Err(diagnose(bytes));
    }
    parse_body(body)
}

/// Explains a checksum failure: a snapshot cut short is "truncated", any
/// other is a "checksum mismatch".
fn diagnose(bytes: &[u8]) -> Error {
    let len = bytes.len();
    let truncated = |what: String| decode_err(format!("truncated at byte {len}: {what}"));
    let Some((_, mut pos)) = frame_at(bytes, PREAMBLE_LEN) else {
        return truncated("the header record is incomplete".to_owned());
    };
    let mut n: u64 = 0;
    loop {
        n = n.saturating_add(1);
        if pos >= len {
            return truncated(format!("record #{n} is missing (no End record)"));
        }
        let Some((payload, next)) = frame_at(bytes, pos) else {
            return truncated(format!("record #{n} at byte {pos} is incomplete"));
        };
        match postcard::from_bytes::<Record>(payload) {
            Ok(Record::End { .. }) => {
                let rest = len.saturating_sub(next);
                if rest < CHECKSUM_LEN {
                    return truncated(format!(
                        "the checksum needs {CHECKSUM_LEN} bytes after the End record, {rest} remain"
                    ));
                }
                break;
            }
            Ok(_) => pos = next,
            Err(_) => break,
        }
    }
    decode_err("checksum mismatch: the snapshot is corrupted")
}

/// Parses the checksummed part of a snapshot.
fn parse_body(body: &[u8]) -> Result<Snapshot> {
    let end = body.len();
    let Some((payload, mut pos)) = frame_at(body, PREAMBLE_LEN) else {
        return Err(decode_err(format!(
            "truncated at byte {end}: the header record at byte {PREAMBLE_LEN} is incomplete"
        )));
    };
    let header: Header = match postcard::take_from_bytes::<Header>(payload) {
        Ok((h, [])) => h,
        Ok((_, rest)) => {
            return Err(decode_err(format!(
                "malformed header record: {} unused bytes",
                rest.len()
            )))
        }
        Err(e) => return Err(decode_err(format!("malformed header record: {e}"))),
    };

    let mut snapshot = Snapshot {
        exported_at: header.exported_at,
        backend: header.backend.clone(),
        ..Snapshot::default()
    };
    let mut order = OrderCheck::default();
    let mut current: Option<(String, QueueState)> = None;
    let mut n: u64 = 0;
    loop {
        n = n.saturating_add(1);
        let at = pos;
        let Some((payload, next)) = frame_at(body, pos) else {
            return Err(decode_err(if at >= end {
                format!("truncated at byte {end}: record #{n} is missing (no End record)")
            } else {
                format!("truncated at byte {end}: record #{n} at byte {at} is incomplete")
            }));
        };
        pos = next;
        let record = match postcard::take_from_bytes::<Record>(payload) {
            Ok((r, [])) => r,
            Ok((_, rest)) => {
                return Err(decode_err(format!(
                    "malformed record #{n} at byte {at}: {} unused bytes",
                    rest.len()
                )))
            }
            Err(e) => {
                return Err(decode_err(format!(
                    "malformed record #{n} at byte {at}: {e}"
                )))
            }
        };
        let out_of_order =
            |why: String| decode_err(format!("records out of order at record #{n}: {why}"));
        match record {
            Record::KvEntry {
                namespace,
                key,
                value,
                version,
                expires_at,
            } => {
                order.kv(&namespace, &key).map_err(out_of_order)?;
                snapshot
                    .namespaces
                    .entry(namespace)
                    .or_default()
                    .push(KvEntry {
                        key,
                        value,
                        version,
                        expires_at,
                    });
            }
            Record::Queue {
                name,
                config,
                next_sequence,
                dedup,
            } => {
                order.queue(&name, next_sequence).map_err(out_of_order)?;
                if let Some((q, state)) = current.take() {
                    snapshot.queues.insert(q, state);
                }
                current = Some((
                    name,
                    QueueState {
                        config,
                        messages: Vec::new(),
                        dedup,
                        next_sequence,
                    },
                ));
            }
            Record::Message { queue, message } => {
                order
                    .message(&queue, message.sequence)
                    .map_err(out_of_order)?;
                if let Some((_, state)) = current.as_mut() {
                    state.messages.push(message);
                }
            }
            Record::End { records } => {
                let before = n.saturating_sub(1);
                if records != before {
                    return Err(decode_err(format!(
                        "malformed record #{n} at byte {at}: the End record counts {records} records, {before} precede it"
                    )));
                }
                if pos != end {
                    return Err(decode_err(format!(
                        "malformed record #{n} at byte {at}: {} bytes follow the End record",
                        end.saturating_sub(pos)
                    )));
                }
                break;
            }
        }
    }
    if let Some((q, state)) = current.take() {
        snapshot.queues.insert(q, state);
    }
    let found = snapshot.summary();
    let claimed = (
        header.namespaces,
        header.entries,
        header.queues,
        header.messages,
    );
    let actual = (
        found.namespaces,
        found.entries,
        found.queues,
        found.messages,
    );
    if claimed != actual {
        return Err(decode_err(format!(
            "header counts (namespaces, entries, queues, messages) {claimed:?} do not match the records {actual:?}"
        )));
    }
    Ok(snapshot)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn empty_snapshot_round_trips() {
        let s = Snapshot {
            exported_at: Timestamp::from_millis(7),
            backend: "x".into(),
            ..Snapshot::default()
        };
        let mut buf = Vec::new();
        let summary = encode(&s, &mut buf).unwrap();
        assert_eq!(summary.bytes, len_u64(buf.len()));
        assert_eq!(decode(&buf).unwrap(), s);
        assert_eq!(&buf[..8], b"STORSNAP");
        assert_eq!(&buf[8..12], &1u32.to_le_bytes());
    }

    #[test]
    fn record_ref_encodes_like_record() {
        let bytes = postcard::to_stdvec(&RecordRef::KvEntry {
            namespace: "ns",
            key: &Bytes::from_static(b"\x00\xff"),
            value: &Bytes::from_static(b"v"),
            version: Some("3"),
            expires_at: Some(Timestamp::from_millis(9)),
        })
        .unwrap();
        match postcard::from_bytes::<Record>(&bytes).unwrap() {
            Record::KvEntry {
                namespace,
                key,
                value,
                version,
                expires_at,
            } => {
                assert_eq!(namespace, "ns");
                assert_eq!(&key[..], b"\x00\xff");
                assert_eq!(&value[..], b"v");
                assert_eq!(version.as_deref(), Some("3"));
                assert_eq!(expires_at, Some(Timestamp::from_millis(9)));
            }
            other => unreachable!("{other:?}"),
        }
    }
}
