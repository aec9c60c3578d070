//! The one place DuckDB errors become [`storage_core::Error`]s.
//!
//! DuckDB reports every failure through one generic C error code; what
//! went wrong is in the message, which starts with DuckDB's exception type
//! (`"Parser Error: ..."`, `"Catalog Error: ..."`, `"Constraint Error:
//! ..."`). The mapping therefore reads that prefix:
//!
//! | DuckDB says | storage error | why |
//! |---|---|---|
//! | `TransactionContext Error: ... conflict ...` | [`Error::Unavailable`] (retryable) | another transaction touched the same rows; retrying after it finished succeeds |
//! | `IO Error: Could not set lock on file ...` | [`Error::Unavailable`] (retryable) | another process holds the database file |
//! | `IO Error`, `INTERNAL Error`, `FATAL Error`, `Out of Memory Error`, `Serialization Error`, `Interrupt Error` | [`Error::Backend`] | the engine or the disk failed, not the input |
//! | every other exception (`Parser`, `Binder`, `Catalog`, `Conversion`, `Constraint`, `Invalid Input`, `Out of Range`, `Not implemented`, `Dependency`, `Mismatch Type`, ...) | [`Error::InvalidInput`] with DuckDB's message | the SQL or its parameters were wrong |
//! | the driver's own input checks (wrong parameter count, NUL in SQL, several statements) | [`Error::InvalidInput`] | |
//! | anything else | [`Error::Backend`] | |

use storage_core::{Context, Error};

/// The exception types that mean "the engine or the machine failed".
const BACKEND_FAILURES: &[&str] = &[
    "IO Error",
    "INTERNAL Error",
    "FATAL Error",
    "Out of Memory Error",
    "Serialization Error",
    "Interrupt Error",
];

/// Maps a duckdb error for the operation in `ctx` (see the module docs).
pub(crate) fn map_err(ctx: impl Into<Context>, e: duckdb::Error) -> Error {
    let ctx = ctx.into();
    match &e {
        duckdb::Error::DuckDBFailure(_, message) => {
            let message = message.clone().unwrap_or_else(|| e.to_string());
            classify(ctx, message, e)
        }
        duckdb::Error::InvalidParameterCount(..)
        | duckdb::Error::InvalidParameterName(_)
        | duckdb::Error::InvalidParameterIndex(_)
        | duckdb::Error::MultipleStatement
        | duckdb::Error::NulError(_)
        | duckdb::Error::Utf8Error(_)
        | duckdb::Error::ToSqlConversionFailure(_)
        | duckdb::Error::IntegralValueOutOfRange(..)
        | duckdb::Error::InvalidPath(_) => Error::invalid(ctx, e.to_string()),
        _ => Error::Backend {
            ctx,
            source: Box::new(e),
        },
    }
}

/// Classifies a DuckDB failure by its message.
fn classify(ctx: Context, message: String, e: duckdb::Error) -> Error {
    if is_retryable(&message) {
        return Error::Unavailable {
            ctx,
            source: Box::new(e),
        };
    }
    if BACKEND_FAILURES.iter().any(|p| message.starts_with(p)) {
        return Error::Backend {
            ctx,
            source: Box::new(e),
        };
    }
    Error::invalid(ctx, message)
}

/// Whether a DuckDB message describes a transient condition: a write-write
/// conflict between transactions, or a database file locked by another
/// process.
pub(crate) fn is_retryable(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    (message.starts_with("TransactionContext Error") && lower.contains("conflict"))
        || (message.starts_with("IO Error") && lower.contains("could not set lock"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(msg: &str) -> duckdb::Error {
        duckdb::Error::DuckDBFailure(
            duckdb::ffi::Error::new(duckdb::ffi::DuckDBError),
            Some(msg.to_owned()),
        )
    }

    #[test]
    fn messages_are_classified_by_exception_type() {
        let ctx = || Context::new("execute", "duckdb");
        assert!(matches!(
            map_err(ctx(), failure("Parser Error: syntax error at or near \"SELEKT\"")),
            Error::InvalidInput { reason, .. } if reason.contains("SELEKT")
        ));
        assert!(matches!(
            map_err(
                ctx(),
                failure("Catalog Error: Table with name x does not exist!")
            ),
            Error::InvalidInput { .. }
        ));
        assert!(matches!(
            map_err(
                ctx(),
                failure(
                    "TransactionContext Error: Catalog write-write conflict on create with \"t\""
                )
            ),
            Error::Unavailable { .. }
        ));
        assert!(matches!(
            map_err(ctx(), failure("IO Error: Could not set lock on file \"x\"")),
            Error::Unavailable { .. }
        ));
        assert!(matches!(
            map_err(ctx(), failure("IO Error: No space left on device")),
            Error::Backend { .. }
        ));
        assert!(matches!(
            map_err(ctx(), duckdb::Error::InvalidParameterCount(1, 2)),
            Error::InvalidInput { .. }
        ));
        assert!(matches!(
            map_err(ctx(), duckdb::Error::QueryReturnedNoRows),
            Error::Backend { .. }
        ));
    }
}
