//! Two stores, connected separately to one server with one prefix, share
//! their data: what one writes, deletes or swaps the other sees; a CAS by
//! one makes the other's token stale; TTL is judged by each store's own
//! clock (the expiry instant is stored, "now" is the reader's).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{b, server, standalone, unique_prefix};
use storage_core::{
    AtomicKv, BatchOp, Clock, Error, KvStore, ManualClock, PutMode, PutOptions, ScanRequest,
    Timestamp,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_deletes_and_swaps_through_one_store_are_seen_by_the_other() {
    let server = server();
    let prefix = unique_prefix("sh");
    let clock = ManualClock::at_fixed_start();
    let one = standalone(server.url(), &prefix, &clock).await;
    let two = standalone(server.url(), &prefix, &clock).await;

    one.put("ns", b"a", b("1"), PutOptions::default())
        .await
        .unwrap();
    one.write_batch(
        "ns",
        vec![
            BatchOp::Put {
                key: b("b"),
                value: b("2"),
                options: PutOptions::default(),
            },
            BatchOp::Put {
                key: b("c"),
                value: b("3"),
                options: PutOptions::default(),
            },
        ],
    )
    .await
    .unwrap();
    assert_eq!(two.get("ns", b"a").await.unwrap(), Some(b("1")));
    let page = two.scan("ns", ScanRequest::all()).await.unwrap();
    let keys: Vec<_> = page.entries.iter().map(|e| e.key.clone()).collect();
    assert_eq!(keys, [b("a"), b("b"), b("c")]);
    assert_eq!(two.list_namespaces().await.unwrap(), ["ns"]);

    assert!(two.delete("ns", b"b").await.unwrap());
    assert_eq!(one.get("ns", b"b").await.unwrap(), None);
    assert!(!one.delete("ns", b"b").await.unwrap());

    // Versions agree between the two.
    let v1 = one
        .get_versioned("ns", b"a")
        .await
        .unwrap()
        .unwrap()
        .version;
    let v2 = two
        .get_versioned("ns", b"a")
        .await
        .unwrap()
        .unwrap()
        .version;
    assert_eq!(v1, v2);
    // A create-only put by one is refused to the other.
    one.put_if("ns", b"new", b("x"), PutMode::Create, PutOptions::default())
        .await
        .unwrap();
    let dup = two
        .put_if("ns", b"new", b("y"), PutMode::Create, PutOptions::default())
        .await;
    assert!(matches!(dup, Err(Error::Conflict { .. })), "{dup:?}");

    assert!(one.drop_namespace("ns").await.unwrap());
    assert!(two.list_namespaces().await.unwrap().is_empty());
    assert_eq!(two.get("ns", b"a").await.unwrap(), None);
    one.destroy().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swap_by_one_store_makes_the_others_token_stale() {
    let server = server();
    let prefix = unique_prefix("shcas");
    let clock = ManualClock::at_fixed_start();
    let one = standalone(server.url(), &prefix, &clock).await;
    let two = standalone(server.url(), &prefix, &clock).await;

    let v0 = one
        .put_if("ns", b"k", b("0"), PutMode::Create, PutOptions::default())
        .await
        .unwrap();
    let seen_by_two = two.get_versioned("ns", b"k").await.unwrap().unwrap();
    assert_eq!(seen_by_two.version, v0);

    let v1 = one
        .put_if(
            "ns",
            b"k",
            b("1"),
            PutMode::Update(v0.clone()),
            PutOptions::default(),
        )
        .await
        .unwrap();
    let stale = two
        .put_if(
            "ns",
            b"k",
            b("2"),
            PutMode::Update(seen_by_two.version.clone()),
            PutOptions::default(),
        )
        .await;
    assert!(
        matches!(&stale, Err(Error::Conflict { current: Some(c), .. }) if *c == v1),
        "{stale:?}"
    );
    let stale_delete = two.delete_if("ns", b"k", &seen_by_two.version).await;
    assert!(
        matches!(stale_delete, Err(Error::Conflict { .. })),
        "{stale_delete:?}"
    );
    assert_eq!(one.get("ns", b"k").await.unwrap(), Some(b("1")));

    // With the fresh token the other store succeeds, and the first one's
    // token goes stale in turn.
    let fresh = two.get_versioned("ns", b"k").await.unwrap().unwrap();
    let v2 = two
        .put_if(
            "ns",
            b"k",
            b("2"),
            PutMode::Update(fresh.version),
            PutOptions::default(),
        )
        .await
        .unwrap();
    assert!(matches!(
        one.delete_if("ns", b"k", &v1).await,
        Err(Error::Conflict { .. })
    ));
    one.delete_if("ns", b"k", &v2).await.unwrap();
    assert_eq!(two.get("ns", b"k").await.unwrap(), None);
    one.destroy().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_is_judged_by_each_stores_own_clock() {
    let server = server();
    let prefix = unique_prefix("shttl");
    let clock_one = ManualClock::at_fixed_start();
    let clock_two = ManualClock::at_fixed_start();
    let one = standalone(server.url(), &prefix, &clock_one).await;
    let two = standalone(server.url(), &prefix, &clock_two).await;

    one.put("ns", b"k", b("v"), PutOptions::ttl(Duration::from_secs(10)))
        .await
        .unwrap();
    let expires = two
        .scan("ns", ScanRequest::all())
        .await
        .unwrap()
        .entries
        .first()
        .and_then(|e| e.expires_at);
    assert_eq!(
        expires,
        Some(Timestamp::from_millis(clock_one.now().as_millis() + 10_000)),
        "the expiry instant is the writer's now + ttl"
    );

    // Past the expiry by one store's clock only.
    clock_one.advance(Duration::from_secs(10));
    assert_eq!(one.get("ns", b"k").await.unwrap(), None);
    assert_eq!(two.get("ns", b"k").await.unwrap(), Some(b("v")));
    assert!(one.get_versioned("ns", b"k").await.unwrap().is_none());
    assert!(two.get_versioned("ns", b"k").await.unwrap().is_some());
    assert!(one.list_namespaces().await.unwrap().is_empty());
    assert_eq!(two.list_namespaces().await.unwrap(), ["ns"]);

    // One second before the expiry by the other's clock it is still live;
    // at the instant it is gone.
    clock_two.advance(Duration::from_millis(9_999));
    assert_eq!(two.get("ns", b"k").await.unwrap(), Some(b("v")));
    clock_two.advance(Duration::from_millis(1));
    assert_eq!(two.get("ns", b"k").await.unwrap(), None);
    one.destroy().await.unwrap();
}

// ---------------------------------------------------------------------
// Queue tier (storage-redis queues, being written): the competing-consumers
// test across two stores goes here once `CAPABILITIES.queue` is true.
// ---------------------------------------------------------------------
