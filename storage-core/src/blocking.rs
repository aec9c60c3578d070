//! Running a synchronous driver call off the async runtime.
//!
//! Embedded engines (SQLite, DuckDB) have blocking APIs; an adapter runs
//! every call on tokio's blocking pool so a slow query never stalls the
//! runtime's workers.

use crate::{Context, Error, Result};

/// Runs `f` on tokio's blocking pool and returns its result. If the work
/// panics or is cancelled, the caller gets a [`Error::Backend`] for `ctx`
/// instead of a panic of its own.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use storage_core::{blocking::run_blocking, Context};
///
/// let sum = run_blocking(Context::new("sum", "example"), || Ok(2 + 2)).await;
/// assert_eq!(sum.unwrap(), 4);
/// # }
/// ```
pub async fn run_blocking<T, F>(ctx: Context, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => Err(Error::Backend {
            ctx,
            source: Box::new(e),
        }),
    }
}
