//! Database export and import: the whole DuckDB database — the SQL tier's
//! tables, views, types, sequences and macros, and the KV tier's
//! `storage_*` tables — copied losslessly into a directory, and back into
//! an empty store.
//!
//! # Format and why
//!
//! [`DuckDbStore::export_database`] writes one native DuckDB database
//! file, [`EXPORT_FILE`], into the directory, with `ATTACH` + `COPY FROM
//! DATABASE`. The copy keeps every type exactly (DECIMAL digits, HUGEINT,
//! TIMESTAMP WITH TIME ZONE, INTERVAL, UUID, ENUM, LIST / STRUCT / MAP,
//! empty strings vs NULL, NaN and infinities), every constraint and the
//! sequences' positions, because it never leaves DuckDB's own storage
//! format. `EXPORT DATABASE` was measured and rejected: its default CSV
//! output re-imports empty strings (and empty BLOBs) as NULL, and its
//! Parquet output needs the `parquet` extension, which the bundled build
//! does not compile in. The export file opens with any DuckDB of the same
//! storage version (the `duckdb` CLI, Python, another `DuckDbStore`), and
//! is what the remote snapshot transport moves.
//!
//! The export is one statement, so one transaction: a consistent snapshot
//! even while other clones keep writing.
//!
//! # Paths in SQL
//!
//! `ATTACH` takes its path as a SQL string literal only (DuckDB accepts no
//! parameter there), so these two methods are the one place this crate
//! writes a caller's value into SQL text: as a single-quoted literal with
//! every `'` doubled, after refusing paths that are not UTF-8 or contain
//! NUL. Database aliases are generated here, never taken from input.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use duckdb::{Connection, OptionalExt};
use storage_core::{At, Context, Error, Result};
use tracing::Instrument;

use crate::backend::DuckDbStore;
use crate::config::BACKEND;
use crate::error::map_err;
use crate::schema::SCHEMA_VERSION;
use storage_core::blocking::run_blocking;

/// The file an export writes into its directory.
pub const EXPORT_FILE: &str = "database.duckdb";

/// Distinguishes the aliases of concurrent exports and imports.
static ATTACH_SEQ: AtomicU64 = AtomicU64::new(0);

/// A path as a SQL string literal (see the module docs).
fn path_literal(path: &Path, at: At<'_>) -> Result<String> {
    let Some(s) = path.to_str() else {
        return Err(Error::invalid(at, "the path is not valid UTF-8"));
    };
    if s.contains('\0') {
        return Err(Error::invalid(at, "the path contains a NUL byte"));
    }
    Ok(format!("'{}'", s.replace('\'', "''")))
}

/// An identifier, double-quoted.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn fresh_alias() -> String {
    format!(
        "storage_transfer_{}_{}",
        std::process::id(),
        ATTACH_SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// The name of the store's own database (its catalogue).
fn own_database(conn: &Connection) -> duckdb::Result<String> {
    conn.query_row("SELECT current_database()", [], |r| r.get(0))
}

/// Attaches `literal` as `alias`, runs `f`, and detaches again whatever
/// `f` returned.
fn with_attached<T>(
    conn: &Connection,
    literal: &str,
    alias: &str,
    read_only: bool,
    at: At<'_>,
    f: impl FnOnce(&Connection) -> Result<T>,
) -> Result<T> {
    let mode = if read_only { " (READ_ONLY)" } else { "" };
    conn.execute_batch(&format!("ATTACH {literal} AS {}{mode}", quote_ident(alias)))
        .map_err(|e| map_err(at, e))?;
    let result = f(conn);
    let detached = conn
        .execute_batch(&format!("DETACH {}", quote_ident(alias)))
        .map_err(|e| map_err(at, e));
    let value = result?;
    detached?;
    Ok(value)
}

impl DuckDbStore {
    /// Copies the whole database into `dir/`[`EXPORT_FILE`] (the directory
    /// is created if absent; an existing export file there is refused, not
    /// overwritten). Returns the file's path.
    ///
    /// The copy is one consistent snapshot, taken on a connection of its
    /// own while the store stays in use. See the module docs for why this
    /// is a native DuckDB file rather than `EXPORT DATABASE` output.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a path that is not UTF-8, contains NUL, or
    /// already holds an export; `Backend` for I/O failures.
    pub async fn export_database(&self, dir: impl AsRef<Path>) -> Result<PathBuf> {
        let dir = dir.as_ref().to_path_buf();
        let db = self.inner.db.clone();
        run_blocking(Context::new("export_database", BACKEND), move || {
            let at = At::new("export_database", BACKEND);
            let file = dir.join(EXPORT_FILE);
            let literal = path_literal(&file, at)?;
            std::fs::create_dir_all(&dir).map_err(|e| Error::Backend {
                ctx: at.into(),
                source: Box::new(e),
            })?;
            if file.exists() {
                return Err(Error::invalid(
                    at,
                    format!("{} already holds an export", dir.display()),
                ));
            }
            let conn = db.connect(at.into())?;
            let source = own_database(&conn).map_err(|e| map_err(at, e))?;
            let alias = fresh_alias();
            let copied = with_attached(&conn, &literal, &alias, false, at, |conn| {
                conn.execute_batch(&format!(
                    "COPY FROM DATABASE {} TO {}",
                    quote_ident(&source),
                    quote_ident(&alias)
                ))
                .map_err(|e| map_err(at, e))
            });
            if copied.is_err() {
                // Leave no half-written export behind.
                let _ = std::fs::remove_file(&file);
                let _ = std::fs::remove_file(file.with_extension("duckdb.wal"));
            }
            copied.map(|()| file)
        })
        .instrument(tracing::debug_span!(
            "backup",
            backend = BACKEND,
            op = "export_database"
        ))
        .await
    }

    /// Loads an export made by [`export_database`](Self::export_database)
    /// from `dir` into this store, which must be empty: no SQL tables,
    /// views, types, sequences or macros of its own and no KV entries.
    ///
    /// Everything is copied in one transaction: the store's empty
    /// `storage_*` tables are replaced by the export's (KV entries, their
    /// version tokens and expiries, and the version counter come back as
    /// they were), then every other object and row. A failure leaves the
    /// store as it was. Run it before the store is shared (right after
    /// opening): writes by other clones while it runs may conflict with it.
    ///
    /// # Errors
    ///
    /// `InvalidInput` when the store is not empty, when `dir` holds no
    /// export, or when the export's storage schema version differs from
    /// this build's; `Unavailable` (retryable) when a concurrent write
    /// conflicts; `Backend` for I/O failures.
    pub async fn import_database(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref().to_path_buf();
        let db = self.inner.db.clone();
        run_blocking(Context::new("import_database", BACKEND), move || {
            let at = At::new("import_database", BACKEND);
            let file = dir.join(EXPORT_FILE);
            let literal = path_literal(&file, at)?;
            if !file.is_file() {
                return Err(Error::invalid(
                    at,
                    format!("{} holds no export ({EXPORT_FILE})", dir.display()),
                ));
            }
            let conn = db.connect(at.into())?;
            let target = own_database(&conn).map_err(|e| map_err(at, e))?;
            let alias = fresh_alias();
            // The import brings its own version counter.
            db.replacing_counter(|| {
                with_attached(&conn, &literal, &alias, true, at, |conn| {
                    import_attached(conn, &target, &alias, at)
                })
            })
        })
        .instrument(tracing::debug_span!(
            "backup",
            backend = BACKEND,
            op = "import_database"
        ))
        .await
    }
}

/// Copies the attached export `alias` into `target` in one transaction.
fn import_attached(conn: &Connection, target: &str, alias: &str, at: At<'_>) -> Result<()> {
    let tx = conn.unchecked_transaction().map_err(|e| map_err(at, e))?;
    let foreign: i64 = tx
        .query_row(
            "SELECT (SELECT COUNT(*) FROM duckdb_tables() WHERE database_name = $1 AND table_name NOT LIKE 'storage\\_%' ESCAPE '\\')
                  + (SELECT COUNT(*) FROM duckdb_views() WHERE database_name = $1 AND NOT internal)
                  + (SELECT COUNT(*) FROM duckdb_sequences() WHERE database_name = $1)
                  + (SELECT COUNT(*) FROM duckdb_types() WHERE database_name = $1 AND NOT internal)
                  + (SELECT COUNT(*) FROM duckdb_functions() WHERE database_name = $1 AND NOT internal)",
            [target],
            |r| r.get(0),
        )
        .map_err(|e| map_err(at, e))?;
    let entries: i64 = tx
        .query_row("SELECT COUNT(*) FROM storage_kv", [], |r| r.get(0))
        .map_err(|e| map_err(at, e))?;
    if foreign > 0 || entries > 0 {
        return Err(Error::invalid(
            at,
            format!(
                "import_database needs an empty store; this one holds {foreign} SQL objects and {entries} KV entries"
            ),
        ));
    }
    let source = quote_ident(alias);
    let has_storage: bool = tx
        .query_row(
            "SELECT COUNT(*) > 0 FROM duckdb_tables() WHERE database_name = ? AND table_name = 'storage_meta'",
            [alias],
            |r| r.get(0),
        )
        .map_err(|e| map_err(at, e))?;
    if has_storage {
        let version: Option<i64> = tx
            .query_row(
                &format!(
                    "SELECT value FROM {source}.main.storage_meta WHERE key = 'schema_version'"
                ),
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| map_err(at, e))?;
        if version != Some(SCHEMA_VERSION) {
            return Err(Error::invalid(
                at,
                format!(
                    "the export has storage schema version {version:?}; this build reads {SCHEMA_VERSION}"
                ),
            ));
        }
        tx.execute_batch("DROP TABLE storage_kv; DROP TABLE storage_meta;")
            .map_err(|e| map_err(at, e))?;
    }
    tx.execute_batch(&format!(
        "COPY FROM DATABASE {source} TO {}",
        quote_ident(target)
    ))
    .map_err(|e| map_err(at, e))?;
    tx.commit().map_err(|e| map_err(at, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_become_quoted_literals() {
        let at = At::new("export_database", BACKEND);
        assert_eq!(
            path_literal(Path::new("/tmp/it's/x"), at).ok(),
            Some("'/tmp/it''s/x'".to_owned())
        );
        assert!(path_literal(Path::new("/tmp/a\0b"), at).is_err());
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
