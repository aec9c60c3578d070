//! Focused tests of the memory backend's KV and CAS tiers.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use storage_core::{
    AtomicKv, BatchOp, Condition, Cursor, Error, Expiry, KvStore, ManualClock, PutMode, PutOptions,
    ScanRequest, TxOp, Version,
};
use storage_memory::MemoryStore;

fn store() -> (MemoryStore, ManualClock) {
    let clock = ManualClock::default();
    (MemoryStore::with_clock(Arc::new(clock.clone())), clock)
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

async fn put(s: &MemoryStore, ns: &str, k: &str, v: &str) {
    s.put(ns, k.as_bytes(), b(v), PutOptions::default())
        .await
        .unwrap();
}

fn keys(entries: &[storage_core::Entry]) -> Vec<String> {
    entries
        .iter()
        .map(|e| String::from_utf8(e.key.to_vec()).unwrap())
        .collect()
}

#[tokio::test]
async fn ttl_expires_by_clock_everywhere() {
    let (s, clock) = store();
    s.put("ns", b"a", b("1"), PutOptions::ttl(Duration::from_secs(10)))
        .await
        .unwrap();
    put(&s, "other", "x", "y").await;
    clock.advance(Duration::from_millis(9_999));
    assert_eq!(s.get("ns", b"a").await.unwrap(), Some(b("1")));
    let page = s.scan("ns", ScanRequest::all()).await.unwrap();
    assert!(page.entries[0].expires_at.is_some());
    assert_eq!(s.list_namespaces().await.unwrap(), vec!["ns", "other"]);

    // Expiry at exactly now means absent.
    clock.advance(Duration::from_millis(1));
    assert_eq!(s.get("ns", b"a").await.unwrap(), None);
    assert_eq!(s.get_many("ns", &[b("a")]).await.unwrap(), vec![None]);
    assert!(s.get_versioned("ns", b"a").await.unwrap().is_none());
    assert!(s
        .scan("ns", ScanRequest::all())
        .await
        .unwrap()
        .entries
        .is_empty());
    assert_eq!(s.list_namespaces().await.unwrap(), vec!["other"]);
    // Deleting an expired key removes nothing live.
    assert!(!s.delete("ns", b"a").await.unwrap());

    // An expired key counts as absent for conditions.
    s.put("ns", b"b", b("1"), PutOptions::ttl(Duration::from_secs(1)))
        .await
        .unwrap();
    clock.advance(Duration::from_secs(1));
    let v = s
        .put_if("ns", b"b", b("2"), PutMode::Create, PutOptions::default())
        .await
        .unwrap();
    // A put without expiry clears the earlier one.
    clock.advance(Duration::from_secs(3600));
    assert_eq!(
        s.get_versioned("ns", b"b").await.unwrap().unwrap().version,
        v
    );

    // A later write purges expired slots; the namespace disappears.
    s.put("ns2", b"k", b("v"), PutOptions::ttl(Duration::from_secs(1)))
        .await
        .unwrap();
    clock.advance(Duration::from_secs(2));
    put(&s, "ns3", "k", "v").await;
    assert!(!s.drop_namespace("ns2").await.unwrap());

    // An absolute expiry in the past writes an entry that is already gone.
    s.put(
        "ns",
        b"past",
        b("v"),
        PutOptions {
            expiry: Expiry::At(storage_core::Timestamp::ZERO),
        },
    )
    .await
    .unwrap();
    assert_eq!(s.get("ns", b"past").await.unwrap(), None);
}

#[tokio::test]
async fn scan_pages_forward_and_reverse() {
    let (s, _) = store();
    for k in ["a", "b", "c", "d", "e"] {
        put(&s, "ns", k, k).await;
    }
    put(&s, "ns", "zz", "outside").await;

    for (req, want) in [
        (ScanRequest::range("a", "f"), vec!["a", "b", "c", "d", "e"]),
        (
            ScanRequest::range("a", "f").reversed(),
            vec!["e", "d", "c", "b", "a"],
        ),
    ] {
        let mut got = Vec::new();
        let mut cursor: Option<Cursor> = None;
        let mut pages = 0;
        loop {
            let page = s
                .scan("ns", req.clone().with_limit(2).with_cursor(cursor))
                .await
                .unwrap();
            pages += 1;
            assert!(page.entries.len() <= 2);
            assert!(page.entries.iter().all(|e| e.version.is_some()));
            got.extend(keys(&page.entries));
            match page.cursor {
                // A cursor survives its string form.
                Some(c) => cursor = Some(c.to_string().parse().unwrap()),
                None => break,
            }
        }
        assert_eq!(got, want);
        assert_eq!(pages, 3);
    }

    // A full page with nothing after it has no cursor.
    let page = s
        .scan("ns", ScanRequest::range("a", "c").with_limit(2))
        .await
        .unwrap();
    assert_eq!(keys(&page.entries), vec!["a", "b"]);
    assert!(page.cursor.is_none());

    // Prefix scans, and cursors beyond the range, never panic.
    let page = s.scan("ns", ScanRequest::prefix("z")).await.unwrap();
    assert_eq!(keys(&page.entries), vec!["zz"]);
    let page = s
        .scan(
            "ns",
            ScanRequest::range("a", "c").with_cursor(Some(Cursor::after(b("x")))),
        )
        .await
        .unwrap();
    assert!(page.entries.is_empty());
    let page = s
        .scan(
            "ns",
            ScanRequest {
                start: std::ops::Bound::Excluded(b("b")),
                end: std::ops::Bound::Excluded(b("b")),
                ..ScanRequest::all()
            },
        )
        .await
        .unwrap();
    assert!(page.entries.is_empty());

    // Bad requests are input errors.
    let err = s
        .scan("ns", ScanRequest::all().with_limit(0))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }));
    let err = s
        .scan("ns", ScanRequest::range("c", "a"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }));
}

#[tokio::test]
async fn scan_skips_expired_and_peeks_for_cursor() {
    let (s, clock) = store();
    put(&s, "ns", "a", "1").await;
    put(&s, "ns", "b", "1").await;
    s.put("ns", b"c", b("1"), PutOptions::ttl(Duration::from_secs(1)))
        .await
        .unwrap();
    clock.advance(Duration::from_secs(1));
    // Only an expired entry follows the full page: no cursor.
    let page = s
        .scan("ns", ScanRequest::all().with_limit(2))
        .await
        .unwrap();
    assert_eq!(keys(&page.entries), vec!["a", "b"]);
    assert!(page.cursor.is_none());
}

#[tokio::test]
async fn cas_conflicts_report_current_version() {
    let (s, _) = store();
    let v1 = s
        .put_if("t", b"k", b("a"), PutMode::Create, PutOptions::default())
        .await
        .unwrap();
    let err = s
        .put_if("t", b"k", b("x"), PutMode::Create, PutOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict { current: Some(ref v), index: None, .. } if *v == v1));

    let v2 = s
        .put_if(
            "t",
            b"k",
            b("b"),
            PutMode::Update(v1.clone()),
            PutOptions::default(),
        )
        .await
        .unwrap();
    assert_ne!(v1, v2);
    let err = s
        .put_if(
            "t",
            b"k",
            b("c"),
            PutMode::Update(v1.clone()),
            PutOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict { current: Some(ref v), .. } if *v == v2));
    assert_eq!(s.get("t", b"k").await.unwrap(), Some(b("b")));

    // Foreign or non-canonical tokens simply do not match.
    for token in ["nope", "0", &format!("0{v2}"), &format!("+{v2}")] {
        let err = s
            .put_if(
                "t",
                b"k",
                b("c"),
                PutMode::Update(Version::new(token)),
                PutOptions::default(),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Conflict { .. }), "{token}");
    }

    // A plain put issues a new version too.
    put(&s, "t", "k", "b").await;
    let v3 = s.get_versioned("t", b"k").await.unwrap().unwrap().version;
    assert_ne!(v3, v2);

    let err = s.delete_if("t", b"k", &v2).await.unwrap_err();
    assert!(matches!(err, Error::Conflict { current: Some(ref v), .. } if *v == v3));
    s.delete_if("t", b"k", &v3).await.unwrap();
    let err = s.delete_if("t", b"k", &v3).await.unwrap_err();
    assert!(matches!(err, Error::Conflict { current: None, .. }));
    let err = s
        .put_if(
            "t",
            b"k",
            b("x"),
            PutMode::Update(v3.clone()),
            PutOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict { current: None, .. }));

    // Recreating after delete never reissues an old token.
    let v4 = s
        .put_if("t", b"k", b("a"), PutMode::Create, PutOptions::default())
        .await
        .unwrap();
    assert!(![&v1, &v2, &v3].contains(&&v4));
}

#[tokio::test]
async fn transactions_are_all_or_nothing() {
    let (s, _) = store();
    let va = s
        .put_if("t", b"a", b("1"), PutMode::Create, PutOptions::default())
        .await
        .unwrap();
    put(&s, "u", "gone", "x").await;

    // Op #2's condition fails: nothing of the transaction applies.
    let err = s
        .transact(vec![
            TxOp::put("t", b("a"), b("2")).when(Condition::Version(va.clone())),
            TxOp::delete("u", b("gone")),
            TxOp::put("t", b("new"), b("n")).when(Condition::Exists),
        ])
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::Conflict {
            index: Some(2),
            current: None,
            ..
        }
    ));
    assert_eq!(s.get("t", b"a").await.unwrap(), Some(b("1")));
    assert_eq!(s.get("u", b"gone").await.unwrap(), Some(b("x")));
    assert_eq!(s.get("t", b"new").await.unwrap(), None);

    let out = s
        .transact(vec![
            TxOp::put("t", b("a"), b("2")).when(Condition::Version(va.clone())),
            TxOp::delete("u", b("gone")).when(Condition::Exists),
            TxOp::put("t", b("new"), b("n")).when(Condition::Absent),
            TxOp::check("t", b("a2"), Condition::Absent),
        ])
        .await
        .unwrap();
    assert_eq!(out.len(), 4);
    assert!(out[0].is_some() && out[2].is_some());
    assert!(out[1].is_none() && out[3].is_none());
    let a = s.get_versioned("t", b"a").await.unwrap().unwrap();
    assert_eq!(Some(a.version), out[0].clone());
    assert_eq!(a.value, b("2"));
    assert_eq!(s.list_namespaces().await.unwrap(), vec!["t"]);

    // A stale version names its index and the current version.
    let err = s
        .transact(vec![
            TxOp::check("t", b("new"), Condition::Exists),
            TxOp::delete("t", b("a")).when(Condition::Version(va)),
        ])
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Conflict { index: Some(1), current: Some(ref v), .. } if Some(v) == out[0].as_ref())
    );

    assert!(s.transact(vec![]).await.unwrap().is_empty());
}

fn invalid<T>(r: Result<T, Error>) -> bool {
    matches!(r, Err(Error::InvalidInput { .. }))
}

#[tokio::test]
async fn bad_input_writes_nothing() {
    let (s, _) = store();

    assert!(invalid(
        s.put("", b"k", b("v"), PutOptions::default()).await
    ));
    assert!(invalid(
        s.put("a b", b"k", b("v"), PutOptions::default()).await
    ));
    assert!(invalid(
        s.put("ns", b"", b("v"), PutOptions::default()).await
    ));
    assert!(invalid(
        s.put("ns", &[0u8; 1025], b("v"), PutOptions::default())
            .await
    ));
    let big = Bytes::from(vec![0u8; 4 * 1024 * 1024 + 1]);
    assert!(invalid(
        s.put("ns", b"k", big.clone(), PutOptions::default()).await
    ));
    assert!(invalid(s.get("ns", b"").await));
    assert!(invalid(s.get_many("ns", &[b("ok"), Bytes::new()]).await));
    assert!(invalid(
        s.put_if(
            "ns",
            b"k",
            big.clone(),
            PutMode::Create,
            PutOptions::default()
        )
        .await
    ));

    // A batch with one bad op writes none of it.
    assert!(invalid(
        s.write_batch(
            "ns",
            vec![
                BatchOp::Put {
                    key: b("good"),
                    value: b("v"),
                    options: PutOptions::default()
                },
                BatchOp::Delete { key: Bytes::new() },
            ],
        )
        .await
    ));

    // So does a transaction: bad value, repeated key, too many ops.
    assert!(invalid(
        s.transact(vec![
            TxOp::put("ns", b("good"), b("v")),
            TxOp::put("ns", b("k"), big),
        ])
        .await
    ));
    assert!(invalid(
        s.transact(vec![
            TxOp::put("ns", b("good"), b("v")),
            TxOp::delete("ns", b("good")),
        ])
        .await
    ));
    let many: Vec<TxOp> = (0..101)
        .map(|i| TxOp::put("ns", Bytes::from(format!("k{i}")), b("v")))
        .collect();
    assert!(invalid(s.transact(many).await));

    assert!(s.list_namespaces().await.unwrap().is_empty());

    // The same key in two namespaces is fine.
    s.transact(vec![
        TxOp::put("ns", b("good"), b("v")),
        TxOp::put("ns2", b("good"), b("v")),
    ])
    .await
    .unwrap();
}

#[tokio::test]
async fn batches_apply_in_order_and_namespaces_come_and_go() {
    let (s, _) = store();
    s.write_batch(
        "ns",
        vec![
            BatchOp::Put {
                key: b("a"),
                value: b("1"),
                options: PutOptions::default(),
            },
            BatchOp::Put {
                key: b("a"),
                value: b("2"),
                options: PutOptions::default(),
            },
            BatchOp::Put {
                key: b("b"),
                value: b("1"),
                options: PutOptions::default(),
            },
            BatchOp::Delete { key: b("b") },
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        s.get_many("ns", &[b("a"), b("b")]).await.unwrap(),
        vec![Some(b("2")), None]
    );
    assert_eq!(s.list_namespaces().await.unwrap(), vec!["ns"]);
    assert!(s.delete("ns", b"a").await.unwrap());
    assert!(!s.delete("ns", b"a").await.unwrap());
    assert!(s.list_namespaces().await.unwrap().is_empty());

    put(&s, "ns", "x", "1").await;
    assert!(s.drop_namespace("ns").await.unwrap());
    assert!(!s.drop_namespace("ns").await.unwrap());
    assert_eq!(s.get("ns", b"x").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_cas_increments_are_exact() {
    let (s, _) = store();
    let tasks = 8;
    let per_task = 200;
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move {
                for _ in 0..per_task {
                    loop {
                        let cur = s.get_versioned("c", b"n").await.unwrap();
                        let (n, mode) = match cur {
                            Some(v) => (
                                std::str::from_utf8(&v.value)
                                    .unwrap()
                                    .parse::<u64>()
                                    .unwrap(),
                                PutMode::Update(v.version),
                            ),
                            None => (0, PutMode::Create),
                        };
                        let next = Bytes::from((n + 1).to_string());
                        match s.put_if("c", b"n", next, mode, PutOptions::default()).await {
                            Ok(_) => break,
                            Err(Error::Conflict { .. }) => continue,
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.await.unwrap();
    }
    let v = s.get("c", b"n").await.unwrap().unwrap();
    assert_eq!(v, Bytes::from((tasks * per_task).to_string()));
}
