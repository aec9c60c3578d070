//! The memory backend's harness.

use std::sync::Arc;

use async_trait::async_trait;
use storage_core::{Capabilities, ManualClock};
use storage_memory::MemoryStore;

use crate::harness::{Fixture, Harness};

/// Runs the suite on [`MemoryStore`]: a new store per fixture.
#[derive(Debug, Clone, Copy, Default)]
pub struct MemoryHarness;

#[async_trait]
impl Harness for MemoryHarness {
    fn name(&self) -> String {
        "memory".to_owned()
    }

    fn capabilities(&self) -> Capabilities {
        storage_memory::CAPABILITIES
    }

    async fn open(&self) -> Result<Fixture, String> {
        let clock = ManualClock::default();
        let store = MemoryStore::with_clock(Arc::new(clock.clone()));
        Ok(Fixture {
            clock,
            kv: Some(Arc::new(store.clone())),
            atomic: Some(Arc::new(store.clone())),
            queue: Some(Arc::new(store.clone())),
            sql: Some(Arc::new(store)),
        })
    }
}
