//! Native online backup: the copy opens as a store with identical data
//! and passes SQLite's integrity check.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use storage_core::{
    AtomicKv, Error, KvStore, ManualClock, PutMode, PutOptions, ScanRequest, SqlEngine, SqlValue,
};
use storage_sqlite::{SqliteConfig, SqliteStore};

async fn fill(store: &SqliteStore) {
    for i in 0..200u32 {
        store
            .put(
                "bulk",
                &i.to_be_bytes(),
                Bytes::from(vec![u8::try_from(i % 256).unwrap(); 100]),
                PutOptions::default(),
            )
            .await
            .unwrap();
    }
    store
        .put(
            "ttl",
            b"k",
            Bytes::from_static(b"v"),
            PutOptions::ttl(Duration::from_secs(30)),
        )
        .await
        .unwrap();
    store
        .put_if(
            "cas",
            b"k",
            Bytes::from_static(b"v"),
            PutMode::Create,
            PutOptions::default(),
        )
        .await
        .unwrap();
    store
        .execute_batch(
            "CREATE TABLE emu (id INTEGER PRIMARY KEY, name TEXT, data BLOB);
             INSERT INTO emu VALUES (1, 'one', x'0001'), (2, 'two', NULL);",
        )
        .await
        .unwrap();
}

/// Every row of every table, as text, for comparing two databases.
fn dump(path: &Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut out = Vec::new();
    for table in ["storage_meta", "storage_kv", "emu"] {
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM {table} ORDER BY 1, 2"))
            .unwrap();
        let width = stmt.column_count();
        let rows = stmt
            .query_map([], |r| {
                let mut s = String::from(table);
                for i in 0..width {
                    s.push_str(&format!(" {:?}", r.get_ref(i)?));
                }
                Ok(s)
            })
            .unwrap();
        out.extend(rows.map(Result::unwrap));
    }
    out
}

fn integrity(path: &Path) -> String {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

async fn assert_same_store(a: &SqliteStore, b: &SqliteStore) {
    assert_eq!(
        a.list_namespaces().await.unwrap(),
        b.list_namespaces().await.unwrap()
    );
    for ns in a.list_namespaces().await.unwrap() {
        let req = ScanRequest::all().with_limit(10_000);
        assert_eq!(
            a.scan(&ns, req.clone()).await.unwrap(),
            b.scan(&ns, req).await.unwrap(),
            "namespace {ns}"
        );
    }
    let q = "SELECT * FROM emu ORDER BY id";
    assert_eq!(
        a.execute(q, &[]).await.unwrap(),
        b.execute(q, &[]).await.unwrap()
    );
}

#[tokio::test]
async fn a_file_store_backs_up_to_an_identical_consistent_copy() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.sqlite");
    let dst = dir.path().join("copy.sqlite");
    let clock = ManualClock::default();
    let store = SqliteStore::open_with_clock(SqliteConfig::file(&src), Arc::new(clock.clone()))
        .await
        .unwrap();
    fill(&store).await;
    store.backup_to(&dst).await.unwrap();

    assert_eq!(integrity(&dst), "ok");
    assert_eq!(dump(&dst), dump(&src));
    let copy = SqliteStore::open_with_clock(SqliteConfig::file(&dst), Arc::new(clock.clone()))
        .await
        .unwrap();
    assert_same_store(&store, &copy).await;
    // Tokens from the original are valid on the copy.
    let v = store.get_versioned("cas", b"k").await.unwrap().unwrap();
    copy.put_if(
        "cas",
        b"k",
        Bytes::from_static(b"w"),
        PutMode::Update(v.version),
        PutOptions::default(),
    )
    .await
    .unwrap();
    // The copy is independent of the original.
    assert_eq!(
        store.get("cas", b"k").await.unwrap(),
        Some(Bytes::from_static(b"v"))
    );
    // TTLs carried over as instants.
    clock.advance(Duration::from_secs(30));
    assert_eq!(copy.get("ttl", b"k").await.unwrap(), None);
}

#[tokio::test]
async fn a_backup_replaces_an_earlier_one_and_runs_beside_writers() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.sqlite");
    let dst = dir.path().join("copy.sqlite");
    let store =
        SqliteStore::open_with_clock(SqliteConfig::file(&src), Arc::new(ManualClock::default()))
            .await
            .unwrap();
    fill(&store).await;
    store.backup_to(&dst).await.unwrap();
    store.drop_namespace("bulk").await.unwrap();
    store
        .put(
            "late",
            b"k",
            Bytes::from_static(b"v"),
            PutOptions::default(),
        )
        .await
        .unwrap();

    // Back up while another task keeps writing: the copy is one snapshot.
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for i in 0..100u32 {
                store
                    .put(
                        "busy",
                        &i.to_be_bytes(),
                        Bytes::new(),
                        PutOptions::default(),
                    )
                    .await
                    .unwrap();
            }
        })
    };
    store.backup_to(&dst).await.unwrap();
    writer.await.unwrap();
    assert_eq!(integrity(&dst), "ok");
    let copy =
        SqliteStore::open_with_clock(SqliteConfig::file(&dst), Arc::new(ManualClock::default()))
            .await
            .unwrap();
    assert_eq!(copy.get("bulk", &0u32.to_be_bytes()).await.unwrap(), None);
    assert_eq!(
        copy.get("late", b"k").await.unwrap(),
        Some(Bytes::from_static(b"v"))
    );
    let busy = copy
        .scan("busy", ScanRequest::all())
        .await
        .unwrap()
        .entries
        .len();
    // A prefix of the writer's puts, in order (each put commits alone).
    for i in 0..busy {
        let k = u32::try_from(i).unwrap().to_be_bytes();
        assert!(copy.get("busy", &k).await.unwrap().is_some());
    }
}

#[tokio::test]
async fn a_memory_store_backs_up_to_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join("mem-copy.sqlite");
    let clock = ManualClock::default();
    let store = SqliteStore::open_with_clock(SqliteConfig::memory(), Arc::new(clock.clone()))
        .await
        .unwrap();
    fill(&store).await;
    store.backup_to(&dst).await.unwrap();
    assert_eq!(integrity(&dst), "ok");
    let copy = SqliteStore::open_with_clock(SqliteConfig::file(&dst), Arc::new(clock))
        .await
        .unwrap();
    assert_same_store(&store, &copy).await;
    let r = copy
        .execute("SELECT name FROM emu WHERE id = ?", &[SqlValue::Integer(1)])
        .await
        .unwrap();
    assert_eq!(r.rows, vec![vec![SqlValue::Text("one".into())]]);
}

#[tokio::test]
async fn backing_up_onto_itself_or_a_non_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.sqlite");
    let store =
        SqliteStore::open_with_clock(SqliteConfig::file(&src), Arc::new(ManualClock::default()))
            .await
            .unwrap();
    fill(&store).await;
    let e = store.backup_to(&src).await.unwrap_err();
    assert!(matches!(e, Error::InvalidInput { .. }), "{e}");
    let notes = dir.path().join("notes.txt");
    let text = "not a database\n".repeat(500);
    std::fs::write(&notes, &text).unwrap();
    let e = store.backup_to(&notes).await.unwrap_err();
    assert!(matches!(e, Error::InvalidInput { .. }), "{e}");
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), text);
    // The store is untouched and still works.
    assert_eq!(integrity(&src), "ok");
    store
        .put("after", b"k", Bytes::new(), PutOptions::default())
        .await
        .unwrap();
}
