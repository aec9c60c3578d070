//! The one place object_store errors become [`storage_core::Error`]s.

use std::error::Error as _;

use storage_core::{Context, Error};

/// What an object_store error means for the caller.
pub(crate) fn map_err(ctx: impl Into<Context>, e: object_store::Error) -> Error {
    let ctx = ctx.into();
    let text = chain_text(&e);
    match &e {
        // A missing bucket is a 404 too: it must not read as "absent".
        _ if text.contains("NoSuchBucket") => Error::not_found(ctx, "bucket does not exist"),
        object_store::Error::NotFound { .. } => Error::not_found(ctx, "object not found"),
        // Precondition / AlreadyExists reach here only where the caller did
        // not expect a condition to fail (callers that write conditionally
        // handle them first). S3's 409 ConditionalRequestConflict (a
        // concurrent conditional write) arrives as AlreadyExists after the
        // client's own retries: retryable.
        object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. } => {
            Error::Unavailable {
                ctx,
                source: Box::new(e),
            }
        }
        object_store::Error::NotSupported { .. } | object_store::Error::NotImplemented { .. } => {
            Error::Backend {
                ctx,
                source: Box::new(e),
            }
        }
        object_store::Error::InvalidPath { .. } => Error::invalid(ctx, e.to_string()),
        _ if is_transient(&e, &text) => Error::Unavailable {
            ctx,
            source: Box::new(e),
        },
        _ => Error::Backend {
            ctx,
            source: Box::new(e),
        },
    }
}

/// Whether the error is a transport failure, a 5xx, a throttle or a
/// conflicting concurrent request: retrying later may succeed.
fn is_transient(e: &object_store::Error, text: &str) -> bool {
    let mut src: Option<&(dyn std::error::Error + 'static)> = e.source();
    while let Some(s) = src {
        if let Some(http) = s.downcast_ref::<object_store::client::HttpError>() {
            use object_store::client::HttpErrorKind as K;
            if matches!(
                http.kind(),
                K::Connect | K::Request | K::Timeout | K::Interrupted
            ) {
                return true;
            }
        }
        if s.downcast_ref::<std::io::Error>().is_some_and(|io| {
            matches!(
                io.kind(),
                std::io::ErrorKind::TimedOut
                    | std::io::ErrorKind::Interrupted
                    | std::io::ErrorKind::WouldBlock
            )
        }) {
            return true;
        }
        src = s.source();
    }
    // The status is only reachable through the message (object_store's
    // retry error type is private).
    status_code(text).is_some_and(|s| s >= 500 || s == 429)
        || text.contains("ConditionalRequestConflict")
        || text.contains("SlowDown")
}

/// The HTTP status an object_store message reports, if any.
fn status_code(text: &str) -> Option<u16> {
    let rest = text.split("status code: ").nth(1)?;
    rest.get(..3)?.parse().ok()
}

/// The error and its sources, joined (for classification only; never
/// logged, and object_store messages carry no credentials).
fn chain_text(e: &object_store::Error) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}

/// A local I/O failure of the local-directory store, as object_store
/// reports it.
pub(crate) fn io_err(op: &str, path: &std::path::Path, e: std::io::Error) -> object_store::Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        return object_store::Error::NotFound {
            path: path.display().to_string(),
            source: Box::new(e),
        };
    }
    object_store::Error::Generic {
        store: "LocalDirStore",
        source: format!("{op} {}: {e}", path.display()).into(),
    }
}

/// Whether the error says the object is absent (and not the bucket).
pub(crate) fn is_absent(e: &object_store::Error) -> bool {
    matches!(e, object_store::Error::NotFound { .. }) && !chain_text(e).contains("NoSuchBucket")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generic(msg: &str) -> object_store::Error {
        object_store::Error::Generic {
            store: "S3",
            source: msg.to_owned().into(),
        }
    }

    #[test]
    fn statuses_map_to_what_the_caller_does_next() {
        let ctx = || Context::new("get", BACKEND_FOR_TESTS);
        assert!(map_err(
            ctx(),
            generic("Server returned non-2xx status code: 503 Service Unavailable: x")
        )
        .is_retryable());
        assert!(map_err(
            ctx(),
            generic("Server returned non-2xx status code: 500 Internal Server Error: x")
        )
        .is_retryable());
        assert!(!map_err(
            ctx(),
            generic("Server returned non-2xx status code: 400 Bad Request: x")
        )
        .is_retryable());
        assert!(matches!(
            map_err(
                ctx(),
                generic("status code: 404 Not Found: <Code>NoSuchBucket</Code>")
            ),
            Error::NotFound { .. }
        ));
        let conflict = object_store::Error::AlreadyExists {
            path: "p".into(),
            source: "ConditionalRequestConflict".into(),
        };
        assert!(map_err(ctx(), conflict).is_retryable());
    }

    const BACKEND_FOR_TESTS: &str = "remote";
}
