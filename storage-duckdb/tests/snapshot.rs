//! Snapshots: the portable KV snapshot round-trips memory → DuckDB (file,
//! across a reopen) → memory losslessly; and the whole DuckDB database
//! (SQL objects of every type and the KV tier) exports to a directory and
//! imports into a fresh store without losing a value or a type.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use storage_core::snapshot::{self, ImportMode, Snapshot};
use storage_core::{
    AtomicKv, Clock, Error, KvStore, ManualClock, PutMode, PutOptions, ScanRequest, SqlEngine,
    SqlResult, SqlValue,
};
use storage_duckdb::{DuckDbConfig, DuckDbStore, EXPORT_FILE};
use storage_memory::MemoryStore;

/// Version tokens are store-specific and the backend name differs; the
/// rest must be identical.
fn comparable(bytes: &[u8]) -> Snapshot {
    let mut s = snapshot::decode(bytes).unwrap();
    s.backend = String::new();
    for entries in s.namespaces.values_mut() {
        for e in entries {
            e.version = None;
        }
    }
    s
}

async fn export(kv: &dyn KvStore, clock: &ManualClock) -> Vec<u8> {
    let mut out = Vec::new();
    snapshot::export(Some(kv), None, clock.now(), &mut out)
        .await
        .unwrap();
    out
}

#[tokio::test]
async fn kv_snapshot_round_trips_memory_duckdb_memory() {
    let clock = ManualClock::default();
    let mem = MemoryStore::with_clock(Arc::new(clock.clone()));
    // Binary keys in every byte range, empty values, expiring entries,
    // several pages.
    for i in 0..1_200u32 {
        mem.put(
            "many",
            &i.to_be_bytes(),
            Bytes::from(format!("v{i}")),
            PutOptions::default(),
        )
        .await
        .unwrap();
    }
    for k in [&[0x00][..], &[0x00, 0x00], &[0x7f], &[0x80], &[0xff, 0xff]] {
        mem.put("bin", k, Bytes::new(), PutOptions::default())
            .await
            .unwrap();
    }
    mem.put(
        "ttl",
        b"soon",
        Bytes::from_static(b"s"),
        PutOptions::ttl(Duration::from_secs(10)),
    )
    .await
    .unwrap();
    mem.put(
        "ttl",
        b"later",
        Bytes::from_static(b"l"),
        PutOptions::ttl(Duration::from_secs(3600)),
    )
    .await
    .unwrap();
    let original = export(&mem, &clock).await;

    // Into a DuckDB file on a clock carried over from the export.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("copy.duckdb");
    let dk_clock = ManualClock::new(clock.now());
    let dk = DuckDbStore::open_with_clock(DuckDbConfig::file(&path), Arc::new(dk_clock.clone()))
        .await
        .unwrap();
    // Something already there is replaced.
    dk.put("stale", b"x", Bytes::new(), PutOptions::default())
        .await
        .unwrap();
    snapshot::import(&original, Some(&dk), None, ImportMode::Replace)
        .await
        .unwrap();
    let via_duckdb = export(&dk, &dk_clock).await;
    assert_eq!(comparable(&original), comparable(&via_duckdb));

    // Survives a reopen.
    drop(dk);
    let dk = DuckDbStore::open_with_clock(DuckDbConfig::file(&path), Arc::new(dk_clock.clone()))
        .await
        .unwrap();
    assert_eq!(
        comparable(&export(&dk, &dk_clock).await),
        comparable(&original)
    );

    // Back into memory, and both behave the same from here on.
    let back_clock = ManualClock::new(dk_clock.now());
    let back = MemoryStore::with_clock(Arc::new(back_clock.clone()));
    snapshot::import(&via_duckdb, Some(&back), None, ImportMode::Replace)
        .await
        .unwrap();
    assert_eq!(
        comparable(&export(&back, &back_clock).await),
        comparable(&original)
    );
    dk_clock.advance(Duration::from_secs(11));
    back_clock.advance(Duration::from_secs(11));
    for store in [&dk as &dyn KvStore, &back] {
        assert_eq!(store.get("ttl", b"soon").await.unwrap(), None);
        assert_eq!(
            store.get("ttl", b"later").await.unwrap(),
            Some(Bytes::from_static(b"l"))
        );
        let page = store.scan("bin", ScanRequest::all()).await.unwrap();
        let keys: Vec<&[u8]> = page.entries.iter().map(|e| &e.key[..]).collect();
        assert_eq!(
            keys,
            vec![&[0x00][..], &[0x00, 0x00], &[0x7f], &[0x80], &[0xff, 0xff]]
        );
    }
}

/// Every row of `table`, each column cast to VARCHAR too (so the check
/// covers DuckDB's own view of the values, not just this crate's).
async fn dump(store: &DuckDbStore, table: &str) -> (SqlResult, SqlResult) {
    let typed = store
        .execute(&format!("SELECT * FROM {table} ORDER BY id"), &[])
        .await
        .unwrap();
    let text = store
        .execute(
            &format!("SELECT COLUMNS(*)::VARCHAR, COLUMNS(*) IS NULL FROM {table} ORDER BY id"),
            &[],
        )
        .await
        .unwrap();
    (typed, text)
}

async fn describe(store: &DuckDbStore) -> SqlResult {
    store
        .execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns \
             WHERE table_schema = 'main' ORDER BY table_name, ordinal_position",
            &[],
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn the_whole_database_exports_and_imports_losslessly() {
    let clock = ManualClock::default();
    let source_dir = tempfile::tempdir().unwrap();
    let source = DuckDbStore::open_with_clock(
        DuckDbConfig::file(source_dir.path().join("source.duckdb")),
        Arc::new(clock.clone()),
    )
    .await
    .unwrap();
    source
        .execute_batch(
            "CREATE TYPE mood AS ENUM ('happy', 'sad');
             CREATE SEQUENCE ids START 10;
             CREATE TABLE everything (
                id INTEGER DEFAULT nextval('ids') PRIMARY KEY,
                b BOOLEAN, i8 TINYINT, u64 UBIGINT, h HUGEINT, uh UHUGEINT,
                f FLOAT, d DOUBLE, dec DECIMAL(38,10), s VARCHAR, bl BLOB,
                dt DATE, tm TIME, ts TIMESTAMP, tsn TIMESTAMP_NS, tz TIMESTAMPTZ,
                iv INTERVAL, u UUID, m mood, l VARCHAR[], a INTEGER[3],
                st STRUCT(x INTEGER, y VARCHAR), mp MAP(VARCHAR, DOUBLE), bits BIT);
             CREATE VIEW sad AS SELECT id FROM everything WHERE m = 'sad';
             CREATE MACRO plus_one(x) AS x + 1;",
        )
        .await
        .unwrap();
    source
        .execute_batch(
            "INSERT INTO everything (b, i8, u64, h, uh, f, d, dec, s, bl, dt, tm, ts, tsn, tz, iv, u, m, l, a, st, mp, bits) VALUES
             (true, -128, 18446744073709551615, -170141183460469231731687303715884105727,
              340282366920938463463374607431768211455, 0.1, 0.30000000000000004,
              1234567890123456789012345678.0123456789, '', ''::BLOB, '0045-03-15 (BC)',
              '23:59:59.999999', '2024-01-01 00:00:00.000001', '2024-01-01 00:00:00.123456789',
              '2024-01-01 00:00:00+05', INTERVAL '1 year -2 days 00:00:00.5',
              '123e4567-e89b-12d3-a456-426614174000', 'sad', ['a,b', NULL, '', 'x\"y'], [1, 2, 3],
              {'x': NULL, 'y': 'q''z'}, MAP {'k': 'nan'::DOUBLE}, '101'),
             (NULL, NULL, NULL, NULL, NULL, 'nan', '-inf', NULL, NULL, NULL, 'infinity', NULL,
              '-infinity', NULL, 'infinity', NULL, NULL, NULL, [], NULL, NULL, MAP {}, NULL),
             (false, 0, 0, 0, 0, -0.0, 5e-324, 0, E'line1\\nline2,\"q\"', '\\x00\\xFF'::BLOB,
              '2024-02-29', '00:00:00', '1970-01-01', '1970-01-01', '1970-01-01 00:00:00+00',
              INTERVAL '0 seconds', '00000000-0000-0000-0000-000000000000', 'happy', NULL,
              [NULL, NULL, NULL], {'x': 1, 'y': NULL}, NULL, '0');",
        )
        .await
        .unwrap();
    // KV data lives in the same database and travels with it.
    source
        .put(
            "meta",
            b"k1",
            Bytes::from_static(b"v1"),
            PutOptions::default(),
        )
        .await
        .unwrap();
    let v2 = source
        .put_if(
            "meta",
            b"k2",
            Bytes::from_static(b"v2"),
            PutMode::Create,
            PutOptions::ttl(Duration::from_secs(60)),
        )
        .await
        .unwrap();

    let export_dir = tempfile::tempdir().unwrap();
    let target_path = export_dir.path().join("export");
    let file = source.export_database(&target_path).await.unwrap();
    assert_eq!(file, target_path.join(EXPORT_FILE));
    // A second export into the same directory is refused, not overwritten.
    assert!(matches!(
        source.export_database(&target_path).await,
        Err(Error::InvalidInput { .. })
    ));
    // The source keeps working after the export.
    source
        .execute("INSERT INTO everything (b) VALUES (true)", &[])
        .await
        .unwrap();

    // Import into a fresh in-memory store.
    let target = DuckDbStore::open_with_clock(DuckDbConfig::memory(), Arc::new(clock.clone()))
        .await
        .unwrap();
    target.import_database(&target_path).await.unwrap();

    // Same schema (types included) and same values, row by row.
    assert_eq!(describe(&target).await, describe(&source).await);
    source
        .execute("DELETE FROM everything WHERE id = 13", &[])
        .await
        .unwrap();
    let (typed_src, text_src) = dump(&source, "everything").await;
    let (typed_dst, text_dst) = dump(&target, "everything").await;
    assert_eq!(typed_dst.columns, typed_src.columns);
    assert_eq!(
        format!("{:?}", typed_dst.rows),
        format!("{:?}", typed_src.rows)
    );
    assert_eq!(text_dst, text_src);
    // Views, macros, enum types and the sequence's position came along.
    let r = target
        .execute("SELECT plus_one(id) FROM sad", &[])
        .await
        .unwrap();
    assert_eq!(r.rows, vec![vec![SqlValue::Integer(11)]]);
    let r = target
        .execute(
            "INSERT INTO everything (m) VALUES ('happy') RETURNING id, m",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        r.rows,
        vec![vec![SqlValue::Integer(13), SqlValue::Text("happy".into())]]
    );
    // The KV tier came along too: values, tokens and expiries.
    assert_eq!(
        target.get("meta", b"k1").await.unwrap(),
        Some(Bytes::from_static(b"v1"))
    );
    let v3 = target
        .put_if(
            "meta",
            b"k2",
            Bytes::from_static(b"v3"),
            PutMode::Update(v2.clone()),
            PutOptions::default(),
        )
        .await
        .unwrap();
    assert_ne!(v3, v2);
    clock.advance(Duration::from_secs(61));
    assert_eq!(
        target.get("meta", b"k2").await.unwrap(),
        Some(Bytes::from_static(b"v3"))
    );
    assert_eq!(source.get("meta", b"k2").await.unwrap(), None);

    // Importing into a store that is not empty is refused and changes
    // nothing.
    let before = format!("{:?}", dump(&target, "everything").await);
    assert!(matches!(
        target.import_database(&target_path).await,
        Err(Error::InvalidInput { .. })
    ));
    // (Compared as text: NaN is not equal to itself.)
    assert_eq!(format!("{:?}", dump(&target, "everything").await), before);
}
