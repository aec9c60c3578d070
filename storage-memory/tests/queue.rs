//! Focused tests of the memory backend's queue tier, on a manual clock.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use storage_core::{
    Error, ManualClock, QueueConfig, QueueStore, QueueStoreExt, Receipt, ReceiveOptions,
    RedrivePolicy, SendMessage,
};
use storage_memory::MemoryStore;

const SEC: Duration = Duration::from_secs(1);

fn store() -> (MemoryStore, ManualClock) {
    let clock = ManualClock::default();
    (MemoryStore::with_clock(Arc::new(clock.clone())), clock)
}

fn recv(n: usize) -> ReceiveOptions {
    ReceiveOptions::batch(n)
}

fn bodies(got: &[storage_core::ReceivedMessage]) -> Vec<String> {
    got.iter()
        .map(|m| String::from_utf8(m.body.to_vec()).unwrap())
        .collect()
}

fn fifo_msg(body: &str, group: &str) -> SendMessage {
    SendMessage::new(body.to_owned()).group(group).dedup(body)
}

#[tokio::test]
async fn lifecycle_create_list_delete() {
    let (s, _) = store();
    s.create_queue("b", QueueConfig::default()).await.unwrap();
    s.create_queue("b", QueueConfig::default()).await.unwrap();
    let other = QueueConfig {
        delay: SEC,
        ..QueueConfig::default()
    };
    assert!(matches!(
        s.create_queue("b", other).await,
        Err(Error::AlreadyExists { .. })
    ));
    assert!(matches!(
        s.create_queue("bad name", QueueConfig::default()).await,
        Err(Error::InvalidInput { .. })
    ));
    s.create_queue("a", QueueConfig::default()).await.unwrap();
    s.create_queue("ab", QueueConfig::default()).await.unwrap();
    assert_eq!(s.list_queues("").await.unwrap(), ["a", "ab", "b"]);
    assert_eq!(s.list_queues("a").await.unwrap(), ["a", "ab"]);
    assert_eq!(s.queue_config("a").await.unwrap(), QueueConfig::default());
    assert!(s.delete_queue("a").await.unwrap());
    assert!(!s.delete_queue("a").await.unwrap());
    for r in [
        s.send("a", SendMessage::new("x")).await.map(|_| ()),
        s.receive("a", recv(1)).await.map(|_| ()),
        s.purge("a").await,
        s.counts("a").await.map(|_| ()),
        s.queue_config("a").await.map(|_| ()),
        s.export_queue("a").await.map(|_| ()),
    ] {
        assert!(matches!(r, Err(Error::NotFound { .. })), "{r:?}");
    }
}

#[tokio::test]
async fn visibility_expiry_redelivers_with_fresh_receipt() {
    let (s, clock) = store();
    s.create_queue("q", QueueConfig::default()).await.unwrap();
    let id = s.send("q", SendMessage::new("hi")).await.unwrap();
    let first = s.receive("q", recv(1)).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].id, id);
    assert_eq!(first[0].receive_count, 1);
    assert_eq!(first[0].receipt.receive_count, 1);
    let first_at = first[0].first_received_at;
    assert!(s.receive("q", recv(1)).await.unwrap().is_empty());
    let c = s.counts("q").await.unwrap();
    assert_eq!((c.visible, c.in_flight, c.delayed), (0, 1, 0));

    clock.advance(Duration::from_secs(29));
    assert!(s.receive("q", recv(1)).await.unwrap().is_empty());
    clock.advance(SEC);
    let second = s.receive("q", recv(1)).await.unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].receive_count, 2);
    assert_eq!(second[0].first_received_at, first_at);
    assert_ne!(second[0].receipt, first[0].receipt);

    let old = &first[0].receipt;
    assert!(matches!(
        s.ack("q", old).await,
        Err(Error::StaleReceipt { .. })
    ));
    assert!(matches!(
        s.change_visibility("q", old, Duration::ZERO).await,
        Err(Error::StaleReceipt { .. })
    ));
    // The stale attempts changed nothing: still in flight.
    assert_eq!(s.counts("q").await.unwrap().in_flight, 1);
    s.ack("q", &second[0].receipt).await.unwrap();
    assert!(matches!(
        s.ack("q", &second[0].receipt).await,
        Err(Error::StaleReceipt { .. })
    ));
    assert_eq!(s.counts("q").await.unwrap(), Default::default());
}

#[tokio::test]
async fn receipts_for_unreceived_or_unknown_messages_are_stale() {
    let (s, _) = store();
    s.create_queue("q", QueueConfig::default()).await.unwrap();
    let id = s.send("q", SendMessage::new("x")).await.unwrap();
    let r = Receipt {
        message_id: id,
        receive_count: 0,
    };
    assert!(matches!(
        s.ack("q", &r).await,
        Err(Error::StaleReceipt { .. })
    ));
    let r: Receipt = "1.nope".parse().unwrap();
    assert!(matches!(
        s.ack("q", &r).await,
        Err(Error::StaleReceipt { .. })
    ));
    assert_eq!(s.counts("q").await.unwrap().visible, 1);
}

#[tokio::test]
async fn nack_and_change_visibility() {
    let (s, clock) = store();
    s.create_queue("q", QueueConfig::default()).await.unwrap();
    s.send("q", SendMessage::new("x")).await.unwrap();
    let got = s.receive("q", recv(1)).await.unwrap();
    s.change_visibility("q", &got[0].receipt, Duration::ZERO)
        .await
        .unwrap();
    let again = s.receive("q", recv(1)).await.unwrap();
    assert_eq!(again[0].receive_count, 2);
    s.change_visibility("q", &again[0].receipt, Duration::from_secs(100))
        .await
        .unwrap();
    clock.advance(Duration::from_secs(99));
    assert!(s.receive("q", recv(1)).await.unwrap().is_empty());
    clock.advance(SEC);
    assert_eq!(s.receive("q", recv(1)).await.unwrap().len(), 1);
    assert!(matches!(
        s.change_visibility("q", &again[0].receipt, Duration::from_secs(13 * 3600))
            .await,
        Err(Error::InvalidInput { .. })
    ));
}

#[tokio::test]
async fn zero_visibility_override_does_not_repeat_within_a_call() {
    let (s, _) = store();
    s.create_queue("q", QueueConfig::default()).await.unwrap();
    s.send("q", SendMessage::new("x")).await.unwrap();
    let opts = ReceiveOptions {
        max_messages: 10,
        visibility_timeout: Some(Duration::ZERO),
        wait: Duration::ZERO,
    };
    assert_eq!(s.receive("q", opts).await.unwrap().len(), 1);
    let again = s.receive("q", opts).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].receive_count, 2);
}

#[tokio::test]
async fn delays_and_standard_order() {
    let (s, clock) = store();
    let cfg = QueueConfig {
        delay: Duration::from_secs(10),
        ..QueueConfig::default()
    };
    s.create_queue("q", cfg).await.unwrap();
    s.send("q", SendMessage::new("queue-delay")).await.unwrap();
    s.send("q", SendMessage::new("no-delay").delayed(Duration::ZERO))
        .await
        .unwrap();
    s.send(
        "q",
        SendMessage::new("short").delayed(Duration::from_secs(5)),
    )
    .await
    .unwrap();
    let c = s.counts("q").await.unwrap();
    assert_eq!((c.visible, c.in_flight, c.delayed), (1, 0, 2));
    assert_eq!(
        bodies(&s.receive("q", recv(10)).await.unwrap()),
        ["no-delay"]
    );
    clock.advance(Duration::from_secs(10));
    // Ordered by (visible_at, send order).
    assert_eq!(
        bodies(&s.receive("q", recv(10)).await.unwrap()),
        ["short", "queue-delay"]
    );
    assert!(matches!(
        s.send(
            "q",
            SendMessage::new("x").delayed(Duration::from_secs(16 * 60))
        )
        .await,
        Err(Error::InvalidInput { .. })
    ));
}

/// Keys that arrive out of order (decreasing delays, more runs than the
/// index keeps as lanes, a clock set back, redeliveries interleaved with
/// sends) still come out by (visible-at, send order).
#[tokio::test]
async fn delivery_order_survives_out_of_order_keys_and_a_clock_set_back() {
    let (s, clock) = store();
    s.create_queue("q", QueueConfig::default()).await.unwrap();
    let start = clock.now_for_test();
    for d in [50, 40, 30, 20, 10, 0] {
        let m = SendMessage::new(format!("d{d}")).delayed(Duration::from_secs(d));
        s.send("q", m).await.unwrap();
    }
    s.send("q", SendMessage::new("d0-later")).await.unwrap();
    clock.set(start.saturating_add(Duration::from_secs(25)));
    assert_eq!(
        bodies(&s.receive("q", recv(10)).await.unwrap()),
        ["d0", "d0-later", "d10", "d20"]
    );
    // Back in time: a new message is visible before everything above.
    clock.set(start.saturating_add(Duration::from_secs(5)));
    s.send("q", SendMessage::new("early")).await.unwrap();
    let got = s.receive("q", recv(1)).await.unwrap();
    assert_eq!(bodies(&got), ["early"]);
    // Nacked at 5 s: visible again before the delayed ones.
    s.change_visibility("q", &got[0].receipt, Duration::ZERO)
        .await
        .unwrap();
    clock.set(start.saturating_add(Duration::from_secs(60)));
    // The first four were hidden for 30 s at 25 s: all due at 55 s, so
    // in send order among themselves.
    assert_eq!(
        bodies(&s.receive("q", recv(10)).await.unwrap()),
        ["early", "d30", "d40", "d50", "d20", "d10", "d0", "d0-later"]
    );
}

#[tokio::test]
async fn receive_respects_max_and_send_order() {
    let (s, _) = store();
    s.create_queue("q", QueueConfig::default()).await.unwrap();
    let batch: Vec<_> = (0..10).map(|i| SendMessage::new(format!("m{i}"))).collect();
    let ids = s.send_batch("q", batch).await.unwrap();
    assert_eq!(ids.len(), 10);
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), 10);
    let got = s.receive("q", recv(3)).await.unwrap();
    assert_eq!(bodies(&got), ["m0", "m1", "m2"]);
    let got = s.receive("q", recv(10)).await.unwrap();
    assert_eq!(got.len(), 7);
    assert_eq!(got[0].id, ids[3]);
}

#[tokio::test]
async fn retention_drops_messages() {
    let (s, clock) = store();
    let cfg = QueueConfig {
        retention: Duration::from_secs(60),
        ..QueueConfig::default()
    };
    s.create_queue("q", cfg).await.unwrap();
    s.send("q", SendMessage::new("old")).await.unwrap();
    let got = s.receive("q", recv(1)).await.unwrap();
    clock.advance(Duration::from_secs(30));
    s.send("q", SendMessage::new("young")).await.unwrap();
    clock.advance(Duration::from_secs(30));
    assert_eq!(s.counts("q").await.unwrap().visible, 1);
    assert!(matches!(
        s.ack("q", &got[0].receipt).await,
        Err(Error::StaleReceipt { .. })
    ));
    assert_eq!(bodies(&s.receive("q", recv(10)).await.unwrap()), ["young"]);
    clock.advance(Duration::from_secs(30));
    assert_eq!(s.counts("q").await.unwrap(), Default::default());
    assert!(s.export_queue("q").await.unwrap().messages.is_empty());
}

fn redrive(max: u32, dlq: &str) -> QueueConfig {
    QueueConfig {
        redrive: Some(RedrivePolicy {
            max_receives: max,
            dead_letter_queue: dlq.to_owned(),
        }),
        ..QueueConfig::default()
    }
}

/// Dead-letter moves (a map lookup made under a queue lock) beside
/// creates and deletes (the map's write lock) and calls that hold the
/// map's read lock throughout: nobody waits forever and nothing is lost.
///
/// The tasks run on a runtime of their own thread: a deadlock blocks its
/// workers, so this thread gives up after a generous bound (a guard
/// against a hang, not a timing assertion) and fails.
#[test]
fn dead_letter_moves_beside_creates_and_deletes_do_not_deadlock() {
    const N: usize = 2_000;
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let _ = done.send(rt.block_on(dead_letter_churn(N)));
    });
    let counts = finished
        .recv_timeout(Duration::from_secs(120))
        .expect("deadlock: the tasks did not finish");
    assert_eq!(counts, (N as u64, 0));
}

/// Moves `n` messages to a dead-letter queue while other tasks create and
/// delete queues and cycle messages; returns the dead-letter queue's
/// visible count and the source queue's message count.
async fn dead_letter_churn(n: usize) -> (u64, u64) {
    let (s, _) = store();
    let s = Arc::new(s);
    s.create_queue("dlq", QueueConfig::default()).await.unwrap();
    s.create_queue("q", redrive(1, "dlq")).await.unwrap();
    s.create_queue("plain", QueueConfig::default())
        .await
        .unwrap();
    let again = ReceiveOptions {
        visibility_timeout: Some(Duration::ZERO),
        ..recv(1)
    };
    let mover = {
        let s = s.clone();
        tokio::spawn(async move {
            for i in 0..n {
                s.send("q", SendMessage::new(format!("m{i}")))
                    .await
                    .unwrap();
                // Delivered once (and visible again at once), then moved.
                assert_eq!(s.receive("q", again).await.unwrap().len(), 1);
                assert!(s.receive("q", again).await.unwrap().is_empty());
            }
        })
    };
    let churner = {
        let s = s.clone();
        tokio::spawn(async move {
            for i in 0..n {
                let name = format!("other-{}", i % 8);
                s.create_queue(&name, QueueConfig::default()).await.unwrap();
                assert!(s.delete_queue(&name).await.unwrap());
            }
        })
    };
    let worker = {
        let s = s.clone();
        tokio::spawn(async move {
            for _ in 0..n {
                s.send("plain", SendMessage::new("x")).await.unwrap();
                for m in s.receive("plain", recv(10)).await.unwrap() {
                    s.ack("plain", &m.receipt).await.unwrap();
                }
            }
        })
    };
    tokio::try_join!(mover, churner, worker).unwrap();
    let q = s.counts("q").await.unwrap();
    (
        s.counts("dlq").await.unwrap().visible,
        q.visible + q.in_flight + q.delayed,
    )
}

#[tokio::test]
async fn dead_letter_after_max_receives() {
    let (s, clock) = store();
    s.create_queue("dlq", QueueConfig::default()).await.unwrap();
    s.create_queue("q", redrive(2, "dlq")).await.unwrap();
    let id = s
        .send("q", SendMessage::new("poison").attribute("k", "v"))
        .await
        .unwrap();
    for n in 1..=2 {
        let got = s.receive("q", recv(1)).await.unwrap();
        assert_eq!(got[0].id, id);
        assert_eq!(got[0].receive_count, n);
        clock.advance(Duration::from_secs(30));
    }
    let sent_at = s.export_queue("q").await.unwrap().messages[0].sent_at;
    s.send("q", SendMessage::new("fine")).await.unwrap();
    // Third pick: moved, and the move does not use up the batch of one.
    let got = s.receive("q", recv(1)).await.unwrap();
    assert_eq!(bodies(&got), ["fine"]);
    assert_eq!(s.counts("q").await.unwrap().visible, 0);
    let dead = s.export_queue("dlq").await.unwrap();
    assert_eq!(dead.messages.len(), 1);
    let m = &dead.messages[0];
    assert_eq!(m.id, id);
    assert_eq!(m.receive_count, 0);
    assert_eq!(m.first_received_at, None);
    assert_eq!(m.sent_at, sent_at);
    assert_eq!(m.attributes.get("k").map(String::as_str), Some("v"));
    let got = s.receive("dlq", recv(1)).await.unwrap();
    assert_eq!(got[0].id, id);
    assert_eq!(got[0].receive_count, 1);
}

#[tokio::test]
async fn missing_dead_letter_queue_means_normal_delivery() {
    let (s, clock) = store();
    s.create_queue("q", redrive(1, "nowhere")).await.unwrap();
    s.send("q", SendMessage::new("x")).await.unwrap();
    s.receive("q", recv(1)).await.unwrap();
    clock.advance(Duration::from_secs(30));
    let got = s.receive("q", recv(1)).await.unwrap();
    assert_eq!(got[0].receive_count, 2);
}

#[tokio::test]
async fn fifo_group_order_and_blocking() {
    let (s, _) = store();
    s.create_queue("f", QueueConfig::fifo()).await.unwrap();
    s.send_batch(
        "f",
        vec![
            fifo_msg("a1", "A"),
            fifo_msg("b1", "B"),
            fifo_msg("a2", "A"),
            fifo_msg("a3", "A"),
            fifo_msg("b2", "B"),
        ],
    )
    .await
    .unwrap();
    // Send order across groups; consecutive messages of one group may come
    // together.
    let got = s.receive("f", recv(2)).await.unwrap();
    assert_eq!(bodies(&got), ["a1", "b1"]);
    // Both groups have a message in flight: nothing more.
    assert!(s.receive("f", recv(10)).await.unwrap().is_empty());
    assert_eq!(s.counts("f").await.unwrap().visible, 3);
    s.ack("f", &got[1].receipt).await.unwrap();
    assert_eq!(bodies(&s.receive("f", recv(10)).await.unwrap()), ["b2"]);
    s.ack("f", &got[0].receipt).await.unwrap();
    let got = s.receive("f", recv(10)).await.unwrap();
    assert_eq!(bodies(&got), ["a2", "a3"]);
    // Nacking the earlier one keeps the group blocked by the later one.
    s.change_visibility("f", &got[0].receipt, Duration::ZERO)
        .await
        .unwrap();
    assert!(s.receive("f", recv(10)).await.unwrap().is_empty());
    s.ack("f", &got[1].receipt).await.unwrap();
    let again = s.receive("f", recv(10)).await.unwrap();
    assert_eq!(bodies(&again), ["a2"]);
    assert_eq!(again[0].receive_count, 2);
}

#[tokio::test]
async fn fifo_visibility_expiry_redelivers_in_order() {
    let (s, clock) = store();
    s.create_queue("f", QueueConfig::fifo()).await.unwrap();
    for b in ["1", "2", "3"] {
        s.send("f", fifo_msg(b, "g")).await.unwrap();
    }
    assert_eq!(bodies(&s.receive("f", recv(1)).await.unwrap()), ["1"]);
    clock.advance(Duration::from_secs(30));
    let got = s.receive("f", recv(10)).await.unwrap();
    assert_eq!(bodies(&got), ["1", "2", "3"]);
    assert_eq!(got[0].receive_count, 2);
}

#[tokio::test]
async fn fifo_rejects_bad_messages_as_a_whole() {
    let (s, _) = store();
    s.create_queue("f", QueueConfig::fifo()).await.unwrap();
    let r = s
        .send_batch(
            "f",
            vec![fifo_msg("ok", "g"), SendMessage::new("no group").dedup("d")],
        )
        .await;
    assert!(matches!(r, Err(Error::InvalidInput { .. })));
    assert_eq!(s.counts("f").await.unwrap().visible, 0);
    assert!(matches!(
        s.send_batch("f", vec![]).await,
        Err(Error::InvalidInput { .. })
    ));
    let eleven: Vec<_> = (0..11).map(|i| fifo_msg(&i.to_string(), "g")).collect();
    assert!(matches!(
        s.send_batch("f", eleven).await,
        Err(Error::InvalidInput { .. })
    ));
}

#[tokio::test]
async fn fifo_dedup_window() {
    let (s, clock) = store();
    s.create_queue("f", QueueConfig::fifo()).await.unwrap();
    let ids = s
        .send_batch(
            "f",
            vec![
                SendMessage::new("x").group("g").dedup("d"),
                SendMessage::new("y").group("g").dedup("d"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(ids[0], ids[1]);
    assert_eq!(s.counts("f").await.unwrap().visible, 1);
    // Survives ack and purge.
    let got = s.receive("f", recv(1)).await.unwrap();
    s.ack("f", &got[0].receipt).await.unwrap();
    s.purge("f").await.unwrap();
    clock.advance(Duration::from_secs(299));
    let again = s
        .send("f", SendMessage::new("z").group("g").dedup("d"))
        .await
        .unwrap();
    assert_eq!(again, ids[0]);
    assert_eq!(s.counts("f").await.unwrap().visible, 0);
    // Measured from the first send, not refreshed by duplicates.
    clock.advance(SEC);
    let fresh = s
        .send("f", SendMessage::new("z").group("g").dedup("d"))
        .await
        .unwrap();
    assert_ne!(fresh, ids[0]);
    assert_eq!(s.counts("f").await.unwrap().visible, 1);
}

#[tokio::test]
async fn content_based_dedup() {
    let (s, _) = store();
    let cfg = QueueConfig {
        content_based_dedup: true,
        ..QueueConfig::fifo()
    };
    s.create_queue("f", cfg).await.unwrap();
    let a = s
        .send("f", SendMessage::new("same").group("g"))
        .await
        .unwrap();
    let b = s
        .send("f", SendMessage::new("same").group("h"))
        .await
        .unwrap();
    let c = s
        .send("f", SendMessage::new("other").group("g"))
        .await
        .unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
    let got = s.receive("f", recv(10)).await.unwrap();
    assert_eq!(
        got[0].dedup_id.as_deref(),
        Some(storage_core::queue::content_dedup_id(b"same").as_str())
    );
}

#[tokio::test]
async fn purge_keeps_sequences_and_clears_messages() {
    let (s, _) = store();
    s.create_queue("q", QueueConfig::default()).await.unwrap();
    s.send("q", SendMessage::new("x")).await.unwrap();
    let got = s.receive("q", recv(1)).await.unwrap();
    s.purge("q").await.unwrap();
    assert_eq!(s.counts("q").await.unwrap(), Default::default());
    assert!(matches!(
        s.ack("q", &got[0].receipt).await,
        Err(Error::StaleReceipt { .. })
    ));
    s.send("q", SendMessage::new("y")).await.unwrap();
    let state = s.export_queue("q").await.unwrap();
    assert_eq!(state.messages[0].sequence, 2);
    assert_eq!(state.next_sequence, 3);
}

#[tokio::test]
async fn export_import_round_trip_keeps_receipts() {
    let (s, clock) = store();
    s.create_queue("f", QueueConfig::fifo()).await.unwrap();
    for b in ["a1", "b1", "a2"] {
        let g = &b[..1];
        s.send("f", fifo_msg(b, g)).await.unwrap();
    }
    let got = s.receive("f", recv(1)).await.unwrap();
    let state = s.export_queue("f").await.unwrap();
    assert_eq!(state.messages.len(), 3);
    assert_eq!(state.dedup.len(), 3);

    let (t, clock2) = store();
    clock2.set(clock.now_for_test());
    t.import_queue("copy", state.clone()).await.unwrap();
    assert_eq!(t.export_queue("copy").await.unwrap(), state);
    // Group A is still blocked in the copy; the old receipt works there.
    assert_eq!(bodies(&t.receive("copy", recv(10)).await.unwrap()), ["b1"]);
    t.ack("copy", &got[0].receipt).await.unwrap();
    assert_eq!(bodies(&t.receive("copy", recv(10)).await.unwrap()), ["a2"]);
    // Dedup memory travelled too.
    let dup = t.send("copy", fifo_msg("a1", "A")).await.unwrap();
    assert_eq!(dup, got[0].id);

    // Import over an existing queue replaces it.
    s.import_queue("f", state.clone()).await.unwrap();
    assert_eq!(s.export_queue("f").await.unwrap(), state);
    // An inconsistent state is refused.
    let mut bad = state.clone();
    bad.next_sequence = 1;
    assert!(matches!(
        s.import_queue("f", bad).await,
        Err(Error::InvalidInput { .. })
    ));
}

trait NowForTest {
    fn now_for_test(&self) -> storage_core::Timestamp;
}
impl NowForTest for ManualClock {
    fn now_for_test(&self) -> storage_core::Timestamp {
        storage_core::Clock::now(self)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_is_woken_by_a_send() {
    let (s, _) = store();
    s.create_queue("q", QueueConfig::default()).await.unwrap();
    let s2 = s.clone();
    let sender = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        s2.send("q", SendMessage::new("late")).await.unwrap();
    });
    let start = Instant::now();
    let got = s
        .receive(
            "q",
            ReceiveOptions {
                wait: Duration::from_secs(20),
                ..recv(1)
            },
        )
        .await
        .unwrap();
    assert_eq!(bodies(&got), ["late"]);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    sender.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_is_woken_by_a_clock_advance() {
    let (s, clock) = store();
    s.create_queue("q", QueueConfig::default()).await.unwrap();
    s.send(
        "q",
        SendMessage::new("later").delayed(Duration::from_secs(60)),
    )
    .await
    .unwrap();
    let advancer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        clock.advance(Duration::from_secs(59));
        tokio::time::sleep(Duration::from_millis(20)).await;
        clock.advance(SEC);
    });
    let start = Instant::now();
    let got = s
        .receive(
            "q",
            ReceiveOptions {
                wait: Duration::from_secs(20),
                ..recv(1)
            },
        )
        .await
        .unwrap();
    assert_eq!(bodies(&got), ["later"]);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    advancer.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_is_woken_by_a_fifo_ack() {
    let (s, _) = store();
    s.create_queue("f", QueueConfig::fifo()).await.unwrap();
    s.send("f", fifo_msg("1", "g")).await.unwrap();
    s.send("f", fifo_msg("2", "g")).await.unwrap();
    let got = s.receive("f", recv(1)).await.unwrap();
    let s2 = s.clone();
    let receipt = got[0].receipt.clone();
    let acker = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        s2.ack("f", &receipt).await.unwrap();
    });
    let start = Instant::now();
    let got = s
        .receive(
            "f",
            ReceiveOptions {
                wait: Duration::from_secs(20),
                ..recv(1)
            },
        )
        .await
        .unwrap();
    assert_eq!(bodies(&got), ["2"]);
    assert!(start.elapsed() < Duration::from_secs(5));
    acker.await.unwrap();
}

#[tokio::test]
async fn long_poll_times_out_empty() {
    let (s, _) = store();
    s.create_queue("q", QueueConfig::default()).await.unwrap();
    let start = Instant::now();
    let got = s
        .receive(
            "q",
            ReceiveOptions {
                wait: Duration::from_millis(150),
                ..recv(1)
            },
        )
        .await
        .unwrap();
    assert!(got.is_empty());
    assert!(start.elapsed() >= Duration::from_millis(140));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_on_deleted_queue_is_not_found() {
    let (s, _) = store();
    s.create_queue("q", QueueConfig::default()).await.unwrap();
    let s2 = s.clone();
    let deleter = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        s2.delete_queue("q").await.unwrap();
    });
    let start = Instant::now();
    let r = s
        .receive(
            "q",
            ReceiveOptions {
                wait: Duration::from_secs(20),
                ..recv(1)
            },
        )
        .await;
    assert!(matches!(r, Err(Error::NotFound { .. })), "{r:?}");
    assert!(start.elapsed() < Duration::from_secs(5));
    deleter.await.unwrap();
}

#[tokio::test]
async fn receive_validates_options() {
    let (s, _) = store();
    s.create_queue("q", QueueConfig::default()).await.unwrap();
    for o in [
        recv(0),
        recv(11),
        ReceiveOptions {
            wait: Duration::from_secs(21),
            ..recv(1)
        },
        ReceiveOptions {
            visibility_timeout: Some(Duration::from_secs(13 * 3600)),
            ..recv(1)
        },
    ] {
        assert!(matches!(
            s.receive("q", o).await,
            Err(Error::InvalidInput { .. })
        ));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_consumers_lose_and_duplicate_nothing() {
    let (s, _) = store();
    s.create_queue("q", QueueConfig::default()).await.unwrap();
    const N: usize = 2_000;
    for chunk in 0..N / 10 {
        let batch = (0..10)
            .map(|i| SendMessage::new(format!("{}", chunk * 10 + i)))
            .collect();
        s.send_batch("q", batch).await.unwrap();
    }
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            loop {
                let got = s.receive("q", recv(10)).await.unwrap();
                if got.is_empty() {
                    break;
                }
                for m in got {
                    s.ack("q", &m.receipt).await.unwrap();
                    seen.push(String::from_utf8(m.body.to_vec()).unwrap());
                }
            }
            seen
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    assert_eq!(all.len(), N);
    assert_eq!(all.iter().collect::<BTreeSet<_>>().len(), N);
}

#[tokio::test]
async fn many_hidden_messages_do_not_slow_receive() {
    // Smoke test of the index: 20k in flight, then one visible message.
    let (s, _) = store();
    s.create_queue("q", QueueConfig::default()).await.unwrap();
    for _ in 0..2_000 {
        let batch = (0..10).map(|_| SendMessage::new("x")).collect();
        s.send_batch("q", batch).await.unwrap();
    }
    while !s.receive("q", recv(10)).await.unwrap().is_empty() {}
    s.send("q", SendMessage::new("last")).await.unwrap();
    let start = Instant::now();
    for _ in 0..1000 {
        assert!(s.receive("q", recv(10)).await.unwrap().len() <= 1);
    }
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn invalid_names_are_invalid_input() {
    let (s, _) = store();
    assert!(matches!(
        s.delete_queue("bad name").await,
        Err(Error::InvalidInput { .. })
    ));
    let r: Receipt = "1.x".parse().unwrap();
    assert!(matches!(
        s.ack("bad name", &r).await,
        Err(Error::InvalidInput { .. })
    ));
    assert!(matches!(
        s.receive("", recv(1)).await,
        Err(Error::InvalidInput { .. })
    ));
}

#[tokio::test]
async fn self_redrive_delivers_normally() {
    let (s, clock) = store();
    s.create_queue("q", redrive(1, "q")).await.unwrap();
    s.send("q", SendMessage::new("x")).await.unwrap();
    s.receive("q", recv(1)).await.unwrap();
    clock.advance(Duration::from_secs(30));
    let got = s.receive("q", recv(1)).await.unwrap();
    assert_eq!(got[0].receive_count, 2);
}

#[tokio::test]
async fn fifo_dead_letter_keeps_group_and_unblocks_the_rest() {
    let (s, clock) = store();
    s.create_queue("fdlq", QueueConfig::fifo()).await.unwrap();
    let cfg = QueueConfig {
        redrive: Some(RedrivePolicy {
            max_receives: 1,
            dead_letter_queue: "fdlq".into(),
        }),
        ..QueueConfig::fifo()
    };
    s.create_queue("f", cfg).await.unwrap();
    s.send("f", fifo_msg("1", "g")).await.unwrap();
    s.send("f", fifo_msg("2", "g")).await.unwrap();
    assert_eq!(bodies(&s.receive("f", recv(1)).await.unwrap()), ["1"]);
    clock.advance(Duration::from_secs(30));
    // "1" moves; "2" is delivered in the same call.
    assert_eq!(bodies(&s.receive("f", recv(1)).await.unwrap()), ["2"]);
    let dead = s.receive("fdlq", recv(10)).await.unwrap();
    assert_eq!(bodies(&dead), ["1"]);
    assert_eq!(dead[0].group_id.as_deref(), Some("g"));
    assert_eq!(dead[0].receive_count, 1);
}

#[tokio::test]
async fn fifo_queue_delay_blocks_the_group_behind_it() {
    let (s, clock) = store();
    let cfg = QueueConfig {
        delay: Duration::from_secs(5),
        ..QueueConfig::fifo()
    };
    s.create_queue("f", cfg).await.unwrap();
    s.send("f", fifo_msg("1", "g")).await.unwrap();
    clock.advance(Duration::from_secs(3));
    s.send("f", fifo_msg("2", "g")).await.unwrap();
    s.send("f", fifo_msg("3", "h")).await.unwrap();
    let c = s.counts("f").await.unwrap();
    assert_eq!((c.visible, c.delayed), (0, 3));
    clock.advance(Duration::from_secs(2));
    assert_eq!(bodies(&s.receive("f", recv(10)).await.unwrap()), ["1"]);
    clock.advance(Duration::from_secs(3));
    // "2" is visible but its group has "1" in flight.
    assert_eq!(bodies(&s.receive("f", recv(10)).await.unwrap()), ["3"]);
}
