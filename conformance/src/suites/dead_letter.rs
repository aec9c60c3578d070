//! Dead-letter redrive cases.
//!
//! What passing proves about a backend:
//! - **It agrees with the reference model** on random sequences over a
//!   standard queue redriving into a dead-letter queue after 1–3 receives
//!   (the DLQ present, missing, deleted or re-created mid-run, with its own
//!   retention): which receive moves which message, that moved messages do
//!   not count against `max_messages`, that the DLQ delivery count starts
//!   over, that a move keeps id, body, attributes and send time, and that
//!   receipts from before the move are stale.
//! - A message received `max_receives` times moves on the next receive
//!   that would have delivered it, visible at once in the DLQ (regardless
//!   of the DLQ's own delay) and counted from its original send time for
//!   retention.
//! - `receive(max = 1)` still returns a live message in the same call that
//!   moved others.
//! - A missing dead-letter queue means the message is delivered normally.
//! - `max_receives = 0` is `InvalidInput`; without a declared
//!   `queue_dead_letter`, a redrive config is `Unsupported`.

use std::sync::Arc;
use std::time::Duration;

use storage_core::{Capabilities, Clock, QueueConfig, QueueStoreExt, RedrivePolicy, SendMessage};

use super::queue::{bodies, ensure_counts, ensure_kind, property, receive, receive_one, Flavor};
use crate::case::{req, Case, CaseResult, Requirement, Tier};
use crate::harness::Harness;
use crate::model::queue::ErrorKind;
use crate::runner::with_fixture;
use crate::{ensure, ensure_eq};

/// The dead-letter cases.
pub fn cases() -> Vec<Case> {
    vec![
        case(
            "random_redrive_sequences_match_the_reference_model",
            req::dlq,
            |h| Box::pin(property(h, Flavor::DeadLetter)),
        ),
        case(
            "a_message_received_max_receives_times_moves_to_the_dead_letter_queue_on_the_next_receive",
            req::dlq,
            |h| Box::pin(moves_after_max_receives(h)),
        ),
        case(
            "moved_messages_do_not_count_against_max_messages",
            req::dlq,
            |h| Box::pin(moves_do_not_count(h)),
        ),
        case(
            "dead_letter_receive_count_starts_at_one_and_the_move_keeps_send_time",
            req::dlq,
            |h| Box::pin(dlq_counts_restart(h)),
        ),
        case(
            "a_missing_dead_letter_queue_means_the_message_is_delivered_normally",
            req::dlq,
            |h| Box::pin(missing_dlq(h)),
        ),
        case(
            "redrive_with_zero_max_receives_is_invalid_input",
            req::dlq,
            |h| Box::pin(bad_redrive(h)),
        ),
        case(
            "undeclared_dead_letter_returns_unsupported",
            req::lacks_dlq,
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
        tier: Tier::DeadLetter,
        requires,
        run,
    }
}

const VIS: Duration = Duration::from_secs(30);

fn redriving(max_receives: u32, dlq: &str) -> QueueConfig {
    QueueConfig {
        visibility_timeout: VIS,
        redrive: Some(RedrivePolicy {
            max_receives,
            dead_letter_queue: dlq.to_owned(),
        }),
        ..QueueConfig::default()
    }
}

async fn moves_after_max_receives(h: Arc<dyn Harness>) -> CaseResult {
    with_fixture(&h, |f| async move {
        let q = f.queue()?;
        q.create_queue("dead", QueueConfig::default()).await?;
        q.create_queue("src", redriving(2, "dead")).await?;
        let t0 = f.clock.now();
        let id = q
            .send("src", SendMessage::new("poison").attribute("k", "v"))
            .await?;
        let first = receive_one(&*q, "src", "first delivery").await?;
        f.clock.advance(VIS);
        let second = receive_one(&*q, "src", "second delivery").await?;
        ensure_eq!(second.receive_count, 2);
        f.clock.advance(VIS);
        ensure!(
            receive(&*q, "src", 10).await?.is_empty(),
            "a message received max_receives times was delivered again"
        );
        ensure_counts(&*q, "src", (0, 0, 0), "source after the move").await?;
        ensure_counts(&*q, "dead", (1, 0, 0), "dead-letter queue after the move").await?;
        for (what, r) in [("first", &first), ("second", &second)] {
            ensure_kind(
                &format!("{what} receipt on the source"),
                &q.ack("src", &r.receipt).await,
                ErrorKind::StaleReceipt,
            )?;
            ensure_kind(
                &format!("{what} receipt on the dead-letter queue"),
                &q.ack("dead", &r.receipt).await,
                ErrorKind::StaleReceipt,
            )?;
        }
        let moved = receive_one(&*q, "dead", "the moved message").await?;
        ensure_eq!(moved.id, id, "the move keeps the id");
        ensure_eq!(&moved.body[..], b"poison", "the move keeps the body");
        ensure_eq!(
            moved.attributes.get("k").map(String::as_str),
            Some("v"),
            "attributes"
        );
        ensure_eq!(moved.sent_at, t0, "the move keeps the send time");
        q.ack("dead", &moved.receipt).await?;
        ensure_counts(&*q, "dead", (0, 0, 0), "after acking in the DLQ").await?;
        Ok(())
    })
    .await
}

async fn moves_do_not_count(h: Arc<dyn Harness>) -> CaseResult {
    with_fixture(&h, |f| async move {
        let q = f.queue()?;
        q.create_queue("dead", QueueConfig::default()).await?;
        q.create_queue("src", redriving(1, "dead")).await?;
        q.send_batch("src", vec![SendMessage::new("p1"), SendMessage::new("p2")])
            .await?;
        let got = receive(&*q, "src", 2).await?;
        ensure_eq!(bodies(&got), vec!["p1", "p2"]);
        f.clock.advance(VIS);
        // p1 and p2 come first (visible since t0 + 30 s, sent earlier),
        // are moved, and the live message is still returned.
        q.send("src", SendMessage::new("live")).await?;
        let got = receive(&*q, "src", 1).await?;
        ensure_eq!(
            bodies(&got),
            vec!["live"],
            "receive(max = 1) after two moves"
        );
        ensure_counts(&*q, "src", (0, 1, 0), "source").await?;
        ensure_counts(&*q, "dead", (2, 0, 0), "dead-letter queue").await?;
        ensure_eq!(
            bodies(&receive(&*q, "dead", 10).await?),
            vec!["p1", "p2"],
            "moved in pick order"
        );
        Ok(())
    })
    .await
}

async fn dlq_counts_restart(h: Arc<dyn Harness>) -> CaseResult {
    with_fixture(&h, |f| async move {
        let q = f.queue()?;
        let dead_cfg = QueueConfig {
            visibility_timeout: VIS,
            delay: Duration::from_secs(10),
            retention: Duration::from_secs(120),
            ..QueueConfig::default()
        };
        q.create_queue("dead", dead_cfg).await?;
        q.create_queue("src", redriving(1, "dead")).await?;
        let t0 = f.clock.now();
        q.send("src", SendMessage::new("m")).await?;
        receive_one(&*q, "src", "first delivery").await?;
        f.clock.advance(VIS);
        ensure!(
            receive(&*q, "src", 10).await?.is_empty(),
            "delivered past max_receives"
        );
        // Visible at once, despite the DLQ's own delay.
        ensure_counts(&*q, "dead", (1, 0, 0), "right after the move").await?;
        let t1 = f.clock.now();
        let d1 = receive_one(&*q, "dead", "first DLQ delivery").await?;
        ensure_eq!(d1.receive_count, 1, "the move is not a receive");
        ensure_eq!(d1.receipt.receive_count, 1);
        ensure_eq!(d1.first_received_at, t1, "first DLQ delivery time");
        ensure_eq!(d1.sent_at, t0);
        f.clock.advance(VIS);
        let d2 = receive_one(&*q, "dead", "second DLQ delivery").await?;
        ensure_eq!(d2.receive_count, 2);
        ensure_kind(
            "first DLQ receipt",
            &q.ack("dead", &d1.receipt).await,
            ErrorKind::StaleReceipt,
        )?;
        // Retention counts from the original send: t0 + 120 s.
        let until = Duration::from_secs(120) - f.clock.now().saturating_since(t0);
        f.clock.advance(until - Duration::from_millis(1));
        ensure_counts(
            &*q,
            "dead",
            (1, 0, 0),
            "1 ms before retention from the send",
        )
        .await?;
        f.clock.advance(Duration::from_millis(1));
        ensure_counts(
            &*q,
            "dead",
            (0, 0, 0),
            "at retention from the original send",
        )
        .await?;
        Ok(())
    })
    .await
}

async fn missing_dlq(h: Arc<dyn Harness>) -> CaseResult {
    with_fixture(&h, |f| async move {
        let q = f.queue()?;
        q.create_queue("src", redriving(1, "nowhere")).await?;
        q.send("src", SendMessage::new("m")).await?;
        for n in 1..=3u32 {
            let m = receive_one(&*q, "src", "delivery with a missing DLQ").await?;
            ensure_eq!(m.receive_count, n);
            f.clock.advance(VIS);
        }
        // A DLQ deleted later behaves the same; re-created, it takes moves.
        q.create_queue("gone", QueueConfig::default()).await?;
        q.create_queue("src2", redriving(1, "gone")).await?;
        ensure!(q.delete_queue("gone").await?, "delete of the DLQ");
        q.send("src2", SendMessage::new("n")).await?;
        receive_one(&*q, "src2", "first").await?;
        f.clock.advance(VIS);
        let again = receive_one(&*q, "src2", "second, DLQ deleted").await?;
        ensure_eq!(again.receive_count, 2);
        q.create_queue("gone", QueueConfig::default()).await?;
        f.clock.advance(VIS);
        ensure!(
            receive(&*q, "src2", 10).await?.is_empty(),
            "not moved to the re-created DLQ"
        );
        ensure_counts(&*q, "gone", (1, 0, 0), "re-created DLQ").await?;
        Ok(())
    })
    .await
}

async fn bad_redrive(h: Arc<dyn Harness>) -> CaseResult {
    with_fixture(&h, |f| async move {
        let q = f.queue()?;
        q.create_queue("dead", QueueConfig::default()).await?;
        ensure_kind(
            "max_receives 0",
            &q.create_queue("src", redriving(0, "dead")).await,
            ErrorKind::InvalidInput,
        )?;
        ensure_kind(
            "invalid DLQ name",
            &q.create_queue("src", redriving(1, "bad name")).await,
            ErrorKind::InvalidInput,
        )?;
        ensure_eq!(
            q.list_queues("").await?,
            vec!["dead"],
            "nothing was created"
        );
        Ok(())
    })
    .await
}

async fn undeclared(h: Arc<dyn Harness>) -> CaseResult {
    with_fixture(&h, |f| async move {
        let q = f.queue()?;
        q.create_queue("dead", QueueConfig::default()).await?;
        ensure_kind(
            "create_queue(redrive)",
            &q.create_queue("src", redriving(3, "dead")).await,
            ErrorKind::Unsupported,
        )?;
        ensure_eq!(
            q.list_queues("").await?,
            vec!["dead"],
            "nothing was created"
        );
        Ok(())
    })
    .await
}
