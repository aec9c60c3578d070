//! `storage check URL`: the conformance suite against the store a URL
//! names, each case on an isolated store derived from it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use conformance::{Fixture, Harness};
use parking_lot::Mutex;
use storage_core::{Capabilities, ManualClock};

use crate::location::{DbPath, Location};
use crate::store::Store;

/// A conformance [`Harness`] over a URL. Every fixture is a new store next
/// to the one the URL names, never the store itself:
///
/// | URL | each case gets |
/// |---|---|
/// | `memory://…` | a new private memory store (a `snapshot` file is not read or written) |
/// | `sqlite:///dir/db`, `duckdb:///dir/db` | a new database in a new directory `dir/.storage-check-<pid>-<n>/`, removed after the case |
/// | `…::memory:` | a new in-memory database |
/// | `redis://…?prefix=P`, `redis+cluster://…` | key prefix `P-check-<pid>-<n>`, all of whose keys are deleted after the case |
/// | `s3://bucket/prefix` | object prefix `prefix/check-<pid>-<n>`, emptied after the case |
/// | `file:///dir` | directory `dir/.storage-check-<pid>-<n>`, removed after the case |
///
/// The harness's name is the backend label ([`Location::label`]), the
/// name the conformance runner's own harness of that backend has, so the
/// two matrices can be compared line by line.
#[derive(Debug)]
pub struct UrlHarness {
    location: Location,
    capabilities: Capabilities,
    next: AtomicU64,
    open: Mutex<HashMap<usize, (Store, Option<PathBuf>)>>,
}

impl UrlHarness {
    /// A harness for `location`, declaring `capabilities`.
    pub fn new(location: Location, capabilities: Capabilities) -> UrlHarness {
        UrlHarness {
            location,
            capabilities,
            next: AtomicU64::new(0),
            open: Mutex::new(HashMap::new()),
        }
    }

    /// The isolated location of fixture `n`, and the directory to remove
    /// after it.
    fn derive(&self, n: u64) -> (Location, Option<PathBuf>) {
        let tag = format!("check-{}-{n}", std::process::id());
        let scratch = |dir: &Path| dir.join(format!(".storage-{tag}"));
        match &self.location {
            Location::Memory { .. } => (Location::Memory { snapshot: None }, None),
            Location::Sqlite {
                db,
                durability_normal,
                busy_timeout,
                readers,
            } => {
                let (db, dir) = scratch_db(db, &scratch);
                (
                    Location::Sqlite {
                        db,
                        durability_normal: *durability_normal,
                        busy_timeout: *busy_timeout,
                        readers: *readers,
                    },
                    dir,
                )
            }
            Location::DuckDb { db, threads } => {
                let (db, dir) = scratch_db(db, &scratch);
                (
                    Location::DuckDb {
                        db,
                        threads: *threads,
                    },
                    dir,
                )
            }
            Location::Redis {
                nodes,
                cluster,
                prefix,
            } => (
                Location::Redis {
                    nodes: nodes.clone(),
                    cluster: *cluster,
                    prefix: format!("{prefix}-{tag}"),
                },
                None,
            ),
            Location::S3 {
                bucket,
                prefix,
                endpoint,
                region,
            } => (
                Location::S3 {
                    bucket: bucket.clone(),
                    prefix: if prefix.is_empty() {
                        tag
                    } else {
                        format!("{prefix}/{tag}")
                    },
                    endpoint: endpoint.clone(),
                    region: region.clone(),
                },
                None,
            ),
            Location::Dir { path } => {
                let dir = scratch(path);
                (Location::Dir { path: dir.clone() }, Some(dir))
            }
        }
    }
}

fn scratch_db(db: &DbPath, scratch: &dyn Fn(&Path) -> PathBuf) -> (DbPath, Option<PathBuf>) {
    match db {
        DbPath::Memory => (DbPath::Memory, None),
        DbPath::File(path) => {
            let parent = path.parent().unwrap_or(Path::new("."));
            let dir = scratch(parent);
            let file = path.file_name().map_or_else(
                || PathBuf::from("store"),
                |n| PathBuf::from(n.to_os_string()),
            );
            (DbPath::File(dir.join(file)), Some(dir))
        }
    }
}

#[async_trait]
impl Harness for UrlHarness {
    fn name(&self) -> String {
        self.location.label().to_owned()
    }

    fn capabilities(&self) -> Capabilities {
        self.capabilities
    }

    async fn open(&self) -> Result<Fixture, String> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let (location, dir) = self.derive(n);
        if let Some(d) = &dir {
            std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
        }
        let clock = ManualClock::default();
        let store = crate::open::open_location(location, Arc::new(clock.clone()))
            .await
            .map_err(|e| e.to_string())?;
        let fixture = Fixture {
            clock,
            kv: Some(store.kv.clone()),
            atomic: Some(store.atomic.clone()),
            queue: Some(store.queue.clone()),
            sql: Some(store.sql.clone()),
        };
        self.open.lock().insert(key(&fixture), (store, dir));
        Ok(fixture)
    }

    async fn close(&self, fixture: Fixture) {
        let entry = self.open.lock().remove(&key(&fixture));
        drop(fixture);
        if let Some((store, dir)) = entry {
            // Best effort: a case may have left the backend unreachable.
            let _ = store.destroy().await;
            drop(store);
            if let Some(d) = dir {
                let _ = std::fs::remove_dir_all(d);
            }
        }
    }
}

/// Fixtures are told apart by the address of their KV handle.
fn key(fixture: &Fixture) -> usize {
    fixture
        .kv
        .as_ref()
        .map_or(0, |kv| Arc::as_ptr(kv).cast::<()>() as usize)
}

/// The capabilities the backend at `location` declares, known without
/// opening it.
pub fn declared_capabilities(location: &Location) -> Option<Capabilities> {
    match location {
        Location::Memory { .. } => Some(storage_memory::CAPABILITIES),
        #[cfg(feature = "sqlite")]
        Location::Sqlite { .. } => Some(storage_sqlite::CAPABILITIES),
        #[cfg(feature = "duckdb")]
        Location::DuckDb { .. } => Some(storage_duckdb::CAPABILITIES),
        #[cfg(feature = "redis")]
        Location::Redis { cluster: false, .. } => Some(storage_redis::CAPABILITIES),
        #[cfg(feature = "redis")]
        Location::Redis { cluster: true, .. } => Some(storage_redis::CLUSTER_CAPABILITIES),
        #[cfg(feature = "remote")]
        Location::S3 { .. } | Location::Dir { .. } => {
            Some(storage_remote::CONTENT_HASH_CAPABILITIES)
        }
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// Runs the conformance suite (cases whose `tier::case` name contains
/// `filter`, all if `None`) against `url` and returns the report. Not to
/// be called inside a tokio runtime (each case runs on its own).
///
/// # Errors
///
/// What [`Location::parse`] refuses.
pub fn check(
    url: &str,
    filter: Option<&str>,
    progress: impl FnMut(&str, &conformance::Case, &conformance::Outcome),
) -> Result<conformance::Report, crate::OpenError> {
    let location = Location::parse(url)?;
    let capabilities =
        declared_capabilities(&location).ok_or_else(|| crate::OpenError::MissingFeature {
            scheme: location.adapter().to_owned(),
            feature: location.adapter(),
        })?;
    let harness: Arc<dyn Harness> = Arc::new(UrlHarness::new(location, capabilities));
    let mut cases = conformance::suites::all();
    if let Some(f) = filter {
        cases.retain(|c| format!("{}::{}", c.tier.name(), c.name).contains(f));
    }
    Ok(conformance::run_report(&[harness], &cases, progress))
}
