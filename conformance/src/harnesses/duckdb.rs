//! The DuckDB backend's harnesses: a fresh database file in a temporary
//! directory per fixture (`duckdb-file`), and a fresh `:memory:` database
//! per fixture (`duckdb-memory`). Every tier handle is a clone of one
//! store, so the SQL cases also exercise the shared catalogue; the queue
//! handle is there to answer `Unsupported`, which the suite checks.

use std::sync::Arc;

use async_trait::async_trait;
use storage_core::{Capabilities, ManualClock};
use storage_duckdb::{DuckDbConfig, DuckDbStore};

use crate::harness::{Fixture, Harness};

/// Where the harness puts each fixture's database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DuckDbMode {
    /// A new file in a new temporary directory, removed with the harness.
    File,
    /// A new in-memory database.
    Memory,
}

/// Runs the suite on [`DuckDbStore`].
#[derive(Debug)]
pub struct DuckDbHarness {
    mode: DuckDbMode,
    /// Temporary directories of open fixtures, removed when the harness
    /// is dropped.
    dirs: parking_lot::Mutex<Vec<tempfile::TempDir>>,
}

impl DuckDbHarness {
    /// A harness of the given mode.
    pub fn new(mode: DuckDbMode) -> Self {
        DuckDbHarness {
            mode,
            dirs: parking_lot::Mutex::new(Vec::new()),
        }
    }
}

#[async_trait]
impl Harness for DuckDbHarness {
    fn name(&self) -> String {
        match self.mode {
            DuckDbMode::File => "duckdb-file".to_owned(),
            DuckDbMode::Memory => "duckdb-memory".to_owned(),
        }
    }

    fn capabilities(&self) -> Capabilities {
        storage_duckdb::CAPABILITIES
    }

    async fn open(&self) -> Result<Fixture, String> {
        let config = match self.mode {
            // Two threads per database: the runner opens many fixtures at
            // once, and DuckDB's default is one thread per core each.
            DuckDbMode::Memory => DuckDbConfig::memory().with_threads(2),
            DuckDbMode::File => {
                let dir =
                    tempfile::tempdir().map_err(|e| format!("cannot make a temp dir: {e}"))?;
                let config = DuckDbConfig::file(dir.path().join("store.duckdb")).with_threads(2);
                self.dirs.lock().push(dir);
                config
            }
        };
        let clock = ManualClock::default();
        let store = DuckDbStore::open_with_clock(config, Arc::new(clock.clone()))
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
