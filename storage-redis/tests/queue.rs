//! Redis-specific queue checks beyond the conformance suite: several store
//! instances on one server (competing consumers, FIFO group exclusivity,
//! long polls woken by another instance through pub/sub), hostile queue
//! names and foreign keys, imports out of the exact range, and a server
//! restart under a waiting receive.
//!
//! Each test starts its own `redis-server` through `storage_redis::testing`
//! (or uses `REDIS_URL`), with a unique key prefix.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use storage_core::{
    Error, ManualClock, MessageId, QueueConfig, QueueState, QueueStore, QueueStoreExt,
    ReceiveOptions, SendMessage,
};
use storage_redis::testing::RedisServer;
use storage_redis::{RedisConfig, RedisStore};

static NEXT: AtomicU64 = AtomicU64::new(0);

fn prefix() -> String {
    format!(
        "tq-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

async fn store(url: &str, prefix: &str, clock: &ManualClock) -> RedisStore {
    RedisStore::connect_with_clock(
        RedisConfig::standalone(url, prefix),
        Arc::new(clock.clone()),
    )
    .await
    .unwrap()
}

fn batch(n: usize, max: usize) -> Vec<Vec<SendMessage>> {
    (0..n)
        .map(|i| SendMessage::new(format!("m{i}")))
        .collect::<Vec<_>>()
        .chunks(max)
        .map(<[SendMessage]>::to_vec)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn competing_consumers_in_two_instances_never_share_a_message() {
    let server = RedisServer::start().unwrap();
    let (p, clock) = (prefix(), ManualClock::at_fixed_start());
    let producer = store(server.url(), &p, &clock).await;
    let a = store(server.url(), &p, &clock).await;
    let b = store(server.url(), &p, &clock).await;
    producer
        .create_queue("jobs", QueueConfig::default())
        .await
        .unwrap();
    for chunk in batch(300, 10) {
        producer.send_batch("jobs", chunk).await.unwrap();
    }
    // The clock stands still: every delivery is inside its visibility
    // timeout, so any message delivered twice is a bug.
    let consume = |s: RedisStore| {
        tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let batch = s.receive("jobs", ReceiveOptions::batch(7)).await.unwrap();
                if batch.is_empty() {
                    return got;
                }
                got.extend(batch);
            }
        })
    };
    let (ga, gb) = (consume(a.clone()), consume(b.clone()));
    let (ga, gb) = (ga.await.unwrap(), gb.await.unwrap());
    let ids_a: HashSet<MessageId> = ga.iter().map(|m| m.id.clone()).collect();
    let ids_b: HashSet<MessageId> = gb.iter().map(|m| m.id.clone()).collect();
    assert_eq!(ids_a.len(), ga.len(), "consumer A got a message twice");
    assert_eq!(ids_b.len(), gb.len(), "consumer B got a message twice");
    assert!(ids_a.is_disjoint(&ids_b), "a message was held by both");
    assert_eq!(ids_a.len() + ids_b.len(), 300, "messages were lost");
    assert!(!ga.is_empty() && !gb.is_empty(), "one consumer starved");
    let c = producer.counts("jobs").await.unwrap();
    assert_eq!((c.visible, c.in_flight), (0, 300));

    // After the timeout every message is delivered again, once.
    clock.advance(Duration::from_secs(31));
    let (ga, gb) = (consume(a.clone()), consume(b.clone()));
    let again: Vec<_> = ga
        .await
        .unwrap()
        .into_iter()
        .chain(gb.await.unwrap())
        .collect();
    assert_eq!(again.len(), 300);
    assert!(again.iter().all(|m| m.receive_count == 2));
    for m in &again {
        b.ack("jobs", &m.receipt).await.unwrap();
    }
    assert_eq!(a.counts("jobs").await.unwrap(), Default::default());
    a.destroy().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifo_groups_are_held_by_one_consumer_at_a_time() {
    let server = RedisServer::start().unwrap();
    let (p, clock) = (prefix(), ManualClock::at_fixed_start());
    let producer = store(server.url(), &p, &clock).await;
    producer
        .create_queue("orders.fifo", QueueConfig::fifo())
        .await
        .unwrap();
    for i in 0..200 {
        let g = format!("g{}", i % 10);
        producer
            .send(
                "orders.fifo",
                SendMessage::new(format!("{g}:{i}"))
                    .group(g)
                    .dedup(i.to_string()),
            )
            .await
            .unwrap();
    }
    // No acks and a still clock: a group, once delivered, stays blocked,
    // so each group's deliveries must all come from ONE receive call and
    // be a prefix of the group in send order.
    let mut tasks = Vec::new();
    for c in 0..3 {
        let s = store(server.url(), &p, &clock).await;
        tasks.push(tokio::spawn(async move {
            let mut calls = Vec::new();
            loop {
                let got = s
                    .receive("orders.fifo", ReceiveOptions::batch(4))
                    .await
                    .unwrap();
                if got.is_empty() {
                    return calls;
                }
                calls.push((c, got));
            }
        }));
    }
    let mut by_group: HashMap<String, Vec<(usize, usize, u32)>> = HashMap::new();
    for (n, t) in tasks.into_iter().enumerate() {
        for (call, (_, got)) in t.await.unwrap().into_iter().enumerate() {
            for m in got {
                let body = String::from_utf8(m.body.to_vec()).unwrap();
                let (_, i) = body.split_once(':').unwrap();
                by_group
                    .entry(m.group_id.clone().unwrap())
                    .or_default()
                    .push((n, call, i.parse().unwrap()));
            }
        }
    }
    assert_eq!(by_group.len(), 10, "every group was delivered");
    for (g, deliveries) in by_group {
        let calls: HashSet<(usize, usize)> = deliveries.iter().map(|(n, c, _)| (*n, *c)).collect();
        assert_eq!(calls.len(), 1, "group {g} was delivered by two receives");
        let first: u32 = g[1..].parse().unwrap();
        let seen: Vec<u32> = deliveries.iter().map(|(_, _, i)| *i).collect();
        let expected: Vec<u32> = (0..seen.len() as u32).map(|k| first + 10 * k).collect();
        assert_eq!(seen, expected, "group {g} out of order");
    }
    producer.destroy().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_is_woken_by_a_send_from_another_instance() {
    let server = RedisServer::start().unwrap();
    let (p, clock) = (prefix(), ManualClock::at_fixed_start());
    let waiter = store(server.url(), &p, &clock).await;
    let sender = store(server.url(), &p, &clock).await;
    waiter
        .create_queue("events", QueueConfig::default())
        .await
        .unwrap();
    let w = waiter.clone();
    let started = Instant::now();
    let poll = tokio::spawn(async move {
        w.receive(
            "events",
            ReceiveOptions {
                wait: Duration::from_secs(20),
                ..ReceiveOptions::default()
            },
        )
        .await
    });
    // Let the poll subscribe and find the queue empty first.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!poll.is_finished(), "the poll returned with nothing");
    sender
        .send("events", SendMessage::new("ping"))
        .await
        .unwrap();
    let got = poll.await.unwrap().unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(&got[0].body[..], b"ping");
    // Woken by the notification, not by the end of the 20 s wait (a
    // generous bound: this checks the wake-up path, not speed).
    assert!(started.elapsed() < Duration::from_secs(10));
    waiter.destroy().await.unwrap();
}

#[tokio::test]
async fn hostile_queue_names_are_refused_and_colon_names_do_not_collide() {
    let server = RedisServer::start().unwrap();
    let (p, clock) = (prefix(), ManualClock::at_fixed_start());
    let s = store(server.url(), &p, &clock).await;
    for bad in [
        "a{b",
        "a}b",
        "{x}",
        "a*b",
        "a\nb",
        "a b",
        "",
        &"q".repeat(1000),
    ] {
        let err = s
            .create_queue(bad, QueueConfig::default())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidInput { .. }), "{bad:?}: {err}");
        let err = s.send(bad, SendMessage::new("x")).await.unwrap_err();
        assert!(matches!(err, Error::InvalidInput { .. }), "{bad:?}: {err}");
    }
    assert!(s.list_queues("").await.unwrap().is_empty());
    // Names that look like key suffixes are ordinary queues.
    let names = ["a", "a:c", "c:a", "r:a", "a:r", "q/a"];
    for n in names {
        s.create_queue(n, QueueConfig::default()).await.unwrap();
        s.send(n, SendMessage::new(n.to_owned())).await.unwrap();
    }
    let mut sorted = names.map(str::to_owned).to_vec();
    sorted.sort();
    assert_eq!(s.list_queues("").await.unwrap(), sorted);
    assert_eq!(s.list_queues("a:").await.unwrap(), ["a:c", "a:r"]);
    for n in names {
        let got = s.receive(n, ReceiveOptions::batch(10)).await.unwrap();
        assert_eq!(got.len(), 1, "{n}");
        assert_eq!(&got[0].body[..], n.as_bytes());
    }
    s.destroy().await.unwrap();
}

#[tokio::test]
async fn oversized_messages_and_out_of_range_imports_change_nothing() {
    let server = RedisServer::start().unwrap();
    let (p, clock) = (prefix(), ManualClock::at_fixed_start());
    let s = store(server.url(), &p, &clock).await;
    let config = QueueConfig {
        max_message_size: 1024,
        ..QueueConfig::default()
    };
    s.create_queue("small", config.clone()).await.unwrap();
    s.send("small", SendMessage::new("kept")).await.unwrap();
    // One bad message fails the whole batch before anything is written.
    let err = s
        .send_batch(
            "small",
            vec![SendMessage::new("fine"), SendMessage::new(vec![0u8; 2000])],
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err}");
    let before = s.export_queue("small").await.unwrap();
    assert_eq!(before.messages.len(), 1);

    // Numbers Lua could not hold exactly are refused, the queue untouched.
    let mut state = before.clone();
    state.next_sequence = 1 << 60;
    let err = s.import_queue("small", state).await.unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err}");
    let mut state = before.clone();
    state.messages[0].visible_at = storage_core::Timestamp::from_millis(u64::MAX);
    let err = s.import_queue("small", state).await.unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err}");
    let inconsistent = QueueState {
        next_sequence: 0,
        ..before.clone()
    };
    let err = s.import_queue("small", inconsistent).await.unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err}");
    assert_eq!(s.export_queue("small").await.unwrap(), before);

    // Receipts naming nothing are stale, never a panic.
    let fake = storage_core::Receipt {
        message_id: MessageId::new("no-such-message"),
        receive_count: 1,
    };
    assert!(matches!(
        s.ack("small", &fake).await.unwrap_err(),
        Error::StaleReceipt { .. }
    ));
    s.destroy().await.unwrap();
}

#[tokio::test]
async fn foreign_keys_under_the_prefix_give_typed_errors_and_spare_other_queues() {
    let server = RedisServer::start().unwrap();
    let (p, clock) = (prefix(), ManualClock::at_fixed_start());
    let s = store(server.url(), &p, &clock).await;
    s.create_queue("victim", QueueConfig::default())
        .await
        .unwrap();
    s.create_queue("bystander", QueueConfig::default())
        .await
        .unwrap();
    s.send("victim", SendMessage::new("v")).await.unwrap();
    s.send("bystander", SendMessage::new("b")).await.unwrap();
    // Someone else overwrites every key of the victim queue with a list.
    let mut raw = redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let pattern = format!("{{{p}}}:q*:victim");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(&pattern)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(keys.len() >= 5, "{keys:?}");
    for k in &keys {
        let _: () = redis::cmd("DEL")
            .arg(k)
            .query_async(&mut raw)
            .await
            .unwrap();
        let _: () = redis::cmd("RPUSH")
            .arg(k)
            .arg("junk")
            .query_async(&mut raw)
            .await
            .unwrap();
    }
    let errors = [
        s.send("victim", SendMessage::new("x")).await.err(),
        s.receive("victim", ReceiveOptions::default()).await.err(),
        s.counts("victim").await.err(),
        s.export_queue("victim").await.err(),
        s.queue_config("victim").await.err(),
    ];
    for e in errors {
        let e = e.expect("an operation on a corrupted queue succeeded");
        assert!(
            matches!(e, Error::InvalidInput { .. } | Error::Backend { .. }),
            "{e}"
        );
        assert!(!e.is_retryable(), "{e}");
    }
    let got = s
        .receive("bystander", ReceiveOptions::default())
        .await
        .unwrap();
    assert_eq!(&got[0].body[..], b"b");
    s.destroy().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queues_survive_a_server_restart_and_long_polls_resubscribe() {
    let dir = std::env::temp_dir().join(format!("redis-queue-restart-{}", prefix()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut server = RedisServer::spawn(&[
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--dir",
        dir.to_str().unwrap(),
    ])
    .unwrap();
    let (p, clock) = (prefix(), ManualClock::at_fixed_start());
    let s = store(server.url(), &p, &clock).await;
    s.create_queue("jobs", QueueConfig::default())
        .await
        .unwrap();
    s.send("jobs", SendMessage::new("before")).await.unwrap();
    let wait = ReceiveOptions {
        wait: Duration::from_secs(20),
        ..ReceiveOptions::default()
    };
    // Subscribe the listener, then take the server away.
    assert_eq!(s.receive("jobs", wait).await.unwrap().len(), 1);
    server.stop();
    let err = s.send("jobs", SendMessage::new("x")).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    let err = s.receive("jobs", wait).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    let err = s
        .receive("jobs", ReceiveOptions::default())
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    let err = s.counts("jobs").await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    server.restart().unwrap();
    // The same store recovers (bounded retries while it reconnects).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match s.counts("jobs").await {
            Ok(c) => {
                assert_eq!(c.in_flight, 1, "the AOF kept the in-flight message");
                break;
            }
            Err(e) if e.is_retryable() && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("store did not recover: {e}"),
        }
    }
    // A long poll after the restart is woken by another instance's send.
    let other = store(server.url(), &p, &clock).await;
    let s2 = s.clone();
    let poll = tokio::spawn(async move { s2.receive("jobs", wait).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    other.send("jobs", SendMessage::new("after")).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(15), poll)
        .await
        .expect("the long poll was not woken after the restart")
        .unwrap()
        .unwrap();
    let bodies: BTreeMap<_, _> = got
        .iter()
        .map(|m| (m.body.clone(), m.receive_count))
        .collect();
    assert_eq!(bodies.len(), 1);
    assert!(bodies.contains_key(&bytes::Bytes::from_static(b"after")));
    s.destroy().await.unwrap();
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
