//! The store handle, its connections, and how SQLite work leaves the async
//! runtime.
//!
//! # Concurrency model
//!
//! SQLite calls block, so every call runs on tokio's blocking pool
//! (`spawn_blocking`), never on a runtime worker. A store owns one
//! **writer** connection (behind a mutex: SQLite admits one writer per
//! file anyway) and, for file databases, a small pool of **reader**
//! connections that WAL lets run in parallel with the writer. Every
//! read-modify-write (conditional put, transaction, queue receive) is one
//! `BEGIN IMMEDIATE` transaction on the writer: the write lock is taken
//! before anything is read, so there is no check-then-write race between
//! connections or processes, and a lock held elsewhere past the busy
//! timeout surfaces as a retryable `Unavailable`.
//!
//! In-memory stores have only the writer (a second connection would be a
//! different database).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rusqlite::{Connection, OpenFlags};
use storage_core::blocking::run_blocking;
use storage_core::{Context, Result, SharedClock, SystemClock};

use crate::config::{Durability, Location, SqliteConfig, BACKEND};
use crate::error::map_err;

/// Connections onto one database.
#[derive(Debug)]
pub(crate) struct Db {
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
}

/// Prepared statements each connection keeps.
const STATEMENT_CACHE_CAPACITY: usize = 256;

fn configure(conn: &Connection, config: &SqliteConfig, writer: bool) -> rusqlite::Result<()> {
    conn.busy_timeout(config.busy_timeout)?;
    // Room for every statement the tiers prepare (18 scan shapes alone)
    // plus an emulator's own SQL, so hot statements are never re-prepared.
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
    if matches!(config.location, Location::File(_)) && writer {
        enable_wal(conn, config.busy_timeout)?;
    }
    let sync = match config.durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    };
    conn.execute_batch(&format!(
        "PRAGMA synchronous = {sync}; PRAGMA foreign_keys = OFF;"
    ))?;
    Ok(())
}

/// Puts the file in WAL mode. WAL persists in the file, so only the first
/// opener switches; but switching needs an exclusive lock and SQLite
/// answers `SQLITE_BUSY` at once (the busy handler is not consulted) when
/// another connection — say another process creating the same fresh file
/// — holds any lock. So: re-check and retry until the busy timeout.
fn enable_wal(conn: &Connection, timeout: Duration) -> rusqlite::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let attempt = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get::<_, String>(0))
            .and_then(|mode| {
                if mode.eq_ignore_ascii_case("wal") {
                    Ok(true)
                } else {
                    conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))
                        .map(|m| m.eq_ignore_ascii_case("wal"))
                }
            });
        match attempt {
            Ok(true) => return Ok(()),
            Err(e) if !is_busy(&e) || Instant::now() >= deadline => return Err(e),
            // Busy, or the switch did not take yet: another connection is
            // mid-switch. Back off briefly (we are on a blocking thread).
            _ => std::thread::sleep(Duration::from_millis(2)),
        }
        if Instant::now() >= deadline {
            // Last word: whatever SQLite says now.
            let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
            if mode.eq_ignore_ascii_case("wal") {
                return Ok(());
            }
            return Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                Some(format!("could not switch to WAL (journal mode {mode})")),
            ));
        }
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(f.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

impl Db {
    /// Opens (creating and migrating if needed) the database. Blocking.
    pub(crate) fn open(config: &SqliteConfig) -> Result<Db> {
        let ctx = || Context::new("open", BACKEND);
        let mut writer = match &config.location {
            Location::File(path) => Connection::open(path),
            Location::Memory => Connection::open_in_memory(),
        }
        .map_err(|e| map_err(ctx(), e))?;
        configure(&writer, config, true).map_err(|e| map_err(ctx(), e))?;
        crate::schema::migrate(&mut writer)?;
        let mut readers = Vec::new();
        if let Location::File(path) = &config.location {
            for _ in 0..config.readers {
                let r = Connection::open_with_flags(
                    path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(|e| map_err(ctx(), e))?;
                configure(&r, config, false).map_err(|e| map_err(ctx(), e))?;
                readers.push(Mutex::new(r));
            }
        }
        Ok(Db {
            writer: Mutex::new(writer),
            readers,
            next_reader: AtomicUsize::new(0),
        })
    }

    /// Runs `f` on the writer connection, off the async runtime. `f`
    /// opens its own transaction (usually `BEGIN IMMEDIATE`).
    pub(crate) async fn write<T, F>(self: &Arc<Self>, ctx: Context, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let db = self.clone();
        run_blocking(ctx, move || f(&mut db.writer.lock())).await
    }

    /// Runs `f` on a reader connection (the writer when there are none),
    /// off the async runtime. Reads see every committed write.
    pub(crate) async fn read<T, F>(self: &Arc<Self>, ctx: Context, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let db = self.clone();
        run_blocking(ctx, move || {
            if db.readers.is_empty() {
                return f(&db.writer.lock());
            }
            let i = db.next_reader.fetch_add(1, Ordering::Relaxed) % db.readers.len();
            match db.readers.get(i) {
                Some(r) => f(&r.lock()),
                None => f(&db.writer.lock()),
            }
        })
        .await
    }

    /// Runs `f` on the writer connection from blocking code (open, backup).
    // Unused for now: `backup_to` copies from a reader connection so it does
    // not block this process's writers.
    #[allow(dead_code)]
    pub(crate) fn with_writer<T>(&self, f: impl FnOnce(&mut Connection) -> T) -> T {
        f(&mut self.writer.lock())
    }
}

/// A SQLite store: every tier (KV, CAS, transactions, TTL, queues, SQL)
/// on one database file or in memory.
///
/// Cheap to clone; clones share the connections (and so the database:
/// SQL DDL through one clone is visible through all). Two stores opened
/// on the same file — in one process or several — see each other's
/// writes and coordinate through SQLite's locks.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) db: Arc<Db>,
    pub(crate) clock: SharedClock,
    pub(crate) config: SqliteConfig,
    pub(crate) waiters: crate::queue::Waiters,
}

impl SqliteStore {
    /// Opens a store on the system clock.
    pub async fn open(config: SqliteConfig) -> Result<Self> {
        SqliteStore::open_with_clock(config, Arc::new(SystemClock)).await
    }

    /// Opens a store reading time from `clock` (a
    /// [`ManualClock`](storage_core::ManualClock) in tests).
    pub async fn open_with_clock(config: SqliteConfig, clock: SharedClock) -> Result<Self> {
        let cfg = config.clone();
        let db = run_blocking(Context::new("open", BACKEND), move || Db::open(&cfg)).await?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                db: Arc::new(db),
                clock,
                config,
                waiters: crate::queue::Waiters::default(),
            }),
        })
    }

    /// Opens a store from blocking code (no runtime needed).
    pub fn open_blocking(config: SqliteConfig, clock: SharedClock) -> Result<Self> {
        let db = Db::open(&config)?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                db: Arc::new(db),
                clock,
                config,
                waiters: crate::queue::Waiters::default(),
            }),
        })
    }

    /// The store's configuration.
    pub fn config(&self) -> &SqliteConfig {
        &self.inner.config
    }
}
