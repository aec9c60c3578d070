//! Why a store could not be opened or used through the façade.

/// Opening a store from a URL, or asking it for a tier, failed. Every
/// message is one line, names the cause, and never contains a password or
/// a credential.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The text is not a URL, or not one of the forms the scheme takes.
    #[error("malformed store URL {url}: {reason}")]
    Malformed {
        /// The URL, password redacted.
        url: String,
        /// What is wrong and the expected form.
        reason: String,
    },
    /// No adapter answers this scheme.
    #[error(
        "unknown store URL scheme {scheme:?} (known: memory, sqlite, duckdb, redis, redis+cluster, s3, file)"
    )]
    UnknownScheme {
        /// The scheme.
        scheme: String,
    },
    /// The scheme's adapter is not compiled in.
    #[error(
        "{scheme}:// URLs need the `{feature}` cargo feature of the `storage` crate, which this build does not have"
    )]
    MissingFeature {
        /// The scheme.
        scheme: String,
        /// The feature to enable.
        feature: &'static str,
    },
    /// A query option is unknown or its value is invalid.
    #[error("store URL {url}: option {option:?}: {reason}")]
    BadOption {
        /// The URL, password redacted.
        url: String,
        /// The option.
        option: String,
        /// What is wrong.
        reason: String,
    },
    /// Something the URL does not say is missing from the environment
    /// (S3 credentials).
    #[error("{0}")]
    Environment(String),
    /// The backend does not implement the tier that was asked for.
    #[error("{backend} has no {tier} tier")]
    UnsupportedTier {
        /// Backend label (`duckdb-file`).
        backend: &'static str,
        /// `key-value`, `compare-and-swap`, `queue` or `SQL`.
        tier: &'static str,
    },
    /// The backend refused or could not be reached.
    #[error("{location}: {source}")]
    Backend {
        /// Where, password redacted.
        location: String,
        /// The store's error.
        #[source]
        source: storage_core::Error,
    },
    /// A local file the URL names (a memory store's snapshot) failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What happened.
        #[source]
        source: std::io::Error,
    },
}
