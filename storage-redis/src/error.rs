//! The one place Redis errors become [`storage_core::Error`]s.

use storage_core::{Context, Error};

/// Maps a redis error for the operation in `ctx`:
/// - the server cannot be reached, the connection dropped, the cluster is
///   re-sharding (MOVED/ASK/TRYAGAIN/CLUSTERDOWN), the server is loading or
///   busy → retryable [`Error::Unavailable`];
/// - a key of the wrong type under our prefix (someone else wrote it) →
///   [`Error::InvalidInput`] naming the problem, nothing changed;
/// - anything else (script errors included) → [`Error::Backend`].
pub(crate) fn map_err(ctx: impl Into<Context>, e: redis::RedisError) -> Error {
    let ctx = ctx.into();
    if e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || e.is_cluster_error()
        || matches!(
            e.kind(),
            redis::ErrorKind::BusyLoadingError
                | redis::ErrorKind::TryAgain
                | redis::ErrorKind::ClusterDown
        )
    {
        return Error::Unavailable {
            ctx,
            source: Box::new(e),
        };
    }
    if e.kind() == redis::ErrorKind::TypeError || e.to_string().contains("WRONGTYPE") {
        return Error::invalid(
            ctx,
            format!("a key under this store's prefix holds an unexpected type: {e}"),
        );
    }
    Error::Backend {
        ctx,
        source: Box::new(e),
    }
}
