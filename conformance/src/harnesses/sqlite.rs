//! The SQLite backend's harnesses: a fresh file in a temporary directory
//! per fixture, and a fresh in-memory database per fixture.

use std::sync::Arc;

use async_trait::async_trait;
use storage_core::{Capabilities, ManualClock};
use storage_sqlite::{SqliteConfig, SqliteStore};

use crate::harness::{Fixture, Harness};

/// Where the harness puts each fixture's database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqliteMode {
    /// A new file in a new temporary directory, removed on close.
    File,
    /// A new in-memory database.
    Memory,
}

/// Runs the suite on [`SqliteStore`].
#[derive(Debug)]
pub struct SqliteHarness {
    mode: SqliteMode,
    /// Temporary directories of open fixtures, removed on close (or when
    /// the harness is dropped).
    dirs: parking_lot::Mutex<Vec<tempfile::TempDir>>,
}

impl SqliteHarness {
    /// A harness of the given mode.
    pub fn new(mode: SqliteMode) -> Self {
        SqliteHarness {
            mode,
            dirs: parking_lot::Mutex::new(Vec::new()),
        }
    }
}

#[async_trait]
impl Harness for SqliteHarness {
    fn name(&self) -> String {
        match self.mode {
            SqliteMode::File => "sqlite-file".to_owned(),
            SqliteMode::Memory => "sqlite-memory".to_owned(),
        }
    }

    fn capabilities(&self) -> Capabilities {
        storage_sqlite::CAPABILITIES
    }

    async fn open(&self) -> Result<Fixture, String> {
        let config = match self.mode {
            SqliteMode::Memory => SqliteConfig::memory(),
            SqliteMode::File => {
                let dir =
                    tempfile::tempdir().map_err(|e| format!("cannot make a temp dir: {e}"))?;
                let config = SqliteConfig::file(dir.path().join("store.sqlite"));
                self.dirs.lock().push(dir);
                config
            }
        };
        let clock = ManualClock::default();
        let store = SqliteStore::open_with_clock(config, Arc::new(clock.clone()))
            .await
            .map_err(|e| e.to_string())?;
        Ok(Fixture {
            clock,
            kv: Some(Arc::new(store.clone())),
            atomic: Some(Arc::new(store.clone())),
            queue: Some(Arc::new(store.clone())),
            sql: Some(Arc::new(store)),
        })
    }

    async fn close(&self, fixture: Fixture) {
        drop(fixture);
        // Directories go when the harness goes; removing one under a
        // fixture that another thread still uses would break it.
    }
}
