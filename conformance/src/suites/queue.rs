//! Queue tier cases (standard queues).
//!
//! What passing proves about a backend:
//! - **It agrees with the reference model** ([`crate::model::queue`]) on
//!   random operation sequences: sends and batches with delays and
//!   attributes, receives with visibility overrides, acks and visibility
//!   changes with fresh, stale, forged and wrong-queue receipts, clock jumps
//!   to exactly (and one millisecond around) every visibility, delay and
//!   retention boundary, purge, queue deletion and re-creation, and an
//!   export/import round trip — every result and, after every step, every
//!   queue's counts.
//! - **Lifecycle**: create is idempotent for an identical config and
//!   `AlreadyExists` otherwise; `list_queues` filters by prefix and sorts;
//!   `queue_config` returns what was created; `delete_queue` reports
//!   existence and drops messages; every operation on a missing queue is
//!   `NotFound`.
//! - **Receipts**: each delivery issues a fresh receipt; a stale receipt
//!   (earlier delivery, acked, purged, expired) is `StaleReceipt` and
//!   changes nothing; visibility 0 is a nack.
//! - **Time**: per-message and queue delays, exact counts, retention —
//!   all by the injected clock, never by sleeping.
//! - **At-least-once under concurrency**: 4 producers and 4 consumers over
//!   the real store lose nothing and never see a message twice while it is
//!   hidden.
//! - **Long polls** return early when a message is sent or when the
//!   manual clock passes a delay.
//! - **Snapshots**: `export_queue` → `import_queue` into another store
//!   reproduces counts, deliveries and receipt validity.
//! - **Bad input** is `InvalidInput` and enqueues nothing.
//! - **Capabilities**: without a declared queue tier every method answers
//!   `Unsupported`.
//!
//! The FIFO and dead-letter suites ([`super::fifo`], [`super::dead_letter`])
//! reuse the helpers and the property driver defined here.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Debug;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use proptest::prelude::*;
use proptest::sample::Index;
use storage_core::validate::{MAX_VISIBILITY_TIMEOUT, MAX_WAIT};
use storage_core::{
    Capabilities, Clock, Error, ManualClock, MessageId, QueueConfig, QueueCounts, QueueState,
    QueueStore, QueueStoreExt, Receipt, ReceiveOptions, ReceivedMessage, RedrivePolicy,
    SendMessage,
};

use crate::case::{req, Case, CaseResult, Failure, Requirement, Tier};
use crate::harness::{Fixture, Harness};
use crate::model::queue::{ErrorKind, ModelMessage, QueueModel, SendOutcome};
use crate::runner::with_fixture;
use crate::{ensure, ensure_eq};

/// The standard-queue cases.
pub fn cases() -> Vec<Case> {
    vec![
        case(
            "random_operation_sequences_match_the_reference_model",
            req::queue,
            |h| Box::pin(property(h, Flavor::Standard)),
        ),
        case(
            "creating_a_queue_twice_with_the_same_config_is_a_no_op",
            req::queue,
            |h| Box::pin(create_is_idempotent(h)),
        ),
        case(
            "creating_an_existing_queue_with_a_different_config_is_already_exists",
            req::queue,
            |h| Box::pin(create_conflict(h)),
        ),
        case(
            "list_queues_returns_the_names_with_the_prefix_sorted",
            req::queue,
            |h| Box::pin(list_queues(h)),
        ),
        case(
            "queue_config_returns_the_config_the_queue_was_created_with",
            req::queue,
            |h| Box::pin(queue_config_roundtrip(h)),
        ),
        case(
            "delete_queue_reports_whether_the_queue_existed_and_drops_its_messages",
            req::queue,
            |h| Box::pin(delete_queue(h)),
        ),
        case(
            "every_operation_on_a_missing_queue_is_not_found",
            req::queue,
            |h| Box::pin(missing_queue(h)),
        ),
        case(
            "stale_receipt_is_rejected_after_redelivery_and_changes_nothing",
            req::queue,
            |h| Box::pin(stale_receipt(h)),
        ),
        case("each_delivery_issues_a_fresh_receipt", req::queue, |h| {
            Box::pin(fresh_receipts(h))
        }),
        case(
            "receive_count_and_first_received_at_track_deliveries",
            req::queue,
            |h| Box::pin(receive_count(h)),
        ),
        case(
            "visibility_zero_is_a_nack_and_change_visibility_hides_for_exactly_the_timeout",
            req::queue,
            |h| Box::pin(nack_and_extend(h)),
        ),
        case(
            "ack_deletes_the_message_and_a_second_ack_is_stale",
            req::queue,
            |h| Box::pin(ack_twice(h)),
        ),
        case(
            "message_and_queue_delays_hide_messages_until_due_with_exact_counts",
            req::queue,
            |h| Box::pin(delays(h)),
        ),
        case(
            "receive_orders_messages_by_visible_time_then_send_order",
            req::queue,
            |h| Box::pin(receive_order(h)),
        ),
        case(
            "send_batch_returns_distinct_ids_in_message_order",
            req::queue,
            |h| Box::pin(batch_ids(h)),
        ),
        case(
            "messages_older_than_the_retention_period_disappear",
            req::queue,
            |h| Box::pin(retention(h)),
        ),
        case(
            "purge_removes_every_message_and_invalidates_receipts",
            req::queue,
            |h| Box::pin(purge(h)),
        ),
        case(
            "concurrent_producers_and_consumers_lose_no_message_and_never_deliver_a_hidden_one",
            req::queue,
            |h| Box::pin(concurrent(h)),
        ),
        case(
            "long_poll_returns_soon_after_another_task_sends",
            long_poll_notify,
            |h| Box::pin(long_poll_send(h)),
        ),
        case(
            "long_poll_returns_when_the_clock_passes_a_delay",
            req::queue,
            |h| Box::pin(long_poll_clock(h)),
        ),
        case(
            "export_then_import_into_another_store_reproduces_counts_deliveries_and_receipts",
            req::queue,
            |h| Box::pin(export_import(h)),
        ),
        case(
            "send_batch_of_zero_or_eleven_messages_is_invalid_input_and_sends_nothing",
            req::queue,
            |h| Box::pin(bad_batch(h)),
        ),
        case(
            "oversize_message_is_invalid_input_and_the_limit_itself_is_accepted",
            req::queue,
            |h| Box::pin(oversize(h)),
        ),
        case(
            "standard_queue_refuses_group_and_dedup_ids",
            req::queue,
            |h| Box::pin(standard_refuses_fifo_fields(h)),
        ),
        case(
            "malformed_receipt_does_not_parse_and_an_unknown_receipt_is_stale",
            req::queue,
            |h| Box::pin(malformed_receipt(h)),
        ),
        case(
            "receive_options_out_of_range_are_invalid_input",
            req::queue,
            |h| Box::pin(bad_receive_options(h)),
        ),
        case(
            "change_visibility_beyond_twelve_hours_is_invalid_input_and_changes_nothing",
            req::queue,
            |h| Box::pin(bad_change_visibility(h)),
        ),
        case("invalid_queue_names_are_invalid_input", req::queue, |h| {
            Box::pin(bad_names(h))
        }),
        case(
            "invalid_queue_configs_are_invalid_input_and_create_nothing",
            req::queue,
            |h| Box::pin(bad_configs(h)),
        ),
        case(
            "undeclared_queue_tier_returns_unsupported_for_every_method",
            req::lacks_queue,
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
        tier: Tier::Queue,
        requires,
        run,
    }
}

/// Long polls woken by notification declared.
fn long_poll_notify(c: &Capabilities) -> Requirement {
    if c.queue && c.queue_long_poll_notify {
        Requirement::Run
    } else {
        Requirement::Unsupported("backend declares no notified long polls".into())
    }
}

// ---------------------------------------------------------------------------
// Helpers shared with the FIFO and dead-letter suites.

/// A config with the given visibility timeout, defaults otherwise.
pub(crate) fn config_with_visibility(secs: u64) -> QueueConfig {
    QueueConfig {
        visibility_timeout: Duration::from_secs(secs),
        ..QueueConfig::default()
    }
}

/// Receives up to `max` messages without waiting.
pub(crate) async fn receive(
    q: &dyn QueueStore,
    queue: &str,
    max: usize,
) -> Result<Vec<ReceivedMessage>, Failure> {
    Ok(q.receive(queue, ReceiveOptions::batch(max)).await?)
}

/// The bodies of received messages, as text.
pub(crate) fn bodies(msgs: &[ReceivedMessage]) -> Vec<String> {
    msgs.iter()
        .map(|m| String::from_utf8_lossy(&m.body).into_owned())
        .collect()
}

/// Fails unless the queue's counts are exactly (visible, in flight, delayed).
pub(crate) async fn ensure_counts(
    q: &dyn QueueStore,
    queue: &str,
    (visible, in_flight, delayed): (u64, u64, u64),
    when: &str,
) -> CaseResult {
    let got = q.counts(queue).await?;
    ensure_eq!(
        got,
        QueueCounts {
            visible,
            in_flight,
            delayed
        },
        "counts of {queue:?} {when}"
    );
    Ok(())
}

/// Fails unless `r` is an error of `kind`.
pub(crate) fn ensure_kind<T: Debug>(
    what: &str,
    r: &storage_core::Result<T>,
    kind: ErrorKind,
) -> CaseResult {
    match r {
        Err(e) if ErrorKind::of(e) == Some(kind) => Ok(()),
        other => Err(Failure(format!("{what}: expected {kind:?}, got {other:?}"))),
    }
}

/// Fails unless `r` is an error of one of `kinds`.
pub(crate) fn ensure_kind_in<T: Debug>(
    what: &str,
    r: &storage_core::Result<T>,
    kinds: &[ErrorKind],
) -> CaseResult {
    match r {
        Err(e) if ErrorKind::of(e).is_some_and(|k| kinds.contains(&k)) => Ok(()),
        other => Err(Failure(format!(
            "{what}: expected one of {kinds:?}, got {other:?}"
        ))),
    }
}

/// Receives exactly one message and returns it.
pub(crate) async fn receive_one(
    q: &dyn QueueStore,
    queue: &str,
    what: &str,
) -> Result<ReceivedMessage, Failure> {
    let mut got = receive(q, queue, 1).await?;
    ensure_eq!(
        got.len(),
        1,
        "{what}: receive from {queue:?} returned {:?}",
        bodies(&got)
    );
    got.pop()
        .ok_or_else(|| Failure(format!("{what}: no message")))
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

// ---------------------------------------------------------------------------
// Lifecycle.

async fn create_is_idempotent(h: Arc<dyn Harness>) -> CaseResult {
    with_fixture(&h, |f| async move {
        let q = f.queue()?;
        let cfg = config_with_visibility(45);
        q.create_queue("jobs", cfg.clone()).await?;
        q.send("jobs", SendMessage::new("kept")).await?;
        q.create_queue("jobs", cfg.clone()).await?;
        ensure_eq!(q.queue_config("jobs").await?, cfg, "config after re-create");
        ensure_counts(&*q, "jobs", (1, 0, 0), "after an idempotent re-create").await?;
        ensure_eq!(q.list_queues("").await?, vec!["jobs".to_owned()]);
        Ok(())
    })
    .await
}

async fn create_conflict(h: Arc<dyn Harness>) -> CaseResult {
    with_fixture(&h, |f| async move {
        let q = f.queue()?;
        let cfg = config_with_visibility(45);
        q.create_queue("jobs", cfg.clone()).await?;
        q.send("jobs", SendMessage::new("kept")).await?;
        for other in [
            config_with_visibility(46),
            QueueConfig {
                retention: secs(3600),
                ..cfg.clone()
            },
            QueueConfig {
                max_message_size: 1000,
                ..cfg.clone()
            },
            QueueConfig {
                delay: secs(1),
                ..cfg.clone()
            },
        ] {
            let r = q.create_queue("jobs", other.clone()).await;
            ensure_kind(
                &format!("create with {other:?}"),
                &r,
                ErrorKind::AlreadyExists,
            )?;
        }
        ensure_eq!(
            q.queue_config("jobs").await?,
            cfg,
            "config after refused create"
        );
        ensure_counts(&*q, "jobs", (1, 0, 0), "after refused creates").await?;
        Ok(())
    })
    .await
}

async fn list_queues(h: Arc<dyn Harness>) -> CaseResult {
    with_fixture(&h, |f| async move {
        let q = f.queue()?;
        ensure_eq!(
            q.list_queues("").await?,
            Vec::<String>::new(),
            "a fresh store"
        );
        for name in [
            "orders-b", "jobs", "orders-a", "ordersx", "orders-c", "order",
        ] {
            q.create_queue(name, QueueConfig::default()).await?;
        }
        ensure_eq!(
            q.list_queues("orders-").await?,
            vec!["orders-a", "orders-b", "orders-c"]
        );
        ensure_eq!(
            q.list_queues("order").await?,
            vec!["order", "orders-a", "orders-b", "orders-c", "ordersx"]
        );
        ensure_eq!(
            q.list_queues("").await?,
            vec!["jobs", "order", "orders-a", "orders-b", "orders-c", "ordersx"]
        );
        ensure_eq!(q.list_queues("zzz").await?, Vec::<String>::new());
        ensure!(
            q.delete_queue("orders-b").await?,
            "delete of an existing queue"
        );
        ensure_eq!(
            q.list_queues("orders-").await?,
            vec!["orders-a", "orders-c"]
        );
        Ok(())
    })
    .await
}

async fn queue_config_roundtrip(h: Arc<dyn Harness>) -> CaseResult {
    with_fixture(&h, |f| async move {
        let q = f.queue()?;
        let cfg = QueueConfig {
            visibility_timeout: secs(45),
            delay: secs(3),
            retention: secs(3600),
            max_message_size: 1000,
            ..QueueConfig::default()
        };
        q.create_queue("custom", cfg.clone()).await?;
        q.create_queue("plain", QueueConfig::default()).await?;
        ensure_eq!(q.queue_config("custom").await?, cfg);
        ensure_eq!(q.queue_config("plain").await?, QueueConfig::default());
        Ok(())
    })
    .await
}

async fn delete_queue(h: Arc<dyn Harness>) -> CaseResult {
    with_fixture(&h, |f| async move {
        let q = f.queue()?;
        q.create_queue("gone", QueueConfig::default()).await?;
        q.create_queue("stays", QueueConfig::default()).await?;
        q.send("gone", SendMessage::new("a")).await?;
        q.send("stays", SendMessage::new("b")).await?;
        let r = receive_one(&*q, "gone", "before delete").await?;
        ensure!(q.delete_queue("gone").await?, "first delete reports true");
        ensure!(
            !q.delete_queue("gone").await?,
            "second delete reports false"
        );
        ensure_kind(
            "queue_config after delete",
            &q.queue_config("gone").await,
            ErrorKind::NotFound,
        )?;
        ensure_kind(
            "counts after delete",
            &q.counts("gone").await,
            ErrorKind::NotFound,
        )?;
        ensure_eq!(q.list_queues("").await?, vec!["stays"]);
        ensure_counts(&*q, "stays", (1, 0, 0), "of the other queue").await?;
        // Re-created, it starts empty and the old receipt means nothing.
        q.create_queue("gone", QueueConfig::default()).await?;
        ensure_counts(&*q, "gone", (0, 0, 0), "after re-create").await?;
        ensure!(
            receive(&*q, "gone", 10).await?.is_empty(),
            "re-created queue has messages"
        );
        ensure_kind(
            "ack of a pre-delete receipt",
            &q.ack("gone", &r.receipt).await,
            ErrorKind::StaleReceipt,
        )?;
        Ok(())
    })
    .await
}

async fn missing_queue(h: Arc<dyn Harness>) -> CaseResult {
    with_fixture(&h, |f| async move {
        let q = f.queue()?;
        let nf = ErrorKind::NotFound;
        let rc: Receipt = Receipt {
            message_id: MessageId::new("m"),
            receive_count: 1,
        };
        ensure_kind("queue_config", &q.queue_config("nope").await, nf)?;
        ensure_kind("send", &q.send("nope", SendMessage::new("x")).await, nf)?;
        ensure_kind(
            "send_batch",
            &q.send_batch("nope", vec![SendMessage::new("x"), SendMessage::new("y")])
                .await,
            nf,
        )?;
        ensure_kind(
            "receive",
            &q.receive("nope", ReceiveOptions::batch(10)).await,
            nf,
        )?;
        ensure_kind("ack", &q.ack("nope", &rc).await, nf)?;
        ensure_kind(
            "change_visibility",
            &q.change_visibility("nope", &rc, secs(1)).await,
            nf,
        )?;
        ensure_kind("purge", &q.purge("nope").await, nf)?;
        ensure_kind("counts", &q.counts("nope").await, nf)?;
        ensure_kind("export_queue", &q.export_queue("nope").await, nf)?;
        ensure!(
            !q.delete_queue("nope").await?,
            "delete_queue of a missing queue is false"
        );
        ensure_eq!(
            q.list_queues("").await?,
            Vec::<String>::new(),
            "nothing was created"
        );
        Ok(())
    })
    .await
}

// ---------------------------------------------------------------------------
// Receipts and visibility.

async fn stale_receipt(h: Arc<dyn Harness>) -> CaseResult {
    with_fixture(&h, |f| async move {
        let q = f.queue()?;
        q.create_queue("q", config_with_visibility(30)).await?;
        let id = q.send("q", SendMessage::new("m")).await?;
        let first = receive_one(&*q, "q", "first delivery").await?;
        f.clock.advance(secs(30));
        let second = receive_one(&*q, "q", "redelivery after the timeout").await?;
        ensure_eq!(second.id, id);
        ensure_eq!(second.receive_count, 2);
        let stale = &first.receipt;
        ensure_kind(
            "ack with the first receipt",
            &q.ack("q", stale).await,
            ErrorKind::StaleReceipt,
        )?;
        ensure_kind(
            "nack with the first receipt",
            &q.change_visibility("q", stale, Duration::ZERO).await,
            ErrorKind::StaleReceipt,
        )?;
        ensure_kind(
            "extend with the first receipt",
            &q.change_visibility("q", stale, secs(600)).await,
            ErrorKind::StaleReceipt,
        )?;
        // Nothing changed: still in flight until exactly 30 s after the
        // second delivery.
        ensure_counts(&*q, "q", (0, 1, 0), "after stale calls").await?;
        f.clock.advance(secs(30) - ms(1));
        ensure!(
            receive(&*q, "q", 10).await?.is_empty(),
            "stale nack made the message visible"
        );
        f.clock.advance(ms(1));
        ensure_counts(
            &*q,
            "q",
            (1, 0, 0),
            "when the second delivery's visibility ends",
        )
        .await?;
        // The latest receipt still works even after its visibility ended.
        q.ack("q", &second.receipt).await?;
        ensure_counts(&*q, "q", (0, 0, 0), "after the ack").await?;
        Ok(())
    })
    .await
}

async fn fresh_receipts(h: Arc<dyn Harness>) -> CaseResult {
    with_fixture(&h, |f| async move {
        let q = f.queue()?;
        q.create_queue("q", config_with_visibility(10)).await?;
        let id = q.send("q", SendMessage::new("m")).await?;
        let mut seen = HashSet::new();
        for n in 1..=3u32 {
            let m = receive_one(&*q, "q", "delivery").await?;
            ensure_eq!(m.id, id);
            ensure_eq!(m.receipt.message_id, id, "receipt names the message");
            ensure_eq!(m.receipt.receive_count, n, "receipt names the delivery");
            ensure_eq!(m.receive_count, n);
            let text = m.receipt.to_string();
            ensure_eq!(
                text.parse::<Receipt>().ok(),
                Some(m.receipt.clone()),
                "receipt {text:?} round-trips through its string form"
            );
            ensure!(
                seen.insert(m.receipt.clone()),
                "delivery {n} reused receipt {:?}",
                m.receipt
            );
            f.clock.advance(secs(10));
        }
        Ok(())
    })
    .await
}

async fn receive_count(h: Arc<dyn Harness>) -> CaseResult {
    with_fixture(&h, |f| async move {
        let q = f.queue()?;
        q.create_queue("q", config_with_visibility(30)).await?;
        let t0 = f.clock.now();
        q.send("q", SendMessage::new("m").attribute("k", "v"))
            .await?;
        f.clock.advance(secs(5));
        let t1 = f.clock.now();
        let a = receive_one(&*q, "q", "first").await?;
        ensure_eq!(a.receive_count, 1);
        ensure_eq!(a.sent_at, t0, "sent_at");
        ensure_eq!(
            a.first_received_at,
            t1,
            "first_received_at at the first delivery"
        );
        ensure_eq!(
            a.attributes,
            BTreeMap::from([("k".to_owned(), "v".to_owned())])
        );
        ensure_eq!((a.group_id.clone(), a.dedup_id.clone()), (None, None));
        f.clock.advance(secs(30));
        let b = receive_one(&*q, "q", "second").await?;
        ensure_eq!(b.receive_count, 2);
        ensure_eq!(b.sent_at, t0);
        ensure_eq!(
            b.first_received_at,
            t1,
            "first_received_at keeps the first delivery"
        );
        q.change_visibility("q", &b.receipt, Duration::ZERO).await?;
        let c = receive_one(&*q, "q", "after a nack").await?;
        ensure_eq!(c.receive_count, 3);
        ensure_eq!(c.first_received_at, t1);
        Ok(())
    })
    .await
}

async fn nack_and_extend(h: Arc<dyn Harness>) -> CaseResult {
    with_fixture(&h, |f| async move {
        let q = f.queue()?;
        q.create_queue("q", config_with_visibility(30)).await?;
        q.send("q", SendMessage::new("m")).await?;
        let a = receive_one(&*q, "q", "first").await?;
        ensure_counts(&*q, "q", (0, 1, 0), "while in flight").await?;
        q.change_visibility("q", &a.receipt, Duration::ZERO).await?;
        ensure_counts(&*q, "q", (1, 0, 0), "after a nack").await?;
        let b = receive_one(&*q, "q", "after the nack").await?;
        ensure_eq!(b.receive_count, 2);
        ensure!(
            b.receipt != a.receipt,
            "nack then receive reused the receipt"
        );
        q.change_visibility("q", &b.receipt, secs(100)).await?;
        f.clock.advance(secs(100) - ms(1));
        ensure_counts(&*q, "q", (0, 1, 0), "1 ms before the new timeout").await?;
        ensure!(
            receive(&*q, "q", 1).await?.is_empty(),
            "visible before the new timeout"
        );
        f.clock.advance(ms(1));
        ensure_counts(&*q, "q", (1, 0, 0), "at the new timeout").await?;
        // A receipt whose visibility ran out but was not redelivered can
        // still hide the message again.
        q.change_visibility("q", &b.receipt, secs(5)).await?;
        ensure_counts(&*q, "q", (0, 1, 0), "hidden again with the latest receipt").await?;
        // A receive-time override wins over the queue's timeout.
        f.clock.advance(secs(5));
        let c = q
            .receive(
                "q",
                ReceiveOptions {
                    visibility_timeout: Some(secs(2)),
                    ..ReceiveOptions::default()
                },
            )
            .await?;
        ensure_eq!(c.len(), 1, "receive with an override");
        f.clock.advance(secs(2) - ms(1));
        ensure_counts(&*q, "q", (0, 1, 0), "1 ms before the override ends").await?;
        f.clock.advance(ms(1));
        ensure_counts(&*q, "q", (1, 0, 0), "when the override ends").await?;
        Ok(())
    })
    .await
}

async fn ack_twice(h: Arc<dyn Harness>) -> CaseResult {
    with_fixture(&h, |f| async move {
        let q = f.queue()?;
        q.create_queue("q", QueueConfig::default()).await?;
        q.send_batch("q", vec![SendMessage::new("a"), SendMessage::new("b")])
            .await?;
        let a = receive_one(&*q, "q", "first").await?;
        q.ack("q", &a.receipt).await?;
        ensure_counts(&*q, "q", (1, 0, 0), "after one ack").await?;
        ensure_kind(
            "second ack",
            &q.ack("q", &a.receipt).await,
            ErrorKind::StaleReceipt,
        )?;
        ensure_kind(
            "change_visibility after ack",
            &q.change_visibility("q", &a.receipt, Duration::ZERO).await,
            ErrorKind::StaleReceipt,
        )?;
        ensure_counts(&*q, "q", (1, 0, 0), "after stale calls").await?;
        f.clock.advance(secs(3600));
        ensure_eq!(
            bodies(&receive(&*q, "q", 10).await?),
            vec!["b"],
            "only b is left"
        );
        Ok(())
    })
    .await
}

// ---------------------------------------------------------------------------
// Time: delays, ordering, retention.

async fn delays(h: Arc<dyn Harness>) -> CaseResult {
    with_fixture(&h, |f| async move {
        let q = f.queue()?;
        let cfg = QueueConfig {
            delay: secs(10),
            visibility_timeout: secs(30),
            ..QueueConfig::default()
        };
        q.create_queue("q", cfg).await?;
        q.send("q", SendMessage::new("queue-delay")).await?;
        q.send("q", SendMessage::new("no-delay").delayed(Duration::ZERO))
            .await?;
        q.send("q", SendMessage::new("long-delay").delayed(secs(20)))
            .await?;
        ensure_counts(&*q, "q", (1, 0, 2), "right after sending").await?;
        ensure_eq!(bodies(&receive(&*q, "q", 10).await?), vec!["no-delay"]);
        ensure_counts(&*q, "q", (0, 1, 2), "after the first receive").await?;
        f.clock.advance(secs(10) - ms(1));
        ensure_counts(&*q, "q", (0, 1, 2), "1 ms before the queue delay").await?;
        ensure!(
            receive(&*q, "q", 10).await?.is_empty(),
            "delayed message visible early"
        );
        f.clock.advance(ms(1));
        ensure_counts(&*q, "q", (1, 1, 1), "at the queue delay").await?;
        f.clock.advance(secs(10));
        ensure_counts(&*q, "q", (2, 1, 0), "at the message delay").await?;
        ensure_eq!(
            bodies(&receive(&*q, "q", 10).await?),
            vec!["queue-delay", "long-delay"]
        );
        ensure_counts(&*q, "q", (0, 3, 0), "all in flight").await?;
        // The 15-minute maximum itself is accepted.
        q.send("q", SendMessage::new("max").delayed(secs(15 * 60)))
            .await?;
        ensure_counts(&*q, "q", (0, 3, 1), "with a maximal delay").await?;
        Ok(())
    })
    .await
}

async fn receive_order(h: Arc<dyn Harness>) -> CaseResult {
    with_fixture(&h, |f| async move {
        let q = f.queue()?;
        q.create_queue("q", config_with_visibility(30)).await?;
        q.send("q", SendMessage::new("late").delayed(secs(5)))
            .await?;
        q.send("q", SendMessage::new("first")).await?;
        q.send("q", SendMessage::new("second")).await?;
        q.send("q", SendMessage::new("redelivered")).await?;
        // Take "first" .. "redelivered" out, nack only "redelivered" after 3 s.
        let got = receive(&*q, "q", 3).await?;
        ensure_eq!(bodies(&got), vec!["first", "second", "redelivered"]);
        f.clock.advance(secs(3));
        for m in &got {
            if &m.body[..] == b"redelivered" {
                q.change_visibility("q", &m.receipt, Duration::ZERO).await?;
            } else {
                q.change_visibility("q", &m.receipt, secs(1)).await?;
            }
        }
        // Now: redelivered visible at 3 s, first/second at 4 s, late at 5 s.
        f.clock.advance(secs(2));
        ensure_eq!(
            bodies(&receive(&*q, "q", 10).await?),
            vec!["redelivered", "first", "second", "late"],
            "order by visible time, then send order"
        );
        Ok(())
    })
    .await
}

async fn batch_ids(h: Arc<dyn Harness>) -> CaseResult {
    with_fixture(&h, |f| async move {
        let q = f.queue()?;
        q.create_queue("q", QueueConfig::default()).await?;
        let msgs: Vec<SendMessage> = (0..10).map(|i| SendMessage::new(format!("m{i}"))).collect();
        let ids = q.send_batch("q", msgs).await?;
        ensure_eq!(ids.len(), 10, "one id per message");
        let distinct: HashSet<_> = ids.iter().collect();
        ensure_eq!(distinct.len(), 10, "ids are distinct: {ids:?}");
        let got = receive(&*q, "q", 10).await?;
        ensure_eq!(
            got.iter().map(|m| m.id.clone()).collect::<Vec<_>>(),
            ids,
            "receive returns the batch in send order with the returned ids"
        );
        ensure_eq!(
            bodies(&got),
            (0..10).map(|i| format!("m{i}")).collect::<Vec<_>>()
        );
        let more = q.send("q", SendMessage::new("x")).await?;
        ensure!(!ids.contains(&more), "a later send reused an id");
        Ok(())
    })
    .await
}

async fn retention(h: Arc<dyn Harness>) -> CaseResult {
    with_fixture(&h, |f| async move {
        let q = f.queue()?;
        let cfg = QueueConfig {
            retention: secs(60),
            visibility_timeout: secs(120),
            ..QueueConfig::default()
        };
        q.create_queue("q", cfg).await?;
        q.send("q", SendMessage::new("old")).await?;
        f.clock.advance(secs(30));
        q.send("q", SendMessage::new("young")).await?;
        let old = receive_one(&*q, "q", "old").await?;
        ensure_eq!(&old.body[..], b"old");
        f.clock.advance(secs(30) - ms(1));
        ensure_counts(&*q, "q", (1, 1, 0), "1 ms before the retention ends").await?;
        f.clock.advance(ms(1));
        ensure_counts(
            &*q,
            "q",
            (1, 0, 0),
            "when the retention ends (in flight too)",
        )
        .await?;
        ensure_kind(
            "ack of an expired message",
            &q.ack("q", &old.receipt).await,
            ErrorKind::StaleReceipt,
        )?;
        let state = q.export_queue("q").await?;
        ensure_eq!(
            state.messages.len(),
            1,
            "export holds only the live message"
        );
        f.clock.advance(secs(30));
        ensure_counts(&*q, "q", (0, 0, 0), "after the second message's retention").await?;
        ensure!(
            receive(&*q, "q", 10).await?.is_empty(),
            "expired message delivered"
        );
        Ok(())
    })
    .await
}

async fn purge(h: Arc<dyn Harness>) -> CaseResult {
    with_fixture(&h, |f| async move {
        let q = f.queue()?;
        q.create_queue("q", QueueConfig::default()).await?;
        q.create_queue("other", QueueConfig::default()).await?;
        q.send_batch(
            "q",
            vec![
                SendMessage::new("a"),
                SendMessage::new("b"),
                SendMessage::new("c").delayed(secs(60)),
            ],
        )
        .await?;
        q.send("other", SendMessage::new("o")).await?;
        let a = receive_one(&*q, "q", "before purge").await?;
        ensure_counts(&*q, "q", (1, 1, 1), "before purge").await?;
        q.purge("q").await?;
        ensure_counts(&*q, "q", (0, 0, 0), "after purge").await?;
        ensure_counts(&*q, "other", (1, 0, 0), "of another queue").await?;
        ensure_kind(
            "ack after purge",
            &q.ack("q", &a.receipt).await,
            ErrorKind::StaleReceipt,
        )?;
        f.clock.advance(secs(3600));
        ensure!(
            receive(&*q, "q", 10).await?.is_empty(),
            "purged message came back"
        );
        q.send("q", SendMessage::new("after")).await?;
        ensure_eq!(bodies(&receive(&*q, "q", 10).await?), vec!["after"]);
        Ok(())
    })
    .await
}

// ---------------------------------------------------------------------------
// Concurrency and long polls.

async fn concurrent(h: Arc<dyn Harness>) -> CaseResult {
    const PRODUCERS: usize = 4;
    const CONSUMERS: usize = 4;
    const PER_PRODUCER: usize = 100;
    let total = PRODUCERS * PER_PRODUCER;
    with_fixture(&h, |f| async move {
        let q = f.queue()?;
        // The clock never moves, so no visibility ever expires: every
        // message must be delivered exactly once.
        q.create_queue("work", config_with_visibility(12 * 60 * 60))
            .await?;
        let mut producers = Vec::new();
        for p in 0..PRODUCERS {
            let q = q.clone();
            producers.push(tokio::spawn(async move {
                let mut i = 0;
                while i < PER_PRODUCER {
                    // Alternate single sends and batches of up to 7.
                    let n = if i % 2 == 0 {
                        1
                    } else {
                        7.min(PER_PRODUCER - i)
                    };
                    let msgs: Vec<SendMessage> = (i..i + n)
                        .map(|j| SendMessage::new(format!("p{p}-{j}")))
                        .collect();
                    if n == 1 {
                        for m in msgs {
                            q.send("work", m).await?;
                        }
                    } else {
                        q.send_batch("work", msgs).await?;
                    }
                    i += n;
                }
                Ok::<(), Error>(())
            }));
        }
        let acked = Arc::new(AtomicUsize::new(0));
        let deadline = Instant::now() + secs(60);
        let mut consumers = Vec::new();
        for _ in 0..CONSUMERS {
            let (q, acked) = (q.clone(), acked.clone());
            consumers.push(tokio::spawn(async move {
                let mut seen: Vec<(MessageId, String)> = Vec::new();
                while acked.load(Ordering::SeqCst) < total {
                    if Instant::now() > deadline {
                        return Err(format!(
                            "consumers still waiting after 60 s with {} of {total} acked",
                            acked.load(Ordering::SeqCst)
                        ));
                    }
                    let got = q
                        .receive(
                            "work",
                            ReceiveOptions {
                                max_messages: 10,
                                visibility_timeout: None,
                                wait: ms(50),
                            },
                        )
                        .await
                        .map_err(|e| format!("receive: {e}"))?;
                    if got.is_empty() {
                        tokio::task::yield_now().await;
                    }
                    for m in got {
                        seen.push((m.id.clone(), String::from_utf8_lossy(&m.body).into_owned()));
                        q.ack("work", &m.receipt)
                            .await
                            .map_err(|e| format!("ack of {:?}: {e}", m.receipt))?;
                        acked.fetch_add(1, Ordering::SeqCst);
                    }
                }
                Ok(seen)
            }));
        }
        for p in producers {
            p.await
                .map_err(|e| Failure(format!("producer task failed: {e}")))??;
        }
        let mut deliveries = Vec::new();
        for c in consumers {
            let seen = c
                .await
                .map_err(|e| Failure(format!("consumer task failed: {e}")))?
                .map_err(Failure)?;
            deliveries.extend(seen);
        }
        let mut ids = HashSet::new();
        for (id, body) in &deliveries {
            ensure!(
                ids.insert(id.clone()),
                "message {id} ({body}) was delivered twice while hidden"
            );
        }
        let mut got: Vec<String> = deliveries.into_iter().map(|(_, b)| b).collect();
        got.sort();
        let mut want: Vec<String> = (0..PRODUCERS)
            .flat_map(|p| (0..PER_PRODUCER).map(move |j| format!("p{p}-{j}")))
            .collect();
        want.sort();
        ensure!(
            got == want,
            "acked bodies differ from sent bodies: {} acked, {} sent; missing {:?}",
            got.len(),
            want.len(),
            want.iter()
                .filter(|w| !got.contains(w))
                .take(10)
                .collect::<Vec<_>>()
        );
        ensure_counts(&*q, "work", (0, 0, 0), "after everything was acked").await?;
        Ok(())
    })
    .await
}

async fn long_poll_send(h: Arc<dyn Harness>) -> CaseResult {
    with_fixture(&h, |f| async move {
        let q = f.queue()?;
        q.create_queue("lp", QueueConfig::default()).await?;
        let wait = secs(2);
        let start = Instant::now();
        let waiter = {
            let q = q.clone();
            tokio::spawn(async move {
                let r = q
                    .receive(
                        "lp",
                        ReceiveOptions {
                            max_messages: 1,
                            visibility_timeout: None,
                            wait,
                        },
                    )
                    .await;
                (r, Instant::now())
            })
        };
        tokio::time::sleep(ms(200)).await;
        q.send("lp", SendMessage::new("wake")).await?;
        let sent = Instant::now();
        let (r, done) = waiter
            .await
            .map_err(|e| Failure(format!("waiting task failed: {e}")))?;
        let got = r?;
        ensure_eq!(
            bodies(&got),
            vec!["wake"],
            "the long poll returns the sent message"
        );
        let after_send = done.saturating_duration_since(sent);
        ensure!(
            after_send < ms(750),
            "long poll returned {after_send:?} after the send (wait was {wait:?})"
        );
        ensure!(
            done.duration_since(start) < ms(1500),
            "long poll took {:?} of its {wait:?}",
            done.duration_since(start)
        );
        // With a message already visible, a long poll returns at once.
        q.send("lp", SendMessage::new("ready")).await?;
        let t = Instant::now();
        let got = q
            .receive(
                "lp",
                ReceiveOptions {
                    max_messages: 1,
                    visibility_timeout: None,
                    wait,
                },
            )
            .await?;
        ensure_eq!(bodies(&got), vec!["ready"]);
        ensure!(
            t.elapsed() < ms(500),
            "a ready message took {:?}",
            t.elapsed()
        );
        Ok(())
    })
    .await
}

async fn long_poll_clock(h: Arc<dyn Harness>) -> CaseResult {
    let notify = h.capabilities().queue_long_poll_notify;
    with_fixture(&h, |f| async move {
        let q = f.queue()?;
        let cfg = QueueConfig {
            delay: secs(10),
            ..QueueConfig::default()
        };
        q.create_queue("lp", cfg).await?;
        q.send("lp", SendMessage::new("delayed")).await?;
        let wait = secs(2);
        let start = Instant::now();
        let waiter = {
            let q = q.clone();
            tokio::spawn(async move {
                let r = q
                    .receive(
                        "lp",
                        ReceiveOptions {
                            max_messages: 1,
                            visibility_timeout: None,
                            wait,
                        },
                    )
                    .await;
                (r, Instant::now())
            })
        };
        tokio::time::sleep(ms(200)).await;
        f.clock.advance(secs(10));
        let (r, done) = waiter
            .await
            .map_err(|e| Failure(format!("waiting task failed: {e}")))?;
        let got = r?;
        ensure_eq!(
            bodies(&got),
            vec!["delayed"],
            "the long poll returns the message once the clock passes its delay"
        );
        if notify {
            let took = done.duration_since(start);
            ensure!(
                took < ms(1500),
                "with notified long polls declared, the receive took {took:?} of its {wait:?}"
            );
        }
        Ok(())
    })
    .await
}

// ---------------------------------------------------------------------------
// Snapshots.

async fn export_import(h: Arc<dyn Harness>) -> CaseResult {
    let h2 = h.clone();
    with_fixture(&h, move |f1| async move {
        let src = f1.queue()?;
        let cfg = QueueConfig {
            visibility_timeout: secs(30),
            retention: secs(3600),
            ..QueueConfig::default()
        };
        src.create_queue("src", cfg.clone()).await?;
        src.send("src", SendMessage::new("a").attribute("k", "1"))
            .await?;
        let a1 = receive_one(&*src, "src", "a, first").await?;
        f1.clock.advance(secs(30));
        let a2 = receive_one(&*src, "src", "a, second").await?;
        src.send_batch(
            "src",
            vec![
                SendMessage::new("b"),
                SendMessage::new("c").delayed(secs(20)),
                SendMessage::new("d"),
            ],
        )
        .await?;
        let b1 = receive_one(&*src, "src", "b").await?;
        ensure_eq!(&b1.body[..], b"b");
        let state = src.export_queue("src").await?;
        ensure_eq!(state.config, cfg, "exported config");
        ensure_eq!(state.messages.len(), 4, "exported messages");
        let counts = src.counts("src").await?;
        ensure_eq!(
            counts,
            QueueCounts {
                visible: 1,
                in_flight: 2,
                delayed: 1
            }
        );
        let now = f1.clock.now();

        with_fixture(&h2, move |f2| async move {
            let dst = f2.queue()?;
            f2.clock.set(now);
            ensure_eq!(f2.clock.now(), now, "second fixture's clock");
            dst.import_queue("copy", state.clone()).await?;
            ensure_eq!(dst.queue_config("copy").await?, cfg, "imported config");
            ensure_eq!(dst.counts("copy").await?, counts, "imported counts");
            ensure_eq!(
                dst.export_queue("copy").await?,
                state,
                "re-export of the import"
            );
            // Receipts keep their meaning across the move; apply the same
            // calls to both stores.
            for (name, q) in [("src", &src), ("copy", &dst)] {
                ensure_kind(
                    &format!("stale receipt on {name}"),
                    &q.ack(name, &a1.receipt).await,
                    ErrorKind::StaleReceipt,
                )?;
                q.ack(name, &b1.receipt).await?;
                q.change_visibility(name, &a2.receipt, Duration::ZERO)
                    .await?;
            }
            ensure_eq!(
                dst.counts("copy").await?,
                src.counts("src").await?,
                "counts after acks"
            );
            f1.clock.advance(secs(20));
            f2.clock.advance(secs(20));
            let want = receive(&*src, "src", 10).await?;
            let got = receive(&*dst, "copy", 10).await?;
            ensure_eq!(bodies(&want), vec!["a", "d", "c"], "source deliveries");
            ensure_eq!(
                got,
                want,
                "imported queue delivers exactly what the source does"
            );
            // The copy's receipts are the source's receipts.
            for m in &want {
                dst.ack("copy", &m.receipt).await?;
            }
            ensure_counts(
                &*dst,
                "copy",
                (0, 0, 0),
                "after acking with source receipts",
            )
            .await?;
            // Import replaces: importing again restores the snapshot, judged
            // at the new time (c's delay has passed, a and b still hidden).
            dst.import_queue("copy", state.clone()).await?;
            ensure_eq!(
                dst.counts("copy").await?,
                QueueCounts {
                    visible: 2,
                    in_flight: 2,
                    delayed: 0
                },
                "counts after a replacing import, 20 s later"
            );
            Ok(())
        })
        .await
    })
    .await
}

// ---------------------------------------------------------------------------
// Bad input.

async fn bad_batch(h: Arc<dyn Harness>) -> CaseResult {
    with_fixture(&h, |f| async move {
        let q = f.queue()?;
        q.create_queue("q", QueueConfig::default()).await?;
        let inv = ErrorKind::InvalidInput;
        ensure_kind("empty batch", &q.send_batch("q", vec![]).await, inv)?;
        let eleven: Vec<SendMessage> = (0..11).map(|i| SendMessage::new(format!("{i}"))).collect();
        ensure_kind("batch of 11", &q.send_batch("q", eleven).await, inv)?;
        // One bad message sinks the whole batch.
        let mixed = vec![
            SendMessage::new("ok-1"),
            SendMessage::new("bad").delayed(secs(15 * 60 + 1)),
            SendMessage::new("ok-2"),
        ];
        ensure_kind(
            "batch with a too-long delay",
            &q.send_batch("q", mixed).await,
            inv,
        )?;
        ensure_counts(&*q, "q", (0, 0, 0), "after refused batches").await?;
        let ten: Vec<SendMessage> = (0..10).map(|i| SendMessage::new(format!("{i}"))).collect();
        ensure_eq!(
            q.send_batch("q", ten).await?.len(),
            10,
            "a batch of 10 is fine"
        );
        Ok(())
    })
    .await
}

async fn oversize(h: Arc<dyn Harness>) -> CaseResult {
    with_fixture(&h, |f| async move {
        let q = f.queue()?;
        let cfg = QueueConfig {
            max_message_size: 100,
            ..QueueConfig::default()
        };
        q.create_queue("q", cfg).await?;
        let inv = ErrorKind::InvalidInput;
        // body 90 + "key" 3 + "1234567" 7 = 100: at the limit.
        let exact = SendMessage::new(vec![b'x'; 90]).attribute("key", "1234567");
        ensure_eq!(exact.size(), 100);
        q.send("q", exact).await?;
        let over_body = SendMessage::new(vec![b'x'; 101]);
        ensure_kind("101-byte body", &q.send("q", over_body).await, inv)?;
        let over_attrs = SendMessage::new(vec![b'x'; 90]).attribute("key", "12345678");
        ensure_kind(
            "attributes push it over",
            &q.send("q", over_attrs).await,
            inv,
        )?;
        let batch = vec![SendMessage::new("small"), SendMessage::new(vec![b'y'; 101])];
        ensure_kind(
            "batch with one oversize message",
            &q.send_batch("q", batch).await,
            inv,
        )?;
        ensure_counts(
            &*q,
            "q",
            (1, 0, 0),
            "only the exact-size message is enqueued",
        )
        .await?;
        Ok(())
    })
    .await
}

async fn standard_refuses_fifo_fields(h: Arc<dyn Harness>) -> CaseResult {
    with_fixture(&h, |f| async move {
        let q = f.queue()?;
        q.create_queue("q", QueueConfig::default()).await?;
        let inv = ErrorKind::InvalidInput;
        ensure_kind(
            "group id",
            &q.send("q", SendMessage::new("a").group("g")).await,
            inv,
        )?;
        ensure_kind(
            "dedup id",
            &q.send("q", SendMessage::new("a").dedup("d")).await,
            inv,
        )?;
        ensure_counts(&*q, "q", (0, 0, 0), "after refused sends").await?;
        Ok(())
    })
    .await
}

async fn malformed_receipt(h: Arc<dyn Harness>) -> CaseResult {
    for bad in [
        "x", "", "1", "0.abc", "1.", ".abc", "-1.abc", "abc.def", " 1.abc",
    ] {
        let parsed = bad.parse::<Receipt>();
        ensure!(parsed.is_err(), "{bad:?} parsed as {parsed:?}");
    }
    with_fixture(&h, |f| async move {
        let q = f.queue()?;
        q.create_queue("q", QueueConfig::default()).await?;
        let id = q.send("q", SendMessage::new("m")).await?;
        let unknown: Receipt = "1.no-such-message"
            .parse()
            .map_err(|e| Failure(format!("well-formed receipt did not parse: {e}")))?;
        ensure_kind(
            "ack of an unknown message",
            &q.ack("q", &unknown).await,
            ErrorKind::StaleReceipt,
        )?;
        ensure_kind(
            "change_visibility of an unknown message",
            &q.change_visibility("q", &unknown, secs(1)).await,
            ErrorKind::StaleReceipt,
        )?;
        // A receipt for a message that was never delivered is stale too.
        let undelivered = Receipt {
            message_id: id,
            receive_count: 1,
        };
        ensure_kind(
            "ack before delivery",
            &q.ack("q", &undelivered).await,
            ErrorKind::StaleReceipt,
        )?;
        ensure_counts(&*q, "q", (1, 0, 0), "after stale calls").await?;
        Ok(())
    })
    .await
}

async fn bad_receive_options(h: Arc<dyn Harness>) -> CaseResult {
    with_fixture(&h, |f| async move {
        let q = f.queue()?;
        q.create_queue("q", QueueConfig::default()).await?;
        q.send("q", SendMessage::new("m")).await?;
        let inv = ErrorKind::InvalidInput;
        for (what, opts) in [
            ("max 0", ReceiveOptions::batch(0)),
            ("max 11", ReceiveOptions::batch(11)),
            (
                "visibility over 12 h",
                ReceiveOptions {
                    visibility_timeout: Some(MAX_VISIBILITY_TIMEOUT + ms(1)),
                    ..ReceiveOptions::default()
                },
            ),
            (
                "wait over 20 s",
                ReceiveOptions {
                    wait: MAX_WAIT + ms(1),
                    ..ReceiveOptions::default()
                },
            ),
        ] {
            let t = Instant::now();
            ensure_kind(what, &q.receive("q", opts).await, inv)?;
            ensure!(
                t.elapsed() < secs(5),
                "{what}: refusing took {:?}",
                t.elapsed()
            );
        }
        ensure_counts(&*q, "q", (1, 0, 0), "refused receives deliver nothing").await?;
        let got = q
            .receive(
                "q",
                ReceiveOptions {
                    visibility_timeout: Some(MAX_VISIBILITY_TIMEOUT),
                    ..ReceiveOptions::default()
                },
            )
            .await?;
        ensure_eq!(got.len(), 1, "a 12 h override is allowed");
        f.clock.advance(MAX_VISIBILITY_TIMEOUT - ms(1));
        ensure_counts(&*q, "q", (0, 1, 0), "just under 12 h later").await?;
        Ok(())
    })
    .await
}

async fn bad_change_visibility(h: Arc<dyn Harness>) -> CaseResult {
    with_fixture(&h, |f| async move {
        let q = f.queue()?;
        q.create_queue("q", config_with_visibility(30)).await?;
        q.send("q", SendMessage::new("m")).await?;
        let m = receive_one(&*q, "q", "m").await?;
        ensure_kind(
            "12 h + 1 ms",
            &q.change_visibility("q", &m.receipt, MAX_VISIBILITY_TIMEOUT + ms(1))
                .await,
            ErrorKind::InvalidInput,
        )?;
        f.clock.advance(secs(30));
        ensure_counts(
            &*q,
            "q",
            (1, 0, 0),
            "the refused change left the timeout alone",
        )
        .await?;
        q.change_visibility("q", &m.receipt, MAX_VISIBILITY_TIMEOUT)
            .await?;
        ensure_counts(&*q, "q", (0, 1, 0), "12 h exactly is allowed").await?;
        Ok(())
    })
    .await
}

async fn bad_names(h: Arc<dyn Harness>) -> CaseResult {
    with_fixture(&h, |f| async move {
        let q = f.queue()?;
        let max = q.capabilities().max_namespace_size;
        let too_long = "q".repeat(max + 1);
        for name in [
            "",
            "a b",
            "a\nb",
            "caf\u{e9}",
            "semi;colon",
            too_long.as_str(),
        ] {
            ensure_kind(
                &format!("create_queue({name:?})"),
                &q.create_queue(name, QueueConfig::default()).await,
                ErrorKind::InvalidInput,
            )?;
            ensure_kind_in(
                &format!("send({name:?})"),
                &q.send(name, SendMessage::new("x")).await,
                &[ErrorKind::InvalidInput, ErrorKind::NotFound],
            )?;
        }
        ensure_eq!(
            q.list_queues("").await?,
            Vec::<String>::new(),
            "nothing was created"
        );
        let longest = "q".repeat(max);
        for name in ["a-b_c.d:e/f", "Z9", longest.as_str()] {
            q.create_queue(name, QueueConfig::default()).await?;
        }
        ensure_eq!(
            q.list_queues("").await?.len(),
            3,
            "valid names were created"
        );
        Ok(())
    })
    .await
}

async fn bad_configs(h: Arc<dyn Harness>) -> CaseResult {
    with_fixture(&h, |f| async move {
        let q = f.queue()?;
        let d = QueueConfig::default();
        for (what, cfg) in [
            (
                "content-based dedup on a standard queue",
                QueueConfig {
                    content_based_dedup: true,
                    ..d.clone()
                },
            ),
            (
                "visibility over 12 h",
                QueueConfig {
                    visibility_timeout: MAX_VISIBILITY_TIMEOUT + ms(1),
                    ..d.clone()
                },
            ),
            (
                "delay over 15 min",
                QueueConfig {
                    delay: secs(15 * 60) + ms(1),
                    ..d.clone()
                },
            ),
            (
                "retention under 1 s",
                QueueConfig {
                    retention: ms(999),
                    ..d.clone()
                },
            ),
            (
                "zero max message size",
                QueueConfig {
                    max_message_size: 0,
                    ..d.clone()
                },
            ),
        ] {
            ensure_kind(
                what,
                &q.create_queue("q", cfg).await,
                ErrorKind::InvalidInput,
            )?;
            ensure_kind(
                &format!("counts after refused create ({what})"),
                &q.counts("q").await,
                ErrorKind::NotFound,
            )?;
        }
        ensure_eq!(
            q.list_queues("").await?,
            Vec::<String>::new(),
            "nothing was created"
        );
        // The bounds themselves are accepted.
        let edge = QueueConfig {
            visibility_timeout: MAX_VISIBILITY_TIMEOUT,
            delay: secs(15 * 60),
            retention: secs(1),
            max_message_size: 1,
            ..d
        };
        q.create_queue("edge", edge.clone()).await?;
        ensure_eq!(q.queue_config("edge").await?, edge);
        Ok(())
    })
    .await
}

// ---------------------------------------------------------------------------
// Capabilities.

async fn undeclared(h: Arc<dyn Harness>) -> CaseResult {
    with_fixture(&h, |f| async move {
        let Some(q) = f.queue.clone() else {
            return Ok(()); // the type has no queue tier at all
        };
        ensure!(
            !q.capabilities().queue,
            "the store's own capabilities declare the queue tier"
        );
        let un = ErrorKind::Unsupported;
        let rc = Receipt {
            message_id: MessageId::new("m"),
            receive_count: 1,
        };
        let state = QueueState {
            config: QueueConfig::default(),
            messages: vec![],
            dedup: vec![],
            next_sequence: 0,
        };
        ensure_kind(
            "create_queue",
            &q.create_queue("q", QueueConfig::default()).await,
            un,
        )?;
        ensure_kind("queue_config", &q.queue_config("q").await, un)?;
        ensure_kind("delete_queue", &q.delete_queue("q").await, un)?;
        ensure_kind("list_queues", &q.list_queues("").await, un)?;
        ensure_kind(
            "send_batch",
            &q.send_batch("q", vec![SendMessage::new("x")]).await,
            un,
        )?;
        ensure_kind("send", &q.send("q", SendMessage::new("x")).await, un)?;
        ensure_kind(
            "receive",
            &q.receive("q", ReceiveOptions::default()).await,
            un,
        )?;
        ensure_kind("ack", &q.ack("q", &rc).await, un)?;
        ensure_kind(
            "change_visibility",
            &q.change_visibility("q", &rc, secs(1)).await,
            un,
        )?;
        ensure_kind("purge", &q.purge("q").await, un)?;
        ensure_kind("counts", &q.counts("q").await, un)?;
        ensure_kind("export_queue", &q.export_queue("q").await, un)?;
        ensure_kind("import_queue", &q.import_queue("q", state).await, un)?;
        Ok(())
    })
    .await
}

// ===========================================================================
// The model-based property test, shared by the three queue suites.

/// Which queues a property run sets up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// Two standard queues.
    Standard,
    /// A FIFO queue and a standard one.
    Fifo,
    /// A standard queue redriving into a dead-letter queue.
    DeadLetter,
}

/// Largest message the property queues accept, small so that "exactly at
/// the limit" and "one byte over" are cheap to generate.
const PROP_MAX_SIZE: usize = 64;

/// The queues of one property run: name, config, created up front.
#[derive(Debug, Clone)]
pub(crate) struct Setup {
    queues: Vec<(String, QueueConfig, bool)>,
}

fn prop_config(visibility: u64, delay: u64) -> QueueConfig {
    QueueConfig {
        visibility_timeout: secs(visibility),
        delay: secs(delay),
        retention: secs(60),
        max_message_size: PROP_MAX_SIZE,
        ..QueueConfig::default()
    }
}

fn setup_strategy(flavor: Flavor) -> SBoxedStrategy<Setup> {
    let vis = prop_oneof![Just(5u64), Just(30u64)];
    let delay = prop_oneof![2 => Just(0u64), 1 => Just(2u64)];
    match flavor {
        Flavor::Standard => (vis, delay)
            .prop_map(|(v, d)| Setup {
                queues: vec![
                    ("std-q".into(), prop_config(v, d), true),
                    ("aux.q".into(), prop_config(30, 0), true),
                ],
            })
            .sboxed(),
        Flavor::Fifo => (vis, delay, any::<bool>())
            .prop_map(|(v, d, content)| Setup {
                queues: vec![
                    (
                        "fifo:q".into(),
                        QueueConfig {
                            fifo: true,
                            content_based_dedup: content,
                            ..prop_config(v, d)
                        },
                        true,
                    ),
                    ("std-q".into(), prop_config(30, 0), true),
                ],
            })
            .sboxed(),
        Flavor::DeadLetter => (
            prop_oneof![Just(5u64), Just(10u64)],
            prop_oneof![3 => Just(1u32), 2 => Just(2u32), 1 => Just(3u32)],
            prop_oneof![3 => Just(true), 1 => Just(false)],
        )
            .prop_map(|(v, max_receives, dlq_exists)| Setup {
                queues: vec![
                    (
                        "src/q".into(),
                        QueueConfig {
                            redrive: Some(RedrivePolicy {
                                max_receives,
                                dead_letter_queue: "dlq_q".into(),
                            }),
                            ..prop_config(v, 0)
                        },
                        true,
                    ),
                    (
                        "dlq_q".into(),
                        QueueConfig {
                            retention: secs(120),
                            ..prop_config(5, 0)
                        },
                        dlq_exists,
                    ),
                ],
            })
            .sboxed(),
    }
}

/// Message size relative to the queue's limit.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Size {
    Short,
    Exact,
    Over,
}

/// A deliberate mistake in a message.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Flaw {
    /// A group id on a standard queue, a per-message delay on a FIFO one.
    WrongKind,
    /// No group id (an error on FIFO queues only).
    NoGroup,
    /// An empty group id.
    BadGroup,
}

/// One message to send, interpreted against the target queue's kind.
#[derive(Debug, Clone)]
pub(crate) struct MsgSpec {
    body: u8,
    size: Size,
    attrs: u8,
    delay: Option<u64>,
    group: u8,
    dedup: Option<u8>,
    flaw: Option<Flaw>,
}

/// Which receipt of a delivered message to present.
#[derive(Debug, Clone)]
pub(crate) enum Pick {
    /// The latest delivery's.
    Latest,
    /// Any earlier-or-latest delivery's.
    Any(Index),
    /// The latest with a receive count one too high.
    Forged,
    /// The latest, presented to the other queue.
    OtherQueue,
}

/// How far to move the clock.
#[derive(Debug, Clone)]
pub(crate) enum Step {
    /// This many seconds.
    Secs(u64),
    /// To the model's nearest future boundary, plus -1, 0 or +1 ms.
    Next(i8),
    /// To one of the model's future boundaries, plus -1, 0 or +1 ms.
    Boundary(Index, i8),
}

/// One operation of a property run.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    Send {
        q: usize,
        msgs: Vec<MsgSpec>,
    },
    Receive {
        q: usize,
        max: usize,
        visibility: Option<u64>,
    },
    Ack {
        msg: Index,
        receipt: Pick,
    },
    ChangeVisibility {
        msg: Index,
        receipt: Pick,
        secs: u64,
    },
    Advance(Step),
    Purge {
        q: usize,
    },
    CreateQueue {
        q: usize,
        alt: bool,
    },
    DeleteQueue {
        q: usize,
    },
    ExportImport {
        q: usize,
    },
}

fn msg_strategy() -> impl Strategy<Value = MsgSpec> {
    let size = prop_oneof![96 => Just(Size::Short), 2 => Just(Size::Exact), 1 => Just(Size::Over)];
    let delay = prop_oneof![
        80 => Just(None),
        8 => Just(Some(0u64)),
        8 => Just(Some(1)),
        8 => Just(Some(3)),
        1 => Just(Some(900)),
        1 => Just(Some(901)),
    ];
    let flaw = prop_oneof![
        150 => Just(None),
        1 => Just(Some(Flaw::WrongKind)),
        1 => Just(Some(Flaw::NoGroup)),
        1 => Just(Some(Flaw::BadGroup)),
    ];
    let dedup = prop_oneof![12 => (0u8..6).prop_map(Some), 1 => Just(None)];
    (0u8..4, size, 0u8..3, delay, 0u8..3, dedup, flaw).prop_map(
        |(body, size, attrs, delay, group, dedup, flaw)| MsgSpec {
            body,
            size,
            attrs,
            delay,
            group,
            dedup,
            flaw,
        },
    )
}

fn op_strategy(flavor: Flavor) -> impl Strategy<Value = Op> {
    // Redrive needs many receive / clock cycles on the source queue.
    let (primary, receives, advances) = match flavor {
        Flavor::DeadLetter => (5, 22, 12),
        _ => (3, 14, 8),
    };
    let q = move || prop_oneof![primary => Just(0usize), 1 => Just(1usize)];
    let msgs = prop_oneof![
        30 => prop::collection::vec(msg_strategy(), 1..=3),
        4 => prop::collection::vec(msg_strategy(), 4..=10),
        1 => Just(Vec::new()),
        1 => prop::collection::vec(msg_strategy(), 11..=11),
    ];
    let max =
        prop_oneof![24 => 1usize..=3, 8 => 4usize..=10, 1 => Just(0usize), 1 => Just(11usize)];
    let visibility = prop_oneof![
        40 => Just(None),
        2 => Just(Some(0u64)),
        2 => Just(Some(1)),
        3 => Just(Some(5)),
        1 => Just(Some(43_200)),
        1 => Just(Some(43_201)),
    ];
    let pick = || {
        prop_oneof![
            8 => Just(Pick::Latest),
            3 => any::<Index>().prop_map(Pick::Any),
            1 => Just(Pick::Forged),
            1 => Just(Pick::OtherQueue),
        ]
    };
    let cv_secs = prop_oneof![
        3 => Just(0u64),
        2 => Just(1u64),
        2 => Just(5u64),
        2 => Just(30u64),
        1 => Just(43_200u64),
        1 => Just(43_201u64),
    ];
    let step = prop_oneof![
        3 => prop::sample::select(vec![1u64, 2, 5, 5, 10, 29, 30, 31, 59, 60, 61, 299, 300, 301])
            .prop_map(Step::Secs),
        6 => (-1i8..=1).prop_map(Step::Next),
        2 => (any::<Index>(), -1i8..=1).prop_map(|(i, o)| Step::Boundary(i, o)),
    ];
    prop_oneof![
        14 => (q(), msgs).prop_map(|(q, msgs)| Op::Send { q, msgs }),
        receives => (q(), max, visibility).prop_map(|(q, max, visibility)| Op::Receive { q, max, visibility }),
        4 => (any::<Index>(), pick()).prop_map(|(msg, receipt)| Op::Ack { msg, receipt }),
        2 => (any::<Index>(), pick(), cv_secs)
            .prop_map(|(msg, receipt, secs)| Op::ChangeVisibility { msg, receipt, secs }),
        advances => step.prop_map(Op::Advance),
        1 => q().prop_map(|q| Op::Purge { q }),
        2 => (0usize..2, prop_oneof![3 => Just(false), 1 => Just(true)])
            .prop_map(|(q, alt)| Op::CreateQueue { q, alt }),
        1 => prop_oneof![1 => Just(0usize), 3 => Just(1usize)].prop_map(|q| Op::DeleteQueue { q }),
        1 => q().prop_map(|q| Op::ExportImport { q }),
    ]
}

/// The model-based property of one flavor.
pub(crate) async fn property(h: Arc<dyn Harness>, flavor: Flavor) -> CaseResult {
    let caps = h.capabilities();
    crate::prop::check(
        &h,
        move || {
            (
                setup_strategy(flavor),
                prop::collection::vec(op_strategy(flavor), 1..=crate::prop::max_ops()),
            )
                .prop_map(|(setup, ops)| Input { setup, ops })
        },
        move |f, input: Input| run_sequence(f, caps, input.setup, input.ops),
    )
    .await
}

/// One generated property input; its Debug form is the reproduction
/// printed on failure (queues, then one operation per line).
#[derive(Clone)]
pub(crate) struct Input {
    setup: Setup,
    ops: Vec<Op>,
}

impl Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "queues:")?;
        for (name, cfg, created) in &self.setup.queues {
            writeln!(f, "  {name:?} created={created} {cfg:?}")?;
        }
        writeln!(f, "operations ({}):", self.ops.len())?;
        for (i, op) in self.ops.iter().enumerate() {
            writeln!(f, "  {i}: {op:?}")?;
        }
        Ok(())
    }
}

async fn run_sequence(f: Fixture, caps: Capabilities, setup: Setup, ops: Vec<Op>) -> CaseResult {
    {
        let store = f.queue()?;
        let mut d = Driver {
            model: QueueModel::new(f.clock.now(), caps),
            start: f.clock.now().as_millis(),
            store,
            clock: f.clock.clone(),
            setup,
            ids: Vec::new(),
            index_of: HashMap::new(),
            receipts: Vec::new(),
            delivered: Vec::new(),
        };
        let mut log = Vec::new();
        for i in 0..d.setup.queues.len() {
            if d.setup.queues[i].2 {
                let desc = d
                    .create(i, false)
                    .await
                    .map_err(|e| Failure(format!("setup diverged: {e}")))?;
                log.push(format!("setup: {desc}"));
            }
        }
        for (i, op) in ops.iter().enumerate() {
            let result = match d.step(op).await {
                Ok(desc) => {
                    log.push(format!("step {i}: {desc}"));
                    d.check_counts().await
                }
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                return Err(Failure(format!(
                    "first divergence at step {i}: {op:?}\n  {e}\nsteps before it (resolved):\n  {}",
                    log.join("\n  ")
                )));
            }
        }
        Ok(())
    }
}

/// Applies operations to the backend and the model and compares.
struct Driver {
    store: Arc<dyn QueueStore>,
    clock: ManualClock,
    model: QueueModel,
    setup: Setup,
    /// Clock reading at the start, in ms.
    start: u64,
    /// Backend id of each model index.
    ids: Vec<MessageId>,
    index_of: HashMap<MessageId, usize>,
    /// Every (queue, receipt) each message got, in delivery order.
    receipts: Vec<Vec<(String, Receipt)>>,
    /// Indices of delivered messages, in first-delivery order.
    delivered: Vec<usize>,
}

type StepResult = Result<String, String>;

fn show<T: Debug>(r: &storage_core::Result<T>) -> String {
    match r {
        Ok(v) => format!("Ok({v:?})"),
        Err(e) => format!("Err({e})"),
    }
}

impl Driver {
    fn name(&self, q: usize) -> String {
        self.setup.queues[q % self.setup.queues.len()].0.clone()
    }

    fn config(&self, q: usize) -> QueueConfig {
        self.setup.queues[q % self.setup.queues.len()].1.clone()
    }

    /// Compares an outcome that carries no data to map.
    fn same<T: Debug + PartialEq>(
        what: &str,
        want: &Result<T, crate::model::queue::Expected>,
        got: &storage_core::Result<T>,
    ) -> Result<(), String> {
        let ok = match (want, got) {
            (Ok(w), Ok(g)) => w == g,
            (Err(w), Err(g)) => w.allows(g),
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "{what}: model says {want:?}, backend says {}",
                show(got)
            ))
        }
    }

    async fn create(&mut self, q: usize, alt: bool) -> StepResult {
        let name = self.name(q);
        let mut cfg = self.config(q);
        if alt {
            cfg.visibility_timeout += secs(1);
        }
        let want = self.model.create_queue(&name, cfg.clone());
        let got = self.store.create_queue(&name, cfg).await;
        Self::same(&format!("create_queue({name:?}, alt={alt})"), &want, &got)?;
        self.check_list().await?;
        Ok(format!(
            "create_queue({name:?}, alt={alt}) -> {}",
            show(&got)
        ))
    }

    async fn check_list(&mut self) -> Result<(), String> {
        let got = self.store.list_queues("").await;
        Self::same("list_queues(\"\")", &Ok(self.model.queue_names()), &got)?;
        let prefix = "s";
        let want: Vec<String> = self
            .model
            .queue_names()
            .into_iter()
            .filter(|n| n.starts_with(prefix))
            .collect();
        let got = self.store.list_queues(prefix).await;
        Self::same("list_queues(\"s\")", &Ok(want), &got)
    }

    async fn check_counts(&mut self) -> Result<(), String> {
        for i in 0..self.setup.queues.len() {
            let name = self.name(i);
            let want = self.model.counts(&name);
            let got = self.store.counts(&name).await;
            Self::same(&format!("counts({name:?}) after the step"), &want, &got)?;
        }
        Ok(())
    }

    fn build(&self, spec: &MsgSpec, cfg: &QueueConfig) -> SendMessage {
        let mut m = SendMessage::new(format!("m{}", spec.body));
        for i in 0..spec.attrs {
            m = m.attribute(format!("a{i}"), format!("v{}", spec.body));
        }
        let target = match spec.size {
            Size::Short => None,
            Size::Exact => Some(cfg.max_message_size),
            Size::Over => Some(cfg.max_message_size + 1),
        };
        if let Some(total) = target {
            let attrs = m.size() - m.body.len();
            let mut body = m.body.to_vec();
            body.resize(total.saturating_sub(attrs).max(body.len()), b'.');
            m.body = Bytes::from(body);
        }
        if cfg.fifo {
            m.group_id = match spec.flaw {
                Some(Flaw::NoGroup) => None,
                Some(Flaw::BadGroup) => Some(String::new()),
                _ => Some(format!("g{}", spec.group)),
            };
            m.dedup_id = spec.dedup.map(|d| format!("d{d}"));
            if matches!(spec.flaw, Some(Flaw::WrongKind)) {
                m.delay = Some(secs(1));
            }
        } else {
            m.delay = spec.delay.map(secs);
            match spec.flaw {
                Some(Flaw::WrongKind) => m.group_id = Some(format!("g{}", spec.group)),
                Some(Flaw::BadGroup) => m.group_id = Some(String::new()),
                _ => {}
            }
        }
        m
    }

    async fn step(&mut self, op: &Op) -> StepResult {
        match op {
            Op::Send { q, msgs } => self.send(*q, msgs).await,
            Op::Receive { q, max, visibility } => self.receive(*q, *max, *visibility).await,
            Op::Ack { msg, receipt } => self.receipt_op(msg, receipt, None).await,
            Op::ChangeVisibility {
                msg,
                receipt,
                secs: s,
            } => self.receipt_op(msg, receipt, Some(secs(*s))).await,
            Op::Advance(step) => Ok(self.advance(step)),
            Op::Purge { q } => {
                let name = self.name(*q);
                let want = self.model.purge(&name);
                let got = self.store.purge(&name).await;
                Self::same(&format!("purge({name:?})"), &want, &got)?;
                Ok(format!("purge({name:?}) -> {}", show(&got)))
            }
            Op::CreateQueue { q, alt } => self.create(*q, *alt).await,
            Op::DeleteQueue { q } => {
                let name = self.name(*q);
                let want = self.model.delete_queue(&name);
                let got = self.store.delete_queue(&name).await;
                Self::same(&format!("delete_queue({name:?})"), &want, &got)?;
                self.check_list().await?;
                Ok(format!("delete_queue({name:?}) -> {}", show(&got)))
            }
            Op::ExportImport { q } => self.export_import(*q).await,
        }
    }

    async fn send(&mut self, q: usize, specs: &[MsgSpec]) -> StepResult {
        let name = self.name(q);
        // Messages are shaped by the queue's current config if it exists.
        let cfg = self
            .model
            .queue(&name)
            .map(|mq| mq.config.clone())
            .unwrap_or_else(|| self.config(q));
        let msgs: Vec<SendMessage> = specs.iter().map(|s| self.build(s, &cfg)).collect();
        let want = self.model.send_batch(&name, &msgs);
        let summary: Vec<String> = msgs.iter().map(describe_send).collect();
        let got = if msgs.len() == 1 {
            let mut one = msgs.clone();
            match one.pop() {
                Some(m) => self.store.send(&name, m).await.map(|id| vec![id]),
                None => Ok(vec![]),
            }
        } else {
            self.store.send_batch(&name, msgs.clone()).await
        };
        let what = format!("send to {name:?} of [{}]", summary.join(", "));
        match (&want, &got) {
            (Ok(outcomes), Ok(ids)) => {
                if outcomes.len() != ids.len() {
                    return Err(format!(
                        "{what}: model says {outcomes:?}, backend returned {} ids",
                        ids.len()
                    ));
                }
                for (o, id) in outcomes.iter().zip(ids) {
                    match *o {
                        SendOutcome::New(k) => {
                            if let Some(prev) = self.index_of.get(id) {
                                return Err(format!(
                                    "{what}: new message #{k} got the id {id} of message #{prev}"
                                ));
                            }
                            if k != self.ids.len() {
                                return Err(format!("{what}: model index {k} out of step"));
                            }
                            self.ids.push(id.clone());
                            self.index_of.insert(id.clone(), k);
                            self.receipts.push(Vec::new());
                        }
                        SendOutcome::Duplicate(k) => {
                            if self.ids.get(k) != Some(id) {
                                return Err(format!(
                                    "{what}: a duplicate of message #{k} ({:?}) must return its id, backend returned {id} ({:?})",
                                    self.ids.get(k),
                                    self.index_of.get(id)
                                ));
                            }
                        }
                    }
                }
                Ok(format!("{what} -> {outcomes:?}"))
            }
            (Err(w), Err(g)) if w.allows(g) => Ok(format!("{what} -> Err({g})")),
            _ => Err(format!(
                "{what}: model says {want:?}, backend says {}",
                show(&got)
            )),
        }
    }

    async fn receive(&mut self, q: usize, max: usize, visibility: Option<u64>) -> StepResult {
        let name = self.name(q);
        let vis = visibility.map(secs);
        let want = self.model.receive(&name, max, vis, Duration::ZERO);
        let got = self
            .store
            .receive(
                &name,
                ReceiveOptions {
                    max_messages: max,
                    visibility_timeout: vis,
                    wait: Duration::ZERO,
                },
            )
            .await;
        let what = format!("receive({name:?}, max={max}, visibility={visibility:?}s)");
        match (&want, &got) {
            (Ok(w), Ok(g)) => {
                self.compare_received(&what, w, g)?;
                for m in g {
                    if let Some(&k) = self.index_of.get(&m.id) {
                        if self.receipts[k].is_empty() {
                            self.delivered.push(k);
                        }
                        self.receipts[k].push((name.clone(), m.receipt.clone()));
                    }
                }
                let got: Vec<String> = w
                    .iter()
                    .map(|m| format!("#{} (rc {})", m.index, m.receive_count))
                    .collect();
                Ok(format!("{what} -> [{}]", got.join(", ")))
            }
            (Err(w), Err(g)) if w.allows(g) => Ok(format!("{what} -> Err({g})")),
            (Ok(w), _) => Err(format!(
                "{what}: model delivers {}, backend says {}",
                summarize_model(w),
                show(&got)
            )),
            (Err(w), _) => Err(format!(
                "{what}: model says {w:?}, backend says {}",
                show(&got)
            )),
        }
    }

    fn summarize_got(&self, got: &[ReceivedMessage]) -> String {
        let parts: Vec<String> = got
            .iter()
            .map(|m| {
                let idx = self
                    .index_of
                    .get(&m.id)
                    .map_or_else(|| format!("unknown id {}", m.id), |k| format!("#{k}"));
                format!(
                    "{idx} {:?} (rc {})",
                    String::from_utf8_lossy(&m.body),
                    m.receive_count
                )
            })
            .collect();
        format!("[{}]", parts.join(", "))
    }

    fn compare_received(
        &self,
        what: &str,
        want: &[ModelMessage],
        got: &[ReceivedMessage],
    ) -> Result<(), String> {
        let mismatch = |detail: String| {
            format!(
                "{what}: model delivers {}, backend delivered {}: {detail}",
                summarize_model(want),
                self.summarize_got(got)
            )
        };
        if want.len() != got.len() {
            return Err(mismatch("different messages".into()));
        }
        for (w, g) in want.iter().zip(got) {
            if self.index_of.get(&g.id) != Some(&w.index) {
                return Err(mismatch(format!("expected message #{} here", w.index)));
            }
            let expect_receipt = Receipt {
                message_id: g.id.clone(),
                receive_count: w.receive_count,
            };
            let fields = [
                ("body", format!("{:?}", w.body), format!("{:?}", g.body)),
                (
                    "attributes",
                    format!("{:?}", w.attributes),
                    format!("{:?}", g.attributes),
                ),
                (
                    "receive_count",
                    w.receive_count.to_string(),
                    g.receive_count.to_string(),
                ),
                (
                    "receipt",
                    format!("{expect_receipt:?}"),
                    format!("{:?}", g.receipt),
                ),
                (
                    "sent_at",
                    format!("{:?}", w.sent_at),
                    format!("{:?}", g.sent_at),
                ),
                (
                    "first_received_at",
                    format!("{:?}", w.first_received_at),
                    format!("{:?}", Some(g.first_received_at)),
                ),
                (
                    "group_id",
                    format!("{:?}", w.group_id),
                    format!("{:?}", g.group_id),
                ),
                (
                    "dedup_id",
                    format!("{:?}", w.dedup_id),
                    format!("{:?}", g.dedup_id),
                ),
            ];
            for (field, a, b) in fields {
                if a != b {
                    return Err(mismatch(format!(
                        "message #{}: {field} should be {a}, is {b}",
                        w.index
                    )));
                }
            }
        }
        Ok(())
    }

    /// Resolves a receipt pick to (queue, receipt, description).
    fn resolve(&self, msg: &Index, pick: &Pick) -> (String, Receipt, String) {
        let primary = self.name(0);
        if self.delivered.is_empty() {
            let r = Receipt {
                message_id: MessageId::new("no-such-message"),
                receive_count: 1,
            };
            return (primary, r, "a receipt for an unknown message".into());
        }
        // "Latest" picks among messages still alive (so acks mostly land);
        // the other picks among every delivered message.
        let live: Vec<usize> = self
            .delivered
            .iter()
            .copied()
            .filter(|&k| self.model.is_live(k))
            .collect();
        let pool = if matches!(pick, Pick::Latest) && !live.is_empty() {
            &live
        } else {
            &self.delivered
        };
        let k = pool[msg.index(pool.len())];
        let list = &self.receipts[k];
        let last = list.len() - 1;
        let (queue, receipt) = list[last].clone();
        match pick {
            Pick::Latest => (queue, receipt, format!("#{k}'s latest receipt")),
            Pick::Any(i) => {
                let j = i.index(list.len());
                let (q, r) = list[j].clone();
                (
                    q,
                    r,
                    format!("#{k}'s receipt of delivery {} of {}", j + 1, list.len()),
                )
            }
            Pick::Forged => {
                let r = Receipt {
                    message_id: receipt.message_id,
                    receive_count: receipt.receive_count + 1,
                };
                (queue, r, format!("#{k}'s latest receipt with count + 1"))
            }
            Pick::OtherQueue => {
                let other = if queue == self.name(0) {
                    self.name(1)
                } else {
                    self.name(0)
                };
                (
                    other,
                    receipt,
                    format!("#{k}'s latest receipt on the other queue"),
                )
            }
        }
    }

    async fn receipt_op(
        &mut self,
        msg: &Index,
        pick: &Pick,
        timeout: Option<Duration>,
    ) -> StepResult {
        let (name, receipt, desc) = self.resolve(msg, pick);
        let index = self.index_of.get(&receipt.message_id).copied();
        match timeout {
            None => {
                let want = self.model.ack(&name, index, receipt.receive_count);
                let got = self.store.ack(&name, &receipt).await;
                let what = format!("ack({name:?}, {receipt:?} = {desc})");
                Self::same(&what, &want, &got)?;
                Ok(format!("{what} -> {}", show(&got)))
            }
            Some(t) => {
                let want = self
                    .model
                    .change_visibility(&name, index, receipt.receive_count, t);
                let got = self.store.change_visibility(&name, &receipt, t).await;
                let what = format!("change_visibility({name:?}, {receipt:?} = {desc}, {t:?})");
                Self::same(&what, &want, &got)?;
                Ok(format!("{what} -> {}", show(&got)))
            }
        }
    }

    fn advance(&mut self, step: &Step) -> String {
        let now = self.model.now();
        let d = match step {
            Step::Secs(s) => secs(*s),
            Step::Next(offset) | Step::Boundary(_, offset) => {
                let b = self.model.boundaries();
                if b.is_empty() {
                    secs(1)
                } else {
                    let pos = match step {
                        Step::Boundary(i, _) => i.index(b.len()),
                        _ => 0,
                    };
                    let t = b[pos].as_millis();
                    let target = t.saturating_add_signed(i64::from(*offset));
                    ms(target.saturating_sub(now.as_millis()))
                }
            }
        };
        self.clock.advance(d);
        self.model.advance(d);
        format!(
            "advance {d:?} ({step:?}) to +{}ms",
            self.model.now().as_millis().saturating_sub(self.start)
        )
    }

    async fn export_import(&mut self, q: usize) -> StepResult {
        let name = self.name(q);
        let got = self.store.export_queue(&name).await;
        let what = format!("export_queue({name:?})");
        let Some(mq) = self.model.queue(&name).cloned() else {
            return match got {
                Err(Error::NotFound { .. }) => Ok(format!("{what} -> NotFound")),
                other => Err(format!(
                    "{what}: model says NotFound, backend says {}",
                    show(&other)
                )),
            };
        };
        let state = got.map_err(|e| format!("{what}: backend failed: {e}"))?;
        if state.config != mq.config {
            return Err(format!(
                "{what}: config should be {:?}, is {:?}",
                mq.config, state.config
            ));
        }
        let want: Vec<String> = mq
            .messages
            .iter()
            .map(|m| {
                format!(
                    "#{} body={:?} attrs={:?} group={:?} dedup={:?} sent={:?} visible={:?} rc={} first={:?}",
                    m.index, m.body, m.attributes, m.group_id, m.dedup_id, m.sent_at,
                    m.visible_at, m.receive_count, m.first_received_at
                )
            })
            .collect();
        let got_msgs: Vec<String> = state
            .messages
            .iter()
            .map(|m| {
                let idx = self
                    .index_of
                    .get(&m.id)
                    .map_or_else(|| format!("unknown id {}", m.id), |k| k.to_string());
                format!(
                    "#{idx} body={:?} attrs={:?} group={:?} dedup={:?} sent={:?} visible={:?} rc={} first={:?}",
                    m.body, m.attributes, m.group_id, m.dedup_id, m.sent_at, m.visible_at,
                    m.receive_count, m.first_received_at
                )
            })
            .collect();
        if want != got_msgs {
            return Err(format!(
                "{what}: messages (in send order) should be\n    {}\n  are\n    {}",
                want.join("\n    "),
                got_msgs.join("\n    ")
            ));
        }
        let seqs: Vec<u64> = state.messages.iter().map(|m| m.sequence).collect();
        if seqs.windows(2).any(|w| w[0] >= w[1])
            || seqs.last().is_some_and(|s| *s >= state.next_sequence)
        {
            return Err(format!(
                "{what}: sequences {seqs:?} are not strictly increasing below next_sequence {}",
                state.next_sequence
            ));
        }
        let want_dedup: Vec<(String, usize, u64)> = mq
            .dedup
            .iter()
            .map(|(d, e)| (d.clone(), e.index, e.expires_at.as_millis()))
            .collect();
        let mut got_dedup: Vec<(String, usize, u64)> = state
            .dedup
            .iter()
            .map(|e| {
                (
                    e.dedup_id.clone(),
                    self.index_of
                        .get(&e.message_id)
                        .copied()
                        .unwrap_or(usize::MAX),
                    e.expires_at.as_millis(),
                )
            })
            .collect();
        got_dedup.sort();
        if want_dedup != got_dedup {
            return Err(format!(
                "{what}: dedup memory (id, message #, expires ms) should be {want_dedup:?}, is {got_dedup:?}"
            ));
        }
        let r = self.store.import_queue(&name, state).await;
        Self::same(
            &format!("import_queue({name:?}) of its own export"),
            &Ok(()),
            &r,
        )?;
        Ok(format!("{what} matched the model; re-imported"))
    }
}

fn describe_send(m: &SendMessage) -> String {
    let mut s = format!("{:?}", String::from_utf8_lossy(&m.body));
    if m.body.len() > 8 {
        s = format!(
            "<{} bytes + {} attribute bytes>",
            m.body.len(),
            m.size() - m.body.len()
        );
    }
    if !m.attributes.is_empty() {
        s.push_str(&format!(" attrs={}", m.attributes.len()));
    }
    if let Some(d) = m.delay {
        s.push_str(&format!(" delay={d:?}"));
    }
    if let Some(g) = &m.group_id {
        s.push_str(&format!(" group={g:?}"));
    }
    if let Some(d) = &m.dedup_id {
        s.push_str(&format!(" dedup={d:?}"));
    }
    s
}

fn summarize_model(w: &[ModelMessage]) -> String {
    let parts: Vec<String> = w
        .iter()
        .map(|m| {
            format!(
                "#{} {:?} (rc {})",
                m.index,
                String::from_utf8_lossy(&m.body),
                m.receive_count
            )
        })
        .collect();
    format!("[{}]", parts.join(", "))
}
