//! How the suite gets stores from a backend.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use storage_core::{AtomicKv, Capabilities, KvStore, ManualClock, QueueStore, SqlEngine};

/// A fresh, isolated set of handles onto one store, all reading `clock`.
///
/// A tier the backend's type does not implement at all is `None`; a tier it
/// implements only to answer `Unsupported` is `Some` (the suite checks
/// that answer).
#[derive(Clone)]
pub struct Fixture {
    /// The clock every handle reads; advance it instead of sleeping.
    pub clock: ManualClock,
    /// KV handle.
    pub kv: Option<Arc<dyn KvStore>>,
    /// CAS handle (usually the same store as `kv`).
    pub atomic: Option<Arc<dyn AtomicKv>>,
    /// Queue handle.
    pub queue: Option<Arc<dyn QueueStore>>,
    /// SQL handle.
    pub sql: Option<Arc<dyn SqlEngine>>,
}

impl fmt::Debug for Fixture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fixture")
            .field("clock", &self.clock)
            .field("kv", &self.kv.is_some())
            .field("atomic", &self.atomic.is_some())
            .field("queue", &self.queue.is_some())
            .field("sql", &self.sql.is_some())
            .finish()
    }
}

fn missing(tier: &str) -> crate::Failure {
    crate::Failure(format!("the harness's fixture has no {tier} handle"))
}

impl Fixture {
    /// The KV handle, or a failure naming what is missing.
    pub fn kv(&self) -> Result<Arc<dyn KvStore>, crate::Failure> {
        self.kv.clone().ok_or_else(|| missing("KV"))
    }
    /// The CAS handle.
    pub fn atomic(&self) -> Result<Arc<dyn AtomicKv>, crate::Failure> {
        self.atomic.clone().ok_or_else(|| missing("CAS"))
    }
    /// The queue handle.
    pub fn queue(&self) -> Result<Arc<dyn QueueStore>, crate::Failure> {
        self.queue.clone().ok_or_else(|| missing("queue"))
    }
    /// The SQL handle.
    pub fn sql(&self) -> Result<Arc<dyn SqlEngine>, crate::Failure> {
        self.sql.clone().ok_or_else(|| missing("SQL"))
    }
}

/// A backend under test.
///
/// # Contract
/// - `open` returns handles onto a store that no other open fixture sees
///   (a fresh in-memory store, a unique key prefix, a temporary file...),
///   all reading the fixture's `ManualClock`.
/// - `capabilities` is what the backend declares; the suite holds the
///   backend to it in both directions.
/// - `close` releases what `open` made (drop keys, delete files). It is
///   called after every case, passed or failed.
/// - `open` failing (server unreachable) fails the case: an unavailable
///   backend is a failure, not a skip.
///
/// # Example
///
/// A harness for the memory backend, run through one case of the suite:
///
/// ```
/// use std::sync::Arc;
/// use conformance::{Fixture, Harness, Outcome};
/// use storage_core::{Capabilities, ManualClock};
/// use storage_memory::MemoryStore;
///
/// struct Mine;
///
/// #[async_trait::async_trait]
/// impl Harness for Mine {
///     fn name(&self) -> String { "mine".into() }
///     fn capabilities(&self) -> Capabilities { storage_memory::CAPABILITIES }
///     async fn open(&self) -> Result<Fixture, String> {
///         let clock = ManualClock::default();
///         let s = Arc::new(MemoryStore::with_clock(Arc::new(clock.clone())));
///         Ok(Fixture { clock, kv: Some(s.clone()), atomic: Some(s.clone()), queue: Some(s), sql: None })
///     }
/// }
///
/// let case = conformance::suites::all()
///     .into_iter()
///     .find(|c| c.name == "concurrent_conditional_increments_end_at_exactly_the_number_of_successes")
///     .unwrap();
/// assert_eq!(conformance::run_case(&case, Arc::new(Mine)), Outcome::Pass);
/// ```
#[async_trait]
pub trait Harness: Send + Sync + 'static {
    /// Short backend label used in test names and the report (`memory`).
    fn name(&self) -> String;

    /// The backend's declared capabilities.
    fn capabilities(&self) -> Capabilities;

    /// A fresh isolated store.
    async fn open(&self) -> Result<Fixture, String>;

    /// Cleans up after a fixture.
    async fn close(&self, _fixture: Fixture) {}
}
