//! The one place SQLite errors become [`storage_core::Error`]s.

use rusqlite::ffi::ErrorCode;
use storage_core::{Context, Error};

/// Maps a rusqlite error for the operation in `ctx`.
///
/// - busy / locked (another connection or process holds the write lock
///   past the busy timeout) → retryable [`Error::Unavailable`];
/// - SQL the engine rejects (syntax, constraint, type mismatch, missing
///   table, too big) → [`Error::InvalidInput`] with the engine's message;
/// - a file that is not a database → [`Error::InvalidInput`];
/// - anything else (I/O, corruption, full disk) → [`Error::Backend`].
pub(crate) fn map_err(ctx: impl Into<Context>, e: rusqlite::Error) -> Error {
    let ctx = ctx.into();
    let code = e.sqlite_error_code().or_else(|| input_error_code(&e));
    match code {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => Error::Unavailable {
            ctx,
            source: Box::new(e),
        },
        Some(ErrorCode::NotADatabase) => Error::invalid(ctx, format!("not a SQLite database: {e}")),
        Some(
            ErrorCode::ConstraintViolation
            | ErrorCode::TypeMismatch
            | ErrorCode::TooBig
            | ErrorCode::ParameterOutOfRange
            | ErrorCode::ApiMisuse,
        ) => Error::invalid(ctx, e.to_string()),
        // SQLITE_ERROR is SQLite's "generic" code: syntax errors, missing
        // tables and columns, bad functions — all input problems.
        Some(ErrorCode::Unknown) => Error::invalid(ctx, e.to_string()),
        _ => match e {
            rusqlite::Error::InvalidParameterCount(..)
            | rusqlite::Error::InvalidParameterName(_)
            | rusqlite::Error::MultipleStatement
            | rusqlite::Error::InvalidColumnType(..)
            | rusqlite::Error::IntegralValueOutOfRange(..)
            | rusqlite::Error::Utf8Error(..)
            | rusqlite::Error::NulError(_) => Error::invalid(ctx, e.to_string()),
            other => Error::Backend {
                ctx,
                source: Box::new(other),
            },
        },
    }
}

/// The code inside a `SqlInputError` (syntax errors with their offset),
/// which rusqlite only has with `modern_sqlite` — on by our `bundled`.
#[cfg(feature = "bundled")]
fn input_error_code(e: &rusqlite::Error) -> Option<ErrorCode> {
    match e {
        rusqlite::Error::SqlInputError { error, .. } => Some(error.code),
        _ => None,
    }
}

/// Without `modern_sqlite` syntax errors arrive as `SqliteFailure`.
#[cfg(not(feature = "bundled"))]
fn input_error_code(_: &rusqlite::Error) -> Option<ErrorCode> {
    None
}
