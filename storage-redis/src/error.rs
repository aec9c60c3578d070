//! The one place Redis errors become [`storage_core::Error`]s.

use storage_core::{Context, Error};

/// Maps a redis error for the operation in `ctx`:
/// - the server cannot be reached, the connection dropped, the cluster is
///   re-sharding (MOVED/ASK/TRYAGAIN/CLUSTERDOWN), the server is loading or
///   busy → retryable [`Error::Unavailable`];
/// - a key of the wrong type, or a counter holding a non-number, under our
///   prefix (someone else wrote it) → [`Error::InvalidInput`] naming the
///   problem, nothing changed;
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
    let text = e.to_string();
    // WRONGTYPE: a key of another type; "not an integer": INCRBY of a
    // counter someone overwrote with a non-number string. Either way the
    // data is not this store's.
    if e.kind() == redis::ErrorKind::TypeError
        || text.contains("WRONGTYPE")
        || text.contains("value is not an integer")
    {
        return Error::invalid(
            ctx,
            format!("a key under this store's prefix holds an unexpected type or value: {e}"),
        );
    }
    Error::Backend {
        ctx,
        source: Box::new(e),
    }
}
