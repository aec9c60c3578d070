//! FIFO queue cases.
//!
//! What passing proves about a backend:
//! - **It agrees with the reference model** on random sequences over a
//!   FIFO queue (with or without content-based dedup, with or without a
//!   queue delay) next to a standard one: group ordering, group blocking
//!   while a message is in flight or not yet visible, dedup ids repeated
//!   inside and across batches, the 5-minute dedup window crossed exactly
//!   and one millisecond either side, and everything the standard property
//!   covers (see [`super::queue`]).
//! - Messages of one group come in send order; a group is blocked while
//!   one of its messages is in flight and other groups keep flowing; a
//!   nack releases the group.
//! - A dedup id seen within 5 minutes returns the original id and enqueues
//!   nothing — after an ack, after a purge, inside one batch — and is free
//!   again exactly 5 minutes after the first send; content-based dedup uses
//!   the body's SHA-256, an explicit id overrides it.
//! - FIFO sends without a group id (or dedup id, without content-based
//!   dedup) or with a per-message delay are `InvalidInput` and enqueue
//!   nothing, not even a dedup memory.
//! - Without a declared `queue_fifo`, creating a FIFO queue is
//!   `Unsupported`.

use std::sync::Arc;
use std::time::Duration;

use storage_core::queue::content_dedup_id;
use storage_core::validate::{DEDUP_WINDOW, MAX_MESSAGE_ID_FIELD};
use storage_core::{Capabilities, Clock, QueueConfig, QueueStoreExt, SendMessage};

use super::queue::{bodies, ensure_counts, ensure_kind, property, receive, receive_one, Flavor};
use crate::case::{req, Case, CaseResult, Requirement, Tier};
use crate::harness::Harness;
use crate::model::queue::ErrorKind;
use crate::runner::with_fixture;
use crate::{ensure, ensure_eq};

/// The FIFO cases.
pub fn cases() -> Vec<Case> {
    vec![
        case(
            "random_fifo_operation_sequences_match_the_reference_model",
            req::fifo,
            |h| Box::pin(property(h, Flavor::Fifo)),
        ),
        case(
            "messages_of_one_group_are_delivered_in_send_order",
            req::fifo,
            |h| Box::pin(group_order(h)),
        ),
        case(
            "a_group_is_blocked_while_a_message_is_in_flight_and_other_groups_flow",
            req::fifo,
            |h| Box::pin(group_blocking(h)),
        ),
        case(
            "a_group_with_any_message_in_flight_delivers_nothing_even_if_an_earlier_one_is_visible",
            req::fifo,
            |h| Box::pin(any_in_flight_blocks(h)),
        ),
        case(
            "a_nack_releases_the_group_with_the_same_message_first",
            req::fifo,
            |h| Box::pin(nack_releases(h)),
        ),
        case(
            "duplicate_dedup_id_within_five_minutes_returns_the_original_id_and_enqueues_nothing",
            req::fifo,
            |h| Box::pin(dedup_window(h)),
        ),
        case(
            "duplicates_inside_one_batch_return_the_first_id",
            req::fifo,
            |h| Box::pin(dedup_in_batch(h)),
        ),
        case(
            "content_based_dedup_uses_the_body_hash_and_an_explicit_id_overrides_it",
            req::fifo,
            |h| Box::pin(content_dedup(h)),
        ),
        case(
            "fifo_refuses_per_message_delay_and_missing_group_or_dedup_ids",
            req::fifo,
            |h| Box::pin(bad_fifo_sends(h)),
        ),
        case(
            "dedup_memory_survives_purge_and_export_import",
            req::fifo,
            |h| Box::pin(dedup_survives(h)),
        ),
        case(
            "undeclared_fifo_returns_unsupported",
            req::lacks_fifo,
            |h| Box::pin(undeclared(h)),
        ),
    ]
}

fn case(
    name: &'static str,
    requires: fn(&Capabilities) -> Requirement,
    run: fn(Arc<dyn Harness>) -> crate::case::CaseFuture,
) -> Case {
    Case {
        name,
        tier: Tier::Fifo,
        requires,
        run,
    }
}

fn fifo(visibility_secs: u64) -> QueueConfig {
    QueueConfig {
        visibility_timeout: Duration::from_secs(visibility_secs),
        ..QueueConfig::fifo()
    }
}

/// A FIFO message whose dedup id is its body.
fn msg(body: &str, group: &str) -> SendMessage {
    SendMessage::new(body.to_owned()).group(group).dedup(body)
}

async fn group_order(h: Arc<dyn Harness>) -> CaseResult {
    with_fixture(&h, |f| async move {
        let q = f.queue()?;
        q.create_queue("f", fifo(30)).await?;
        q.send_batch(
            "f",
            vec![
                msg("a1", "a"),
                msg("b1", "b"),
                msg("a2", "a"),
                msg("a3", "a"),
            ],
        )
        .await?;
        q.send("f", msg("b2", "b")).await?;
        // One at a time, acking each: exactly send order.
        let mut order = Vec::new();
        for _ in 0..5 {
            let m = receive_one(&*q, "f", "one at a time").await?;
            ensure!(
                m.group_id.is_some(),
                "delivered FIFO message has no group id"
            );
            order.push(String::from_utf8_lossy(&m.body).into_owned());
            q.ack("f", &m.receipt).await?;
        }
        ensure_eq!(order, vec!["a1", "b1", "a2", "a3", "b2"]);
        // In batches: whatever comes together, each group stays in order.
        q.send_batch(
            "f",
            vec![
                msg("c1", "c"),
                msg("d1", "d"),
                msg("c2", "c"),
                msg("c3", "c"),
                msg("d2", "d"),
            ],
        )
        .await?;
        let mut seen = Vec::new();
        for _ in 0..10 {
            let got = receive(&*q, "f", 10).await?;
            if got.is_empty() {
                break;
            }
            for m in &got {
                q.ack("f", &m.receipt).await?;
            }
            seen.extend(bodies(&got));
        }
        let of = |g: char| -> Vec<String> {
            seen.iter().filter(|b| b.starts_with(g)).cloned().collect()
        };
        ensure_eq!(
            of('c'),
            vec!["c1", "c2", "c3"],
            "group c in send order (all deliveries: {seen:?})"
        );
        ensure_eq!(
            of('d'),
            vec!["d1", "d2"],
            "group d in send order (all deliveries: {seen:?})"
        );
        Ok(())
    })
    .await
}

async fn group_blocking(h: Arc<dyn Harness>) -> CaseResult {
    with_fixture(&h, |f| async move {
        let q = f.queue()?;
        q.create_queue("f", fifo(30)).await?;
        q.send_batch("f", vec![msg("a1", "a"), msg("a2", "a"), msg("b1", "b")])
            .await?;
        let a1 = receive_one(&*q, "f", "head of group a").await?;
        ensure_eq!(&a1.body[..], b"a1");
        ensure_eq!(a1.group_id.as_deref(), Some("a"));
        let got = receive(&*q, "f", 10).await?;
        ensure_eq!(
            bodies(&got),
            vec!["b1"],
            "group a is blocked, group b flows"
        );
        ensure_counts(
            &*q,
            "f",
            (1, 2, 0),
            "a2 waits behind a1 and counts as visible",
        )
        .await?;
        for m in &got {
            q.ack("f", &m.receipt).await?;
        }
        f.clock
            .advance(Duration::from_secs(30) - Duration::from_millis(1));
        ensure!(
            receive(&*q, "f", 10).await?.is_empty(),
            "a2 delivered while a1 is in flight"
        );
        f.clock.advance(Duration::from_millis(1));
        let again = receive_one(&*q, "f", "a1 after its visibility ended").await?;
        ensure_eq!(&again.body[..], b"a1", "a1 comes back before a2");
        ensure_eq!(again.receive_count, 2);
        q.ack("f", &again.receipt).await?;
        let a2 = receive_one(&*q, "f", "a2 once a1 is acked").await?;
        ensure_eq!(&a2.body[..], b"a2");
        Ok(())
    })
    .await
}

async fn any_in_flight_blocks(h: Arc<dyn Harness>) -> CaseResult {
    with_fixture(&h, |f| async move {
        let q = f.queue()?;
        q.create_queue("f", fifo(5)).await?;
        q.send_batch("f", vec![msg("a1", "a"), msg("a2", "a"), msg("b1", "b")])
            .await?;
        let mut got = Vec::new();
        for _ in 0..3 {
            got.extend(receive(&*q, "f", 10).await?);
        }
        // a2 can be in flight next to a visible a1 only when both came in
        // one call; a backend that never does that cannot reach this state.
        let Some(a2) = got.iter().find(|m| &m.body[..] == b"a2") else {
            return Ok(());
        };
        // a2 stays hidden 1 s longer than a1.
        q.change_visibility("f", &a2.receipt, Duration::from_secs(6))
            .await?;
        f.clock.advance(Duration::from_secs(5));
        let now = receive(&*q, "f", 10).await?;
        ensure_eq!(
            bodies(&now),
            vec!["b1"],
            "a1 is visible again but a2 of its group is in flight"
        );
        f.clock.advance(Duration::from_secs(1));
        let later = receive(&*q, "f", 1).await?;
        ensure_eq!(
            bodies(&later),
            vec!["a1"],
            "once a2's visibility ends, a1 comes first"
        );
        Ok(())
    })
    .await
}

async fn nack_releases(h: Arc<dyn Harness>) -> CaseResult {
    with_fixture(&h, |f| async move {
        let q = f.queue()?;
        q.create_queue("f", fifo(300)).await?;
        q.send_batch("f", vec![msg("a1", "a"), msg("a2", "a")])
            .await?;
        let a1 = receive_one(&*q, "f", "a1").await?;
        ensure!(
            receive(&*q, "f", 10).await?.is_empty(),
            "a2 delivered while a1 is in flight"
        );
        q.change_visibility("f", &a1.receipt, Duration::ZERO)
            .await?;
        let again = receive_one(&*q, "f", "after the nack").await?;
        ensure_eq!(
            &again.body[..],
            b"a1",
            "the nacked message is delivered again first"
        );
        ensure_eq!(again.receive_count, 2);
        Ok(())
    })
    .await
}

async fn dedup_window(h: Arc<dyn Harness>) -> CaseResult {
    with_fixture(&h, |f| async move {
        let q = f.queue()?;
        q.create_queue("f", fifo(30)).await?;
        let first = q
            .send("f", SendMessage::new("one").group("g").dedup("d"))
            .await?;
        let dup = q
            .send("f", SendMessage::new("two").group("h").dedup("d"))
            .await?;
        ensure_eq!(dup, first, "a duplicate returns the original id");
        ensure_counts(&*q, "f", (1, 0, 0), "after a duplicate").await?;
        let m = receive_one(&*q, "f", "the original").await?;
        ensure_eq!(&m.body[..], b"one");
        ensure_eq!(m.dedup_id.as_deref(), Some("d"));
        q.ack("f", &m.receipt).await?;
        f.clock.advance(DEDUP_WINDOW - Duration::from_millis(1));
        let late = q
            .send("f", SendMessage::new("three").group("g").dedup("d"))
            .await?;
        ensure_eq!(
            late,
            first,
            "1 ms before the window ends, even after an ack"
        );
        ensure_counts(&*q, "f", (0, 0, 0), "duplicates enqueue nothing").await?;
        f.clock.advance(Duration::from_millis(1));
        let fresh = q
            .send("f", SendMessage::new("four").group("g").dedup("d"))
            .await?;
        ensure!(
            fresh != first,
            "5 minutes after the first send the id is free again"
        );
        ensure_counts(&*q, "f", (1, 0, 0), "after the window").await?;
        let again = q
            .send("f", SendMessage::new("five").group("g").dedup("d"))
            .await?;
        ensure_eq!(again, fresh, "the new send opened a new window");
        ensure_eq!(bodies(&receive(&*q, "f", 10).await?), vec!["four"]);
        Ok(())
    })
    .await
}

async fn dedup_in_batch(h: Arc<dyn Harness>) -> CaseResult {
    with_fixture(&h, |f| async move {
        let q = f.queue()?;
        q.create_queue("f", fifo(30)).await?;
        let ids = q
            .send_batch(
                "f",
                vec![
                    SendMessage::new("x").group("g1").dedup("d1"),
                    SendMessage::new("y").group("g1").dedup("d1"),
                    SendMessage::new("z").group("g2").dedup("d2"),
                    SendMessage::new("w").group("g3").dedup("d2"),
                ],
            )
            .await?;
        ensure_eq!(ids.len(), 4);
        ensure_eq!(ids[1], ids[0], "second d1 returns the first id");
        ensure_eq!(ids[3], ids[2], "second d2 returns the first id");
        ensure!(ids[0] != ids[2], "distinct dedup ids got one id");
        ensure_counts(&*q, "f", (2, 0, 0), "after the batch").await?;
        let again = q
            .send_batch(
                "f",
                vec![
                    SendMessage::new("v").group("g4").dedup("d2"),
                    SendMessage::new("u").group("g4").dedup("d3"),
                ],
            )
            .await?;
        ensure_eq!(again[0], ids[2], "a duplicate across batches");
        ensure!(!ids.contains(&again[1]), "a new dedup id got an old id");
        ensure_eq!(bodies(&receive(&*q, "f", 10).await?), vec!["x", "z", "u"]);
        Ok(())
    })
    .await
}

async fn content_dedup(h: Arc<dyn Harness>) -> CaseResult {
    with_fixture(&h, |f| async move {
        let q = f.queue()?;
        let cfg = QueueConfig {
            content_based_dedup: true,
            ..fifo(30)
        };
        q.create_queue("f", cfg).await?;
        let same = q.send("f", SendMessage::new("same").group("g")).await?;
        let dup = q.send("f", SendMessage::new("same").group("other")).await?;
        ensure_eq!(dup, same, "an identical body is a duplicate");
        let other = q
            .send("f", SendMessage::new("different").group("g"))
            .await?;
        ensure!(other != same, "a different body is not a duplicate");
        let explicit = q
            .send("f", SendMessage::new("same").group("g").dedup("explicit"))
            .await?;
        ensure!(
            explicit != same,
            "an explicit dedup id overrides the body hash"
        );
        ensure_counts(&*q, "f", (3, 0, 0), "after content-deduplicated sends").await?;
        let got = receive(&*q, "f", 10).await?;
        ensure_eq!(bodies(&got), vec!["same", "different", "same"]);
        ensure_eq!(
            got[0].dedup_id,
            Some(content_dedup_id(b"same")),
            "content dedup id"
        );
        ensure_eq!(got[1].dedup_id, Some(content_dedup_id(b"different")));
        ensure_eq!(got[2].dedup_id.as_deref(), Some("explicit"));
        Ok(())
    })
    .await
}

async fn bad_fifo_sends(h: Arc<dyn Harness>) -> CaseResult {
    with_fixture(&h, |f| async move {
        let q = f.queue()?;
        q.create_queue("f", fifo(30)).await?;
        let inv = ErrorKind::InvalidInput;
        let long = "g".repeat(MAX_MESSAGE_ID_FIELD + 1);
        let cases = [
            (
                "per-message delay",
                msg("a", "g").delayed(Duration::from_secs(1)),
            ),
            (
                "zero per-message delay",
                msg("a", "g").delayed(Duration::ZERO),
            ),
            ("no group id", SendMessage::new("a").dedup("a")),
            ("empty group id", SendMessage::new("a").group("").dedup("a")),
            (
                "group id over 128 chars",
                SendMessage::new("a").group(long.clone()).dedup("a"),
            ),
            (
                "control character in group id",
                SendMessage::new("a").group("g\u{7}").dedup("a"),
            ),
            (
                "no dedup id without content-based dedup",
                SendMessage::new("a").group("g"),
            ),
            ("empty dedup id", SendMessage::new("a").group("g").dedup("")),
            (
                "dedup id over 128 chars",
                SendMessage::new("a").group("g").dedup(long.clone()),
            ),
        ];
        for (what, m) in cases {
            ensure_kind(what, &q.send("f", m).await, inv)?;
        }
        // A bad message sinks its batch, and the good one's dedup id is
        // not remembered.
        let batch = vec![msg("good", "g"), SendMessage::new("bad").dedup("bad")];
        ensure_kind(
            "batch with a message lacking a group",
            &q.send_batch("f", batch).await,
            inv,
        )?;
        ensure_counts(&*q, "f", (0, 0, 0), "after refused sends").await?;
        let id = q.send("f", msg("good", "g")).await?;
        ensure_counts(&*q, "f", (1, 0, 0), "the good message is not a duplicate").await?;
        let max = "g".repeat(MAX_MESSAGE_ID_FIELD);
        let other = q
            .send("f", SendMessage::new("edge").group(max.clone()).dedup(max))
            .await?;
        ensure!(other != id, "128-character ids are accepted");
        Ok(())
    })
    .await
}

async fn dedup_survives(h: Arc<dyn Harness>) -> CaseResult {
    let h2 = h.clone();
    with_fixture(&h, move |f1| async move {
        let q = f1.queue()?;
        q.create_queue("f", fifo(30)).await?;
        let id = q.send("f", msg("m", "g")).await?;
        q.purge("f").await?;
        ensure_counts(&*q, "f", (0, 0, 0), "after purge").await?;
        ensure_eq!(
            q.send("f", msg("m", "g")).await?,
            id,
            "purge keeps dedup memory"
        );
        ensure_counts(&*q, "f", (0, 0, 0), "the duplicate enqueued nothing").await?;
        f1.clock.advance(Duration::from_secs(60));
        let state = q.export_queue("f").await?;
        ensure_eq!(
            state.dedup.len(),
            1,
            "exported dedup memory: {:?}",
            state.dedup
        );
        let now = f1.clock.now();
        with_fixture(&h2, move |f2| async move {
            let q2 = f2.queue()?;
            f2.clock.set(now);
            q2.import_queue("copy", state).await?;
            ensure_eq!(
                q2.send("copy", msg("m", "g")).await?,
                id,
                "imported dedup memory"
            );
            ensure_counts(&*q2, "copy", (0, 0, 0), "the duplicate enqueued nothing").await?;
            // The window still ends 5 minutes after the original send.
            f2.clock.advance(DEDUP_WINDOW - Duration::from_secs(60));
            let fresh = q2.send("copy", msg("m", "g")).await?;
            ensure!(fresh != id, "the imported window did not end on time");
            Ok(())
        })
        .await
    })
    .await
}

async fn undeclared(h: Arc<dyn Harness>) -> CaseResult {
    with_fixture(&h, |f| async move {
        let q = f.queue()?;
        ensure_kind(
            "create_queue(fifo)",
            &q.create_queue("f", QueueConfig::fifo()).await,
            ErrorKind::Unsupported,
        )?;
        let content = QueueConfig {
            content_based_dedup: true,
            ..QueueConfig::fifo()
        };
        let r = q.create_queue("g", content).await;
        ensure_kind(
            "create_queue(fifo, content-based)",
            &r,
            ErrorKind::Unsupported,
        )?;
        ensure_eq!(
            q.list_queues("").await?,
            Vec::<String>::new(),
            "nothing was created"
        );
        // The standard tier still works.
        q.create_queue("s", QueueConfig::default()).await?;
        ensure_counts(&*q, "s", (0, 0, 0), "a standard queue").await?;
        Ok(())
    })
    .await
}
