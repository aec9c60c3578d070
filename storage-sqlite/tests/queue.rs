//! The queue tier on a file: state survives a restart, two stores on one
//! file never hand out the same delivery, long polls wake on a send in
//! this process, a send from another store (as from another process), a
//! clock move and a deletion, and a FIFO backlog behind an in-flight head
//! is not walked.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use storage_core::{
    Clock, Error, ManualClock, QueueConfig, QueueCounts, QueueStore, QueueStoreExt, ReceiveOptions,
    RedrivePolicy, SendMessage,
};
use storage_sqlite::{SqliteConfig, SqliteStore};

async fn open(path: &std::path::Path, clock: &ManualClock) -> SqliteStore {
    SqliteStore::open_with_clock(SqliteConfig::file(path), Arc::new(clock.clone()))
        .await
        .unwrap()
}

fn batch(n: usize) -> ReceiveOptions {
    ReceiveOptions::batch(n)
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn bodies(got: &[storage_core::ReceivedMessage]) -> Vec<String> {
    got.iter()
        .map(|m| String::from_utf8_lossy(&m.body).into_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn queue_state_survives_closing_and_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.sqlite");
    let clock = ManualClock::default();
    let fifo = QueueConfig {
        content_based_dedup: true,
        ..QueueConfig::fifo()
    };
    let (in_flight, fifo_in_flight, dedup_id, std_export, fifo_export) = {
        let s = open(&path, &clock).await;
        s.create_queue("std", QueueConfig::default()).await.unwrap();
        s.create_queue("orders.fifo", fifo.clone()).await.unwrap();
        for b in ["m1", "m2"] {
            s.send("std", SendMessage::new(b).attribute("k", b))
                .await
                .unwrap();
        }
        s.send("std", SendMessage::new("late").delayed(secs(60)))
            .await
            .unwrap();
        let got = s.receive("std", batch(1)).await.unwrap();
        assert_eq!(bodies(&got), ["m1"]);
        let in_flight = got[0].receipt.clone();

        let a1 = s
            .send("orders.fifo", SendMessage::new("a1").group("g"))
            .await
            .unwrap();
        s.send("orders.fifo", SendMessage::new("a2").group("g"))
            .await
            .unwrap();
        let got = s.receive("orders.fifo", batch(1)).await.unwrap();
        assert_eq!(bodies(&got), ["a1"]);
        let std_export = s.export_queue("std").await.unwrap();
        let fifo_export = s.export_queue("orders.fifo").await.unwrap();
        (
            in_flight,
            got[0].receipt.clone(),
            a1,
            std_export,
            fifo_export,
        )
    };
    // Closed; a new store on the same file sees exactly the same state.
    let s = open(&path, &clock).await;
    assert_eq!(s.export_queue("std").await.unwrap(), std_export);
    assert_eq!(s.export_queue("orders.fifo").await.unwrap(), fifo_export);
    assert_eq!(
        s.counts("std").await.unwrap(),
        QueueCounts {
            visible: 1,
            in_flight: 1,
            delayed: 1
        }
    );
    // FIFO dedup memory: the same body again is a duplicate of a1.
    let dup = s
        .send("orders.fifo", SendMessage::new("a1").group("g"))
        .await
        .unwrap();
    assert_eq!(dup, dedup_id);
    // The FIFO group is still blocked by the in-flight a1.
    assert!(s
        .receive("orders.fifo", batch(10))
        .await
        .unwrap()
        .is_empty());
    // Receipts issued before the restart still work.
    s.ack("orders.fifo", &fifo_in_flight).await.unwrap();
    let got = s.receive("orders.fifo", batch(10)).await.unwrap();
    assert_eq!(bodies(&got), ["a2"]);
    s.change_visibility("std", &in_flight, Duration::ZERO)
        .await
        .unwrap();
    // Receive counts carried over: m1 is now on its second delivery.
    let got = s.receive("std", batch(10)).await.unwrap();
    assert_eq!(bodies(&got), ["m1", "m2"]);
    assert_eq!(got[0].receive_count, 2);
    assert_eq!(got[0].attributes["k"], "m1");
    assert_eq!(got[1].receive_count, 1);
    for m in &got {
        s.ack("std", &m.receipt).await.unwrap();
    }
    // The delayed message keeps its delay.
    clock.advance(secs(59));
    assert!(s.receive("std", batch(10)).await.unwrap().is_empty());
    clock.advance(secs(1));
    assert_eq!(
        bodies(&s.receive("std", batch(10)).await.unwrap()),
        ["late"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_received_through_one_store_is_hidden_from_another_until_it_expires() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.sqlite");
    let clock = ManualClock::default();
    let a = open(&path, &clock).await;
    let b = open(&path, &clock).await;
    a.create_queue("jobs", QueueConfig::default())
        .await
        .unwrap();
    // Same config through the other store: a no-op.
    b.create_queue("jobs", QueueConfig::default())
        .await
        .unwrap();
    b.send("jobs", SendMessage::new("x")).await.unwrap();

    let got = a.receive("jobs", batch(10)).await.unwrap();
    assert_eq!(bodies(&got), ["x"]);
    let first = got[0].receipt.clone();
    assert!(b.receive("jobs", batch(10)).await.unwrap().is_empty());
    clock.advance(secs(29));
    assert!(b.receive("jobs", batch(10)).await.unwrap().is_empty());
    clock.advance(secs(1));
    let again = b.receive("jobs", batch(10)).await.unwrap();
    assert_eq!(bodies(&again), ["x"]);
    assert_eq!(again[0].receive_count, 2);
    // The first delivery's receipt went stale in the other store too.
    assert!(matches!(
        a.ack("jobs", &first).await,
        Err(Error::StaleReceipt { .. })
    ));
    a.ack("jobs", &again[0].receipt).await.unwrap();
    assert_eq!(b.counts("jobs").await.unwrap(), QueueCounts::default());
}

#[tokio::test(flavor = "multi_thread")]
async fn competing_consumers_on_two_stores_get_each_message_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.sqlite");
    let clock = ManualClock::default();
    let a = open(&path, &clock).await;
    let b = open(&path, &clock).await;
    a.create_queue("jobs", QueueConfig::default())
        .await
        .unwrap();
    let n = 200;
    for chunk in 0..n / 10 {
        let msgs = (0..10)
            .map(|i| SendMessage::new(format!("{}", chunk * 10 + i)))
            .collect();
        a.send_batch("jobs", msgs).await.unwrap();
    }
    let mut tasks = Vec::new();
    for k in 0..8 {
        let s = if k % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            loop {
                let got = s.receive("jobs", batch(1 + k % 3)).await.unwrap();
                if got.is_empty() {
                    break;
                }
                for m in got {
                    assert_eq!(m.receive_count, 1);
                    s.ack("jobs", &m.receipt).await.unwrap();
                    seen.push(String::from_utf8_lossy(&m.body).into_owned());
                }
            }
            seen
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort_by_key(|s| s.parse::<u32>().unwrap());
    let want: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    assert_eq!(all, want);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_poll_wakes_on_a_send_in_this_process() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::default();
    // A long cross-process poll: only the in-process notification can
    // wake the receive quickly.
    let config = SqliteConfig {
        cross_process_poll: secs(30),
        ..SqliteConfig::file(dir.path().join("q.sqlite"))
    };
    let s = SqliteStore::open_with_clock(config, Arc::new(clock.clone()))
        .await
        .unwrap();
    s.create_queue("jobs", QueueConfig::default())
        .await
        .unwrap();
    let sender = s.clone();
    let send = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        sender.send("jobs", SendMessage::new("hi")).await.unwrap();
    });
    let start = Instant::now();
    let got = s
        .receive(
            "jobs",
            ReceiveOptions {
                wait: secs(10),
                ..batch(1)
            },
        )
        .await
        .unwrap();
    let took = start.elapsed();
    send.await.unwrap();
    assert_eq!(bodies(&got), ["hi"]);
    assert!(took < secs(2), "woke after {took:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_poll_sees_a_send_from_another_store_at_the_next_poll() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.sqlite");
    let clock = ManualClock::default();
    let config = SqliteConfig {
        cross_process_poll: Duration::from_millis(50),
        ..SqliteConfig::file(&path)
    };
    let a = SqliteStore::open_with_clock(config, Arc::new(clock.clone()))
        .await
        .unwrap();
    // `b` stands for another process: it has its own waiters.
    let b = open(&path, &clock).await;
    a.create_queue("jobs", QueueConfig::default())
        .await
        .unwrap();
    let send = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        b.send("jobs", SendMessage::new("remote")).await.unwrap();
    });
    let start = Instant::now();
    let got = a
        .receive(
            "jobs",
            ReceiveOptions {
                wait: secs(10),
                ..batch(1)
            },
        )
        .await
        .unwrap();
    let took = start.elapsed();
    send.await.unwrap();
    assert_eq!(bodies(&got), ["remote"]);
    assert!(took < secs(2), "woke after {took:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_poll_wakes_on_a_clock_move_and_on_deletion() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::default();
    let config = SqliteConfig {
        cross_process_poll: secs(30),
        ..SqliteConfig::file(dir.path().join("q.sqlite"))
    };
    let s = SqliteStore::open_with_clock(config, Arc::new(clock.clone()))
        .await
        .unwrap();
    s.create_queue("jobs", QueueConfig::default())
        .await
        .unwrap();
    s.send("jobs", SendMessage::new("later").delayed(secs(60)))
        .await
        .unwrap();
    let mover = clock.clone();
    let advance = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        mover.advance(secs(60));
    });
    let wait = ReceiveOptions {
        wait: secs(10),
        ..batch(1)
    };
    let start = Instant::now();
    let got = s.receive("jobs", wait).await.unwrap();
    advance.await.unwrap();
    assert_eq!(bodies(&got), ["later"]);
    assert!(
        start.elapsed() < secs(2),
        "woke after {:?}",
        start.elapsed()
    );

    let deleter = s.clone();
    let delete = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(deleter.delete_queue("jobs").await.unwrap());
    });
    let start = Instant::now();
    let r = s.receive("jobs", wait).await;
    delete.await.unwrap();
    assert!(matches!(r, Err(Error::NotFound { .. })), "{r:?}");
    assert!(
        start.elapsed() < secs(2),
        "woke after {:?}",
        start.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn dead_letter_moves_survive_a_restart_and_keep_the_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.sqlite");
    let clock = ManualClock::default();
    let s = open(&path, &clock).await;
    s.create_queue("dlq", QueueConfig::default()).await.unwrap();
    let redriving = QueueConfig {
        redrive: Some(RedrivePolicy {
            max_receives: 1,
            dead_letter_queue: "dlq".into(),
        }),
        ..QueueConfig::default()
    };
    s.create_queue("main", redriving).await.unwrap();
    let id = s
        .send("main", SendMessage::new("poison").attribute("a", "b"))
        .await
        .unwrap();
    let got = s.receive("main", batch(1)).await.unwrap();
    s.change_visibility("main", &got[0].receipt, Duration::ZERO)
        .await
        .unwrap();
    clock.advance(secs(1));
    // The move does not count as a delivery: nothing comes back.
    assert!(s.receive("main", batch(10)).await.unwrap().is_empty());
    drop(s);
    let s = open(&path, &clock).await;
    assert_eq!(s.counts("main").await.unwrap(), QueueCounts::default());
    let moved = s.export_queue("dlq").await.unwrap();
    assert_eq!(moved.messages.len(), 1);
    let m = &moved.messages[0];
    assert_eq!(
        (m.id.clone(), m.receive_count, m.first_received_at),
        (id, 0, None)
    );
    assert_eq!(m.visible_at, clock.now());
    assert_eq!(m.attributes["a"], "b");
    let got = s.receive("dlq", batch(10)).await.unwrap();
    assert_eq!(bodies(&got), ["poison"]);
    assert_eq!(got[0].receive_count, 1);
}

/// Thousands of messages queued behind an in-flight head of one FIFO
/// group: a receive walks groups, not messages, so the blocked group costs
/// one index step and a later group still flows. (The time bound is
/// generous; the plan tests in `src/queue/receive.rs` pin the index use.)
#[tokio::test(flavor = "multi_thread")]
async fn a_fifo_backlog_behind_an_in_flight_head_is_skipped_whole() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::default();
    let s = open(&dir.path().join("q.sqlite"), &clock).await;
    s.create_queue("f.fifo", QueueConfig::fifo()).await.unwrap();
    for chunk in 0..300 {
        let msgs = (0..10)
            .map(|i| {
                let n = chunk * 10 + i;
                SendMessage::new(format!("{n}"))
                    .group("big")
                    .dedup(format!("d{n}"))
            })
            .collect();
        s.send_batch("f.fifo", msgs).await.unwrap();
    }
    s.send(
        "f.fifo",
        SendMessage::new("other").group("small").dedup("o"),
    )
    .await
    .unwrap();
    let got = s.receive("f.fifo", batch(1)).await.unwrap();
    assert_eq!(bodies(&got), ["0"]);
    // "big" is blocked; "small" (sent last) flows at once.
    let got = s.receive("f.fifo", batch(10)).await.unwrap();
    assert_eq!(bodies(&got), ["other"]);
    let start = Instant::now();
    for _ in 0..100 {
        assert!(s.receive("f.fifo", batch(10)).await.unwrap().is_empty());
    }
    let per_receive = start.elapsed() / 100;
    assert!(per_receive < Duration::from_millis(50), "{per_receive:?}");
    // After the visibility timeout the head comes back first, and a
    // batch delivers the group's next messages in order.
    clock.advance(secs(30));
    let got = s.receive("f.fifo", batch(3)).await.unwrap();
    assert_eq!(bodies(&got), ["0", "1", "2"]);
    assert_eq!(got[0].receive_count, 2);
}
