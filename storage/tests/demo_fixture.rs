//! `storage/fixtures/demo.snap`, the snapshot the README's CLI demo loads:
//! checked against the state that generates it. Regenerate with
//! `UPDATE_FIXTURES=1 cargo test --workspace --test demo_fixture`.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use storage_core::snapshot::{self, Snapshot};
use storage_core::{
    Clock, Expiry, KvStore, ManualClock, PutOptions, QueueConfig, QueueStore, QueueStoreExt,
    ReceiveOptions, RedrivePolicy, SendMessage, Timestamp,
};

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo.snap")
}

/// A small emulator-like state: users and sessions (one with a TTL), a
/// work queue with a message in flight and a delayed one, a FIFO queue with
/// two groups, and a dead-letter queue holding one message.
async fn generate() -> Vec<u8> {
    let clock = ManualClock::new(Timestamp::from_millis(1_780_000_000_000));
    let store = storage_memory::MemoryStore::with_clock(Arc::new(clock.clone()));
    for (k, v) in [
        ("alice", "{\"plan\":\"pro\"}"),
        ("bob", "{\"plan\":\"free\"}"),
        ("carol", "{\"plan\":\"free\"}"),
    ] {
        store
            .put("users", k.as_bytes(), Bytes::from(v), PutOptions::default())
            .await
            .unwrap();
    }
    store
        .put(
            "sessions",
            b"s-1",
            Bytes::from_static(b"alice"),
            PutOptions {
                expiry: Expiry::After(Duration::from_secs(3600)),
            },
        )
        .await
        .unwrap();
    store
        .put(
            "sessions",
            &[0x00, 0xff],
            Bytes::from_static(b"binary key"),
            PutOptions::default(),
        )
        .await
        .unwrap();

    store
        .create_queue("jobs-dlq", QueueConfig::default())
        .await
        .unwrap();
    let jobs = QueueConfig {
        redrive: Some(RedrivePolicy {
            max_receives: 1,
            dead_letter_queue: "jobs-dlq".to_owned(),
        }),
        ..QueueConfig::default()
    };
    store.create_queue("jobs", jobs).await.unwrap();
    store
        .send("jobs", SendMessage::new("poison"))
        .await
        .unwrap();
    store
        .receive("jobs", ReceiveOptions::default())
        .await
        .unwrap();
    clock.advance(Duration::from_secs(31));
    // The second receive moves "poison" to the DLQ and delivers nothing.
    store
        .receive("jobs", ReceiveOptions::default())
        .await
        .unwrap();
    for body in ["resize photo 1", "resize photo 2", "send mail"] {
        store.send("jobs", SendMessage::new(body)).await.unwrap();
    }
    store
        .receive("jobs", ReceiveOptions::default())
        .await
        .unwrap();
    store
        .send(
            "jobs",
            SendMessage::new("later").delayed(Duration::from_secs(600)),
        )
        .await
        .unwrap();

    store
        .create_queue("events.fifo", QueueConfig::fifo())
        .await
        .unwrap();
    for (i, group) in ["a", "b", "a", "b", "a"].iter().enumerate() {
        store
            .send(
                "events.fifo",
                SendMessage::new(format!("event {i}"))
                    .group(*group)
                    .dedup(format!("e{i}")),
            )
            .await
            .unwrap();
    }

    let mut bytes = Vec::new();
    let kv: &dyn KvStore = &store;
    let q: &dyn QueueStore = &store;
    snapshot::export(Some(kv), Some(q), clock.now(), &mut bytes)
        .await
        .unwrap();
    bytes
}

/// The content, without message ids (random per generation).
fn essence(s: &Snapshot) -> String {
    let mut out = format!("{} {:?}\n", s.exported_at, s.summary());
    for (ns, entries) in &s.namespaces {
        for e in entries {
            out.push_str(&format!(
                "{ns} {:?} {:?} {:?}\n",
                e.key, e.value, e.expires_at
            ));
        }
    }
    for (name, q) in &s.queues {
        out.push_str(&format!("{name} {:?} next {}\n", q.config, q.next_sequence));
        for m in &q.messages {
            out.push_str(&format!(
                " {} {:?} {:?} sent {} visible {} count {}\n",
                m.sequence, m.body, m.group_id, m.sent_at, m.visible_at, m.receive_count
            ));
        }
    }
    out
}

#[tokio::test]
async fn the_committed_demo_fixture_is_what_the_generator_makes() {
    let fresh = generate().await;
    if std::env::var("UPDATE_FIXTURES").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(path().parent().unwrap()).unwrap();
        std::fs::write(path(), &fresh).unwrap();
    }
    let committed = std::fs::read(path()).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (UPDATE_FIXTURES=1 regenerates it)",
            path().display()
        )
    });
    let committed = snapshot::decode(&committed).unwrap();
    let fresh = snapshot::decode(&fresh).unwrap();
    assert_eq!(essence(&committed), essence(&fresh));
    let s = committed.summary();
    assert_eq!(
        (s.namespaces, s.entries, s.queues, s.messages),
        (2, 5, 3, 10)
    );
}
