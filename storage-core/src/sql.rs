//! The SQL tier.

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::capabilities::SqlDialect;
use crate::error::Result;

/// A typed SQL value. Richer engine types map to these as each adapter
/// documents (e.g. decimals and timestamps as canonical text, lists and
/// structs as JSON text).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SqlValue {
    /// NULL.
    Null,
    /// Boolean.
    Bool(bool),
    /// 64-bit integer.
    Integer(i64),
    /// 64-bit float.
    Float(f64),
    /// Text.
    Text(String),
    /// Bytes.
    Blob(Bytes),
}

/// A result column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SqlColumn {
    /// Column name.
    pub name: String,
    /// Declared type name as the engine reports it (may be empty).
    pub type_name: String,
}

/// The result of one statement.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SqlResult {
    /// Columns (empty for statements that return no rows).
    pub columns: Vec<SqlColumn>,
    /// Rows of values, one per column.
    pub rows: Vec<Vec<SqlValue>>,
    /// Rows changed by INSERT / UPDATE / DELETE.
    pub rows_affected: u64,
}

/// A SQL database handle.
///
/// Needs [`Capabilities::sql`](crate::Capabilities::sql); stores without it
/// return [`Error::Unsupported`](crate::Error::Unsupported) from every
/// method.
///
/// # Contract
///
/// - Parameters are always bound (`?` placeholders), never spliced.
/// - A failing statement is `InvalidInput` with the engine's message and
///   leaves the database as it was (statement-level atomicity).
/// - Clones of a handle share one database: DDL through one is visible
///   through every other. Concurrent calls are safe.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use storage_core::{Error, SqlEngine};
/// // The memory backend has no SQL tier and says so.
/// let store = storage_memory::MemoryStore::new();
/// let err = store.execute("SELECT 1", &[]).await.unwrap_err();
/// assert!(matches!(err, Error::Unsupported { .. }));
/// # }
/// ```
#[async_trait]
pub trait SqlEngine: Send + Sync + 'static {
    /// The backend's name.
    fn backend_name(&self) -> &'static str;

    /// The dialect, or `None` when the tier is not implemented.
    fn dialect(&self) -> Option<SqlDialect>;

    /// Runs one statement with bound parameters.
    async fn execute(&self, sql: &str, params: &[SqlValue]) -> Result<SqlResult>;

    /// Runs several `;`-separated statements without parameters.
    async fn execute_batch(&self, sql: &str) -> Result<()>;
}
