//! Direct checks of the SQLite KV and CAS tiers beyond the conformance
//! suite: query plans, byte order, bad input, lazy expiry, tokens shared
//! by two stores on one file.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use storage_core::{
    AtomicKv, BatchOp, Condition, Error, KvStore, ManualClock, PutMode, PutOptions, ScanRequest,
    TxOp, Version,
};
use storage_sqlite::{SqliteConfig, SqliteStore, CAPABILITIES};

async fn file_store(dir: &tempfile::TempDir) -> (SqliteStore, ManualClock, std::path::PathBuf) {
    let path = dir.path().join("kv.sqlite");
    let clock = ManualClock::default();
    let store = SqliteStore::open_with_clock(SqliteConfig::file(&path), Arc::new(clock.clone()))
        .await
        .unwrap();
    (store, clock, path)
}

fn raw_count(path: &std::path::Path) -> i64 {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row("SELECT COUNT(*) FROM storage_kv", [], |r| r.get(0))
        .unwrap()
}

#[tokio::test]
async fn every_scan_statement_is_a_primary_key_search_not_a_table_scan() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _clock, path) = file_store(&dir).await;
    // Enough rows, in several namespaces, that ANALYZE-free planning
    // still sees a real table.
    let ops = (0u32..500)
        .map(|i| BatchOp::Put {
            key: Bytes::from(i.to_be_bytes().to_vec()),
            value: Bytes::from_static(b"v"),
            options: PutOptions::default(),
        })
        .collect::<Vec<_>>();
    for ns in ["a", "b", "c"] {
        store.write_batch(ns, ops.clone()).await.unwrap();
    }
    let conn = rusqlite::Connection::open(&path).unwrap();
    let statements = storage_sqlite::scan_statements();
    assert_eq!(statements.len(), 18);
    for sql in statements {
        let n = sql.matches('?').count();
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let nulls = vec![rusqlite::types::Null; n];
        let plan: Vec<String> = stmt
            .query_map(rusqlite::params_from_iter(nulls.iter()), |r| r.get(3))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let plan = plan.join(" | ");
        assert!(
            plan.starts_with("SEARCH storage_kv USING PRIMARY KEY (ns=?"),
            "{sql}: {plan}"
        );
        assert!(!plan.contains("SCAN"), "{sql}: {plan}");
        assert!(!plan.contains("TEMP B-TREE"), "{sql} sorts: {plan}");
    }
}

#[tokio::test]
async fn scans_follow_unsigned_byte_order_in_both_directions_across_pages() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _clock, _path) = file_store(&dir).await;
    let mut keys: Vec<Vec<u8>> = vec![
        vec![0x00],
        vec![0x00, 0x00],
        vec![0x01],
        vec![0x7f],
        vec![0x80],
        vec![0x80, 0x00],
        vec![0xfe, 0xff],
        vec![0xff],
        vec![0xff, 0xff, 0xff],
        b"a".to_vec(),
        b"ab".to_vec(),
        b"b".to_vec(),
    ];
    for k in &keys {
        store
            .put("order", k, Bytes::from(k.clone()), PutOptions::default())
            .await
            .unwrap();
    }
    keys.sort();
    for reverse in [false, true] {
        let mut expected = keys.clone();
        if reverse {
            expected.reverse();
        }
        let mut got = Vec::new();
        let mut cursor = None;
        loop {
            let mut req = ScanRequest::all().with_limit(5).with_cursor(cursor);
            if reverse {
                req = req.reversed();
            }
            let page = store.scan("order", req).await.unwrap();
            assert!(page.entries.len() <= 5);
            got.extend(page.entries.iter().map(|e| e.key.to_vec()));
            match page.cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(got, expected, "reverse={reverse}");
    }
    // A prefix and an inclusive-exclusive range.
    let page = store
        .scan("order", ScanRequest::prefix(vec![0xffu8]))
        .await
        .unwrap();
    let got: Vec<_> = page.entries.iter().map(|e| e.key.to_vec()).collect();
    assert_eq!(got, vec![vec![0xff], vec![0xff, 0xff, 0xff]]);
    assert!(page.cursor.is_none());
    let page = store
        .scan(
            "order",
            ScanRequest::range(vec![0x00u8, 0x00], vec![0x80u8]),
        )
        .await
        .unwrap();
    let got: Vec<_> = page.entries.iter().map(|e| e.key.to_vec()).collect();
    let expected: Vec<Vec<u8>> = vec![
        vec![0x00, 0x00],
        vec![0x01],
        b"a".to_vec(),
        b"ab".to_vec(),
        b"b".to_vec(),
        vec![0x7f],
    ];
    assert_eq!(got, expected);
    // A full last page has no cursor.
    let page = store
        .scan("order", ScanRequest::all().with_limit(keys.len()))
        .await
        .unwrap();
    assert_eq!(page.entries.len(), keys.len());
    assert!(page.cursor.is_none());
}

#[tokio::test]
async fn bad_input_is_invalid_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _clock, path) = file_store(&dir).await;
    let long_key = vec![b'k'; CAPABILITIES.max_key_size + 1];
    let long_value = Bytes::from(vec![0u8; CAPABILITIES.max_value_size + 1]);

    let e = store
        .put(
            "ns",
            &long_key,
            Bytes::from_static(b"v"),
            PutOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidInput { .. }), "{e}");
    let e = store
        .put("ns", b"k", long_value.clone(), PutOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidInput { .. }), "{e}");
    let e = store
        .put("bad ns", b"k", Bytes::new(), PutOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidInput { .. }), "{e}");
    let e = store
        .put_if(
            "ns",
            b"",
            Bytes::new(),
            PutMode::Create,
            PutOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidInput { .. }), "{e}");

    // A batch whose third operation is bad writes none of the first two.
    let ok = |k: &'static [u8]| BatchOp::Put {
        key: Bytes::from_static(k),
        value: Bytes::from_static(b"v"),
        options: PutOptions::default(),
    };
    let e = store
        .write_batch(
            "ns",
            vec![
                ok(b"a"),
                ok(b"b"),
                BatchOp::Put {
                    key: Bytes::from_static(b"c"),
                    value: long_value.clone(),
                    options: PutOptions::default(),
                },
            ],
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidInput { .. }), "{e}");
    assert!(e.to_string().contains("operation #2"), "{e}");

    // So does a transaction.
    let e = store
        .transact(vec![
            TxOp::put("ns", "a", "v"),
            TxOp::put("ns", Bytes::from(long_key.clone()), "v"),
        ])
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidInput { .. }), "{e}");
    assert!(e.to_string().contains("operation #1"), "{e}");

    assert_eq!(raw_count(&path), 0);
    assert!(store.list_namespaces().await.unwrap().is_empty());
    assert_eq!(store.get("ns", b"a").await.unwrap(), None);
}

#[tokio::test]
async fn foreign_tokens_are_conflicts_and_failed_transactions_name_the_op() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _clock, path) = file_store(&dir).await;
    let v = store
        .put_if(
            "t",
            b"k",
            Bytes::from_static(b"1"),
            PutMode::Create,
            PutOptions::default(),
        )
        .await
        .unwrap();
    for foreign in ["abc", "007", "-1", "99999999999999999999999", "\u{e9}"] {
        let e = store
            .put_if(
                "t",
                b"k",
                Bytes::from_static(b"x"),
                PutMode::Update(Version::new(foreign)),
                PutOptions::default(),
            )
            .await
            .unwrap_err();
        match e {
            Error::Conflict { current, .. } => assert_eq!(current, Some(v.clone())),
            other => panic!("{foreign}: {other}"),
        }
    }
    let e = store
        .transact(vec![
            TxOp::put("t", "a", "1"),
            TxOp::check("t", "k", Condition::Version(v.clone())),
            TxOp::delete("t", "k").when(Condition::Absent),
        ])
        .await;
    assert!(e.is_err(), "a key may appear once per transaction: {e:?}");
    let e = store
        .transact(vec![
            TxOp::put("t", "a", "1"),
            TxOp::check("t", "k", Condition::Version(v.clone())),
            TxOp::put("u", "b", "2").when(Condition::Exists),
        ])
        .await
        .unwrap_err();
    match e {
        Error::Conflict { index, current, .. } => {
            assert_eq!(index, Some(2));
            assert_eq!(current, None);
        }
        other => panic!("{other}"),
    }
    assert_eq!(store.get("t", b"a").await.unwrap(), None);
    assert_eq!(raw_count(&path), 1);
}

#[tokio::test]
async fn expired_rows_are_absent_at_once_and_deleted_only_by_later_writes() {
    let dir = tempfile::tempdir().unwrap();
    let (store, clock, path) = file_store(&dir).await;
    store
        .put(
            "ttl",
            b"gone",
            Bytes::from_static(b"v"),
            PutOptions::ttl(Duration::from_secs(10)),
        )
        .await
        .unwrap();
    clock.advance(Duration::from_secs(10));
    assert_eq!(store.get("ttl", b"gone").await.unwrap(), None);
    assert!(store.list_namespaces().await.unwrap().is_empty());
    assert!(store
        .scan("ttl", ScanRequest::all())
        .await
        .unwrap()
        .entries
        .is_empty());
    // Reads never delete.
    assert_eq!(raw_count(&path), 1);
    // Any write purges it.
    store
        .put(
            "other",
            b"k",
            Bytes::from_static(b"v"),
            PutOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(raw_count(&path), 1);
    assert_eq!(store.list_namespaces().await.unwrap(), vec!["other"]);
}

#[tokio::test]
async fn two_stores_on_one_file_share_data_and_never_reuse_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let (a, _clock, path) = file_store(&dir).await;
    let b =
        SqliteStore::open_with_clock(SqliteConfig::file(&path), Arc::new(ManualClock::default()))
            .await
            .unwrap();
    let mut seen = std::collections::HashSet::new();
    for i in 0..20u8 {
        let store = if i % 2 == 0 { &a } else { &b };
        let v = store
            .put_if(
                "n",
                &[i],
                Bytes::from(vec![i]),
                PutMode::Overwrite,
                PutOptions::default(),
            )
            .await
            .unwrap();
        assert!(seen.insert(v.to_string()), "token {v} issued twice");
    }
    // A token from one store is a valid condition on the other.
    let v = a.get_versioned("n", &[3]).await.unwrap().unwrap().version;
    let v2 = b
        .put_if(
            "n",
            &[3],
            Bytes::from_static(b"x"),
            PutMode::Update(v),
            PutOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        a.get_versioned("n", &[3]).await.unwrap().unwrap().version,
        v2
    );
    assert_eq!(
        a.scan("n", ScanRequest::all()).await.unwrap().entries.len(),
        20
    );
}
