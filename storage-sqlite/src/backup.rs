//! Native online backup: a consistent copy of the whole database (KV,
//! queues and SQL tables) into another SQLite file, while the store stays
//! in use.

use std::path::{Path, PathBuf};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::Connection;
use storage_core::{At, Context, Error, Result};
use tracing::Instrument;

use crate::backend::SqliteStore;
use crate::config::{Location, BACKEND};
use crate::error::map_err;

impl SqliteStore {
    /// Copies the whole database into the SQLite file at `path` with
    /// SQLite's online backup API, replacing whatever database is there
    /// (the file is created if absent).
    ///
    /// The copy is one consistent snapshot: every page is copied in a
    /// single step inside one read transaction of a reader connection (the
    /// writer for in-memory stores), so a write that commits meanwhile is
    /// either wholly in the copy or not at all. On a file database WAL
    /// lets writers carry on while the copy is taken. The destination is
    /// written in one transaction of its own: a crash mid-backup leaves
    /// the previous contents of `path` intact. Open the copy with
    /// [`SqliteStore::open`] (tokens, expiries and queue state carry over)
    /// or any SQLite tool.
    ///
    /// # Errors
    ///
    /// `InvalidInput` when `path` is the store's own file or holds
    /// something that is not a SQLite database; `Unavailable` when the
    /// destination stays locked by another connection past the busy
    /// timeout; `Backend` for I/O failures.
    pub async fn backup_to(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref().to_path_buf();
        if let Location::File(own) = &self.inner.config.location {
            if same_file(own, &path) {
                return Err(Error::invalid(
                    Context::new("backup_to", BACKEND),
                    "the backup destination is the store's own database file",
                ));
            }
        }
        let busy_timeout = self.inner.config.busy_timeout;
        self.inner
            .db
            .read(Context::new("backup_to", BACKEND), move |src| {
                let at = At::new("backup_to", BACKEND);
                let mut dst = Connection::open(&path).map_err(|e| map_err(at, e))?;
                dst.busy_timeout(busy_timeout).map_err(|e| map_err(at, e))?;
                let backup = Backup::new(src, &mut dst).map_err(|e| map_err(at, e))?;
                // -1: every page in one step, so one consistent snapshot.
                match backup.step(-1).map_err(|e| map_err(at, e))? {
                    StepResult::Done => Ok(()),
                    other => Err(Error::Unavailable {
                        ctx: at.into(),
                        source: format!("the backup did not complete: {other:?}").into(),
                    }),
                }
            })
            .instrument(tracing::debug_span!(
                "backup",
                backend = BACKEND,
                op = "backup_to"
            ))
            .await
    }
}

/// Whether two paths name the same file (compared canonically when both
/// exist).
fn same_file(a: &Path, b: &Path) -> bool {
    let canonical = |p: &Path| -> PathBuf { p.canonicalize().unwrap_or_else(|_| p.to_path_buf()) };
    canonical(a) == canonical(b)
}
