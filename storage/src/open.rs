//! From a [`Location`] to a [`Store`]: one function per adapter, each
//! compiled only with its feature.

use std::sync::Arc;

use storage_core::{SharedClock, SystemClock};

use crate::error::OpenError;
use crate::location::Location;
use crate::store::Store;

/// Opens the store `url` names, on the system clock.
///
/// # Errors
///
/// See [`open_with_clock`].
pub async fn open(url: &str) -> Result<Store, OpenError> {
    open_with_clock(url, Arc::new(SystemClock)).await
}

/// Opens the store `url` names; every time-based semantic (TTL,
/// visibility, delays, dedup windows) reads `clock`.
///
/// # Errors
///
/// Everything [`Location::parse`] refuses; [`OpenError::Environment`] for
/// missing S3 credentials; [`OpenError::Backend`] when the backend
/// refuses to open (unreachable server, unreadable file);
/// [`OpenError::Io`] / [`OpenError::Backend`] for a memory store's
/// snapshot file that cannot be read or imported.
pub async fn open_with_clock(url: &str, clock: SharedClock) -> Result<Store, OpenError> {
    open_location(Location::parse(url)?, clock).await
}

/// Opens a parsed location.
///
/// # Errors
///
/// As [`open_with_clock`].
pub async fn open_location(location: Location, clock: SharedClock) -> Result<Store, OpenError> {
    let shown = location.to_string();
    let backend = |source| OpenError::Backend {
        location: shown.clone(),
        source,
    };
    match &location {
        #[cfg(feature = "memory")]
        Location::Memory { snapshot } => {
            let seed = match snapshot {
                Some(path) => crate::memory_file::read_if_present(path)?,
                None => None,
            };
            memory(location, seed, clock).await
        }
        #[cfg(feature = "sqlite")]
        Location::Sqlite {
            db,
            durability_normal,
            busy_timeout,
            readers,
        } => {
            use storage_sqlite::{Durability, SqliteConfig};
            let mut config = match db {
                crate::DbPath::File(path) => SqliteConfig::file(path),
                crate::DbPath::Memory => SqliteConfig::memory(),
            };
            if *durability_normal {
                config.durability = Durability::Normal;
            }
            if let Some(t) = busy_timeout {
                config.busy_timeout = *t;
            }
            if let Some(n) = readers {
                config.readers = *n;
            }
            sqlite(location, config, clock).await.map_err(backend)
        }
        #[cfg(feature = "duckdb")]
        Location::DuckDb { db, threads } => {
            use storage_duckdb::DuckDbConfig;
            let mut config = match db {
                crate::DbPath::File(path) => DuckDbConfig::file(path),
                crate::DbPath::Memory => DuckDbConfig::memory(),
            };
            if let Some(n) = threads {
                config = config.with_threads(*n);
            }
            duckdb(location, config, clock).await.map_err(backend)
        }
        #[cfg(feature = "redis")]
        Location::Redis {
            nodes,
            cluster,
            prefix,
        } => {
            use storage_redis::RedisConfig;
            let config = if *cluster {
                RedisConfig::cluster(nodes.clone(), prefix.clone())
            } else {
                RedisConfig::standalone(nodes.first().cloned().unwrap_or_default(), prefix.clone())
            };
            redis(location, config, clock).await.map_err(backend)
        }
        #[cfg(feature = "remote")]
        Location::Dir { path } => {
            let store =
                storage_remote::RemoteStore::local_dir(path, clock.clone()).map_err(backend)?;
            Ok(remote(location, store, clock))
        }
        #[cfg(feature = "remote")]
        Location::S3 {
            bucket,
            prefix,
            endpoint,
            region,
        } => {
            let config =
                crate::env::s3_config(bucket, prefix, endpoint.as_deref(), region.as_deref())?;
            let store = storage_remote::RemoteStore::s3(&config, clock.clone()).map_err(backend)?;
            Ok(remote(location, store, clock))
        }
        #[allow(unreachable_patterns)]
        other => Err(OpenError::MissingFeature {
            scheme: other.adapter().to_owned(),
            feature: other.adapter(),
        }),
    }
}

#[cfg(feature = "memory")]
async fn memory(
    location: Location,
    seed: Option<Vec<u8>>,
    clock: SharedClock,
) -> Result<Store, OpenError> {
    let store = storage_memory::MemoryStore::with_clock(clock.clone());
    let opened = Store::new(location, clock, store, crate::store::Concrete::Generic);
    if let Some(bytes) = seed {
        storage_core::snapshot::import(
            &bytes,
            opened.kv_if_any(),
            opened.queue_if_any(),
            storage_core::snapshot::ImportMode::Replace,
        )
        .await
        .map_err(|e| opened.backend_error(e))?;
    }
    Ok(opened)
}

#[cfg(feature = "sqlite")]
async fn sqlite(
    location: Location,
    config: storage_sqlite::SqliteConfig,
    clock: SharedClock,
) -> storage_core::Result<Store> {
    let store = storage_sqlite::SqliteStore::open_with_clock(config, clock.clone()).await?;
    Ok(Store::new(
        location,
        clock,
        store,
        crate::store::Concrete::Generic,
    ))
}

#[cfg(feature = "duckdb")]
async fn duckdb(
    location: Location,
    config: storage_duckdb::DuckDbConfig,
    clock: SharedClock,
) -> storage_core::Result<Store> {
    let store = storage_duckdb::DuckDbStore::open_with_clock(config, clock.clone()).await?;
    Ok(Store::new(
        location,
        clock,
        store,
        crate::store::Concrete::Generic,
    ))
}

#[cfg(feature = "redis")]
async fn redis(
    location: Location,
    config: storage_redis::RedisConfig,
    clock: SharedClock,
) -> storage_core::Result<Store> {
    let store = storage_redis::RedisStore::connect_with_clock(config, clock.clone()).await?;
    Ok(Store::new(
        location,
        clock,
        store.clone(),
        crate::store::Concrete::Redis(store),
    ))
}

#[cfg(feature = "remote")]
fn remote(location: Location, store: storage_remote::RemoteStore, clock: SharedClock) -> Store {
    Store::new(
        location,
        clock,
        store.clone(),
        crate::store::Concrete::Remote(store),
    )
}
