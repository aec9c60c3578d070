//! The portable snapshot round-trips memory → sqlite (file) → memory
//! losslessly: same entries, expiries, queue configs, every message's
//! state and dedup memory; receipts issued before the move still work;
//! and both stores then behave identically step by step.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use storage_core::snapshot::{self, ImportMode, Snapshot};
use storage_core::{
    AtomicKv, Clock, KvStore, ManualClock, PutOptions, QueueConfig, QueueStore, QueueStoreExt,
    ReceiveOptions, ReceivedMessage, RedrivePolicy, SendMessage, Timestamp,
};
use storage_memory::MemoryStore;
use storage_sqlite::{SqliteConfig, SqliteStore};

/// Version tokens are store-specific and the backend name differs; the
/// rest must be identical.
fn comparable(bytes: &[u8]) -> Snapshot {
    let mut s = snapshot::decode(bytes).unwrap();
    s.backend = String::new();
    for entries in s.namespaces.values_mut() {
        for e in entries {
            e.version = None;
        }
    }
    s
}

async fn export(kv: &dyn KvStore, q: &dyn QueueStore, clock: &ManualClock) -> Vec<u8> {
    let mut out = Vec::new();
    snapshot::export(Some(kv), Some(q), clock.now(), &mut out)
        .await
        .unwrap();
    out
}

/// What a delivery must agree on across the two stores. Messages sent
/// before the move keep their ids and receipts (the snapshot comparison
/// checks them); messages sent after it get random ids of their own.
type Delivery = (
    Bytes,
    BTreeMap<String, String>,
    u32,
    Timestamp,
    Timestamp,
    Option<String>,
);

fn delivered(got: &[ReceivedMessage]) -> Vec<Delivery> {
    got.iter()
        .map(|m| {
            (
                m.body.clone(),
                m.attributes.clone(),
                m.receive_count,
                m.sent_at,
                m.first_received_at,
                m.group_id.clone(),
            )
        })
        .collect()
}

#[tokio::test]
async fn memory_to_sqlite_to_memory_is_lossless() {
    let clock = ManualClock::default();
    let mem = MemoryStore::with_clock(Arc::new(clock.clone()));

    // KV: binary keys, empty values, expiring entries, many pages.
    for i in 0..1_500u32 {
        mem.put(
            "many",
            &i.to_be_bytes(),
            Bytes::from(format!("v{i}")),
            PutOptions::default(),
        )
        .await
        .unwrap();
    }
    mem.put("bin", &[0x00, 0xff], Bytes::new(), PutOptions::default())
        .await
        .unwrap();
    mem.put(
        "bin",
        &[0xff],
        Bytes::from_static(&[0, 1, 2]),
        PutOptions::default(),
    )
    .await
    .unwrap();
    mem.put(
        "ttl",
        b"soon",
        Bytes::from_static(b"s"),
        PutOptions::ttl(Duration::from_secs(10)),
    )
    .await
    .unwrap();
    mem.put(
        "ttl",
        b"later",
        Bytes::from_static(b"l"),
        PutOptions::ttl(Duration::from_secs(3600)),
    )
    .await
    .unwrap();

    // Queues: visible, in flight, delayed; FIFO with dedup memory; DLQ.
    mem.create_queue("std", QueueConfig::default())
        .await
        .unwrap();
    for b in ["m1", "m2", "m3"] {
        mem.send("std", SendMessage::new(b).attribute("k", b))
            .await
            .unwrap();
    }
    let first = mem.receive("std", ReceiveOptions::default()).await.unwrap();
    mem.send(
        "std",
        SendMessage::new("later").delayed(Duration::from_secs(60)),
    )
    .await
    .unwrap();
    mem.create_queue(
        "o.fifo",
        QueueConfig {
            content_based_dedup: true,
            ..QueueConfig::fifo()
        },
    )
    .await
    .unwrap();
    mem.send("o.fifo", SendMessage::new("a1").group("g1").dedup("d1"))
        .await
        .unwrap();
    mem.send("o.fifo", SendMessage::new("a2").group("g1"))
        .await
        .unwrap();
    mem.send("o.fifo", SendMessage::new("b1").group("g2"))
        .await
        .unwrap();
    let fifo_first = mem
        .receive("o.fifo", ReceiveOptions::default())
        .await
        .unwrap();
    mem.create_queue("dlq", QueueConfig::default())
        .await
        .unwrap();
    mem.create_queue(
        "main",
        QueueConfig {
            redrive: Some(RedrivePolicy {
                max_receives: 1,
                dead_letter_queue: "dlq".into(),
            }),
            ..QueueConfig::default()
        },
    )
    .await
    .unwrap();
    mem.send("main", SendMessage::new("poison")).await.unwrap();
    let p = mem
        .receive("main", ReceiveOptions::default())
        .await
        .unwrap();
    mem.change_visibility("main", &p[0].receipt, Duration::ZERO)
        .await
        .unwrap();
    clock.advance(Duration::from_secs(1));

    let original = export(&mem, &mem, &clock).await;

    // Into a SQLite file on a clock carried over from the export.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("copy.sqlite");
    let sq_clock = ManualClock::new(clock.now());
    let sq = SqliteStore::open_with_clock(SqliteConfig::file(&path), Arc::new(sq_clock.clone()))
        .await
        .unwrap();
    snapshot::import(&original, Some(&sq), Some(&sq), ImportMode::Replace)
        .await
        .unwrap();
    let via_sqlite = export(&sq, &sq, &sq_clock).await;
    assert_eq!(
        comparable(&original),
        comparable(&via_sqlite),
        "memory → sqlite changed the state"
    );

    // Survives a restart of the SQLite store.
    drop(sq);
    let sq = SqliteStore::open_with_clock(SqliteConfig::file(&path), Arc::new(sq_clock.clone()))
        .await
        .unwrap();
    let after_restart = export(&sq, &sq, &sq_clock).await;
    assert_eq!(
        comparable(&original),
        comparable(&after_restart),
        "reopening changed the state"
    );

    // And back into memory.
    let back_clock = ManualClock::new(clock.now());
    let back = MemoryStore::with_clock(Arc::new(back_clock.clone()));
    snapshot::import(
        &after_restart,
        Some(&back),
        Some(&back),
        ImportMode::Replace,
    )
    .await
    .unwrap();
    let round_trip = export(&back, &back, &back_clock).await;
    assert_eq!(
        comparable(&original),
        comparable(&round_trip),
        "sqlite → memory changed the state"
    );

    // Receipts issued before the move still work on the copy.
    sq.change_visibility("std", &first[0].receipt, Duration::from_secs(5))
        .await
        .unwrap();
    mem.change_visibility("std", &first[0].receipt, Duration::from_secs(5))
        .await
        .unwrap();
    sq.ack("o.fifo", &fifo_first[0].receipt).await.unwrap();
    mem.ack("o.fifo", &fifo_first[0].receipt).await.unwrap();

    let a1_id = fifo_first[0].id.clone();
    // Then both behave the same, step by step, as their clocks move
    // together: redrive, FIFO order, delays, dedup, TTL.
    for step in 0..8u64 {
        for q in ["std", "o.fifo", "main", "dlq"] {
            let a = mem.receive(q, ReceiveOptions::batch(10)).await.unwrap();
            let b = sq.receive(q, ReceiveOptions::batch(10)).await.unwrap();
            assert_eq!(
                delivered(&a),
                delivered(&b),
                "receive from {q} at step {step}"
            );
            assert_eq!(
                mem.counts(q).await.unwrap(),
                sq.counts(q).await.unwrap(),
                "counts of {q}"
            );
        }
        let dup_a = mem
            .send("o.fifo", SendMessage::new("x").group("g9").dedup("d1"))
            .await;
        let dup_b = sq
            .send("o.fifo", SendMessage::new("x").group("g9").dedup("d1"))
            .await;
        // Within the window both return a1's id; after it both enqueue a
        // new message (whose random ids differ between the stores).
        assert_eq!(
            dup_a.unwrap() == a1_id,
            dup_b.unwrap() == a1_id,
            "dedup at step {step}"
        );
        for k in [&b"soon"[..], b"later"] {
            assert_eq!(
                mem.get("ttl", k).await.unwrap(),
                sq.get("ttl", k).await.unwrap()
            );
        }
        assert_eq!(
            mem.get_versioned("bin", &[0xff])
                .await
                .unwrap()
                .map(|v| v.value),
            sq.get_versioned("bin", &[0xff])
                .await
                .unwrap()
                .map(|v| v.value)
        );
        let d = Duration::from_secs(20 * (step + 1));
        clock.advance(d);
        sq_clock.advance(d);
    }
}
