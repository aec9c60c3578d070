//! Opening: files are created and migrated, reopened, and bad files refused.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use storage_core::{Error, ManualClock};
use storage_sqlite::{schema::SCHEMA_VERSION, SqliteConfig, SqliteStore};

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::default())
}

#[tokio::test]
async fn a_new_file_is_created_migrated_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite");
    let store = SqliteStore::open_with_clock(SqliteConfig::file(&path), clock())
        .await
        .unwrap();
    drop(store);
    assert!(path.exists());
    let conn = rusqlite::Connection::open(&path).unwrap();
    let v: i64 = conn
        .query_row(
            "SELECT value FROM storage_meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(v, SCHEMA_VERSION);
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    drop(conn);
    SqliteStore::open_with_clock(SqliteConfig::file(&path), clock())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_invalid_input_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    let text = "these are not the pages you are looking for\n".repeat(200);
    std::fs::write(&path, &text).unwrap();
    let err = SqliteStore::open_with_clock(SqliteConfig::file(&path), clock())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err}");
    assert!(err.to_string().contains("not a SQLite database"), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
}

#[tokio::test]
async fn a_database_from_a_newer_schema_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite");
    drop(
        SqliteStore::open_with_clock(SqliteConfig::file(&path), clock())
            .await
            .unwrap(),
    );
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE storage_meta SET value = ?1 WHERE key = 'schema_version'",
        [SCHEMA_VERSION + 1],
    )
    .unwrap();
    drop(conn);
    let err = SqliteStore::open_with_clock(SqliteConfig::file(&path), clock())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err}");
    assert!(err.to_string().contains("newer than this build"), "{err}");
    let conn = rusqlite::Connection::open(&path).unwrap();
    let v: i64 = conn
        .query_row(
            "SELECT value FROM storage_meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(v, SCHEMA_VERSION + 1);
}

#[tokio::test]
async fn memory_stores_open() {
    SqliteStore::open_with_clock(SqliteConfig::memory(), clock())
        .await
        .unwrap();
}
