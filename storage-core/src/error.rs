//! The one public error type of the storage family.
//!
//! Variants are named for what the caller does next (retry, report a missing
//! item, re-read and retry a conditional write, fix the input, pick another
//! backend). Every variant carries a [`Context`] naming the operation, the
//! backend and — where there is one — the namespace or queue, so a message
//! read in a log is actionable on its own.

use std::fmt;

use crate::version::Version;

/// Boxed source error from a driver.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Result alias used by every trait in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where an error happened: operation, backend and (optionally) the
/// namespace or queue it concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    /// Trait method name, e.g. `"put_if"` or `"receive"`.
    pub operation: &'static str,
    /// Backend name as reported by the store, e.g. `"memory"`.
    pub backend: &'static str,
    /// Namespace or queue name, when the operation has one.
    pub scope: Option<String>,
}

impl Context {
    /// Context without a namespace.
    pub fn new(operation: &'static str, backend: &'static str) -> Self {
        Self {
            operation,
            backend,
            scope: None,
        }
    }

    /// Context for an operation on one namespace or queue.
    pub fn scoped(
        operation: &'static str,
        backend: &'static str,
        scope: impl Into<String>,
    ) -> Self {
        Self {
            operation,
            backend,
            scope: Some(scope.into()),
        }
    }
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} on {}", self.operation, self.backend)?;
        if let Some(scope) = &self.scope {
            write!(f, " ({scope:?})")?;
        }
        Ok(())
    }
}

/// A borrowed, allocation-free [`Context`] for hot paths: validators take
/// anything that converts into a `Context` and build the owned `Context` only when
/// they actually report an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct At<'a> {
    /// Trait method name.
    pub operation: &'static str,
    /// Backend name.
    pub backend: &'static str,
    /// Namespace or queue name, when the operation has one.
    pub scope: Option<&'a str>,
}

impl<'a> At<'a> {
    /// An operation on one namespace or queue.
    pub fn scoped(operation: &'static str, backend: &'static str, scope: &'a str) -> Self {
        At {
            operation,
            backend,
            scope: Some(scope),
        }
    }

    /// An operation without a namespace.
    pub fn new(operation: &'static str, backend: &'static str) -> Self {
        At {
            operation,
            backend,
            scope: None,
        }
    }
}

impl From<&Context> for Context {
    fn from(c: &Context) -> Self {
        c.clone()
    }
}

impl From<At<'_>> for Context {
    fn from(at: At<'_>) -> Self {
        Context {
            operation: at.operation,
            backend: at.backend,
            scope: at.scope.map(str::to_owned),
        }
    }
}

/// Formats the optional current version of a [`Error::Conflict`].
fn describe_current(current: &Option<Version>) -> String {
    match current {
        Some(v) => format!("current version {v}"),
        None => "the key is absent".to_owned(),
    }
}

/// Formats the optional failed operation index of a [`Error::Conflict`].
fn describe_index(index: &Option<usize>) -> String {
    match index {
        Some(i) => format!(" at transaction operation #{i}"),
        None => String::new(),
    }
}

/// Every error a storage backend reports.
///
/// `#[non_exhaustive]`: match the variants you act on and keep a fallback arm.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The namespace, queue, key or message does not exist.
    #[error("{ctx}: not found: {what}")]
    NotFound {
        /// Where it happened.
        ctx: Context,
        /// What was missing.
        what: String,
    },
    /// A create-only operation found the item already there (or, for
    /// queues, there with a different configuration).
    #[error("{ctx}: already exists: {what}")]
    AlreadyExists {
        /// Where it happened.
        ctx: Context,
        /// What was already there.
        what: String,
    },
    /// A conditional write's condition did not hold. Nothing was changed.
    #[error("{ctx}: condition failed{}: {}", describe_index(.index), describe_current(.current))]
    Conflict {
        /// Where it happened.
        ctx: Context,
        /// The version the key had when the condition was checked
        /// (`None` when it was absent).
        current: Option<Version>,
        /// For transactions: the index of the first operation whose
        /// condition failed.
        index: Option<usize>,
    },
    /// A queue receipt belongs to an earlier delivery (the message was
    /// received again, deleted or expired). Nothing was changed.
    #[error("{ctx}: stale receipt: {receipt}")]
    StaleReceipt {
        /// Where it happened.
        ctx: Context,
        /// The receipt that was presented.
        receipt: String,
    },
    /// The input broke a documented rule (empty or over-limit key, bad
    /// namespace, malformed SQL, ...). Nothing was written.
    #[error("{ctx}: invalid input: {reason}")]
    InvalidInput {
        /// Where it happened.
        ctx: Context,
        /// Which rule was broken.
        reason: String,
    },
    /// The backend does not implement this operation (see
    /// [`Capabilities`](crate::Capabilities)).
    #[error("{operation} is not supported by the {backend} backend")]
    Unsupported {
        /// Trait method name.
        operation: &'static str,
        /// Backend name.
        backend: &'static str,
    },
    /// The backend could not be reached or was temporarily busy; retrying
    /// later may succeed.
    #[error("{ctx}: backend unavailable: {source}")]
    Unavailable {
        /// Where it happened.
        ctx: Context,
        /// The transport or driver error.
        #[source]
        source: BoxError,
    },
    /// Any other driver failure; not retryable.
    #[error("{ctx}: backend error: {source}")]
    Backend {
        /// Where it happened.
        ctx: Context,
        /// The driver error.
        #[source]
        source: BoxError,
    },
}

impl Error {
    /// Whether retrying the same call later may succeed. True for
    /// [`Error::Unavailable`] only: a conflict needs a re-read first, not a
    /// blind retry.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Unavailable { .. })
    }

    /// Shorthand for [`Error::InvalidInput`].
    pub fn invalid(ctx: impl Into<Context>, reason: impl Into<String>) -> Self {
        Error::InvalidInput {
            ctx: ctx.into(),
            reason: reason.into(),
        }
    }

    /// Shorthand for [`Error::NotFound`].
    pub fn not_found(ctx: Context, what: impl Into<String>) -> Self {
        Error::NotFound {
            ctx,
            what: what.into(),
        }
    }

    /// Shorthand for [`Error::Unsupported`].
    pub fn unsupported(operation: &'static str, backend: &'static str) -> Self {
        Error::Unsupported { operation, backend }
    }

    /// The context of this error, if the variant has one.
    pub fn context(&self) -> Option<&Context> {
        match self {
            Error::NotFound { ctx, .. }
            | Error::AlreadyExists { ctx, .. }
            | Error::Conflict { ctx, .. }
            | Error::StaleReceipt { ctx, .. }
            | Error::InvalidInput { ctx, .. }
            | Error::Unavailable { ctx, .. }
            | Error::Backend { ctx, .. } => Some(ctx),
            Error::Unsupported { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_operation_backend_and_scope() {
        let e = Error::invalid(Context::scoped("put", "memory", "users"), "key is empty");
        assert_eq!(
            e.to_string(),
            "put on memory (\"users\"): invalid input: key is empty"
        );
        let e = Error::Conflict {
            ctx: Context::scoped("transact", "memory", "t"),
            current: None,
            index: Some(2),
        };
        assert_eq!(
            e.to_string(),
            "transact on memory (\"t\"): condition failed at transaction operation #2: the key is absent"
        );
    }

    #[test]
    fn only_unavailable_is_retryable() {
        let ctx = Context::new("get", "x");
        assert!(Error::Unavailable {
            ctx: ctx.clone(),
            source: "connection refused".into()
        }
        .is_retryable());
        assert!(!Error::Backend {
            ctx: ctx.clone(),
            source: "disk full".into()
        }
        .is_retryable());
        assert!(!Error::Conflict {
            ctx,
            current: None,
            index: None
        }
        .is_retryable());
    }
}
