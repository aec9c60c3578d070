//! Harnesses for this workspace's own adapters.

mod memory;
mod sqlite;

pub use memory::MemoryHarness;
pub use sqlite::{SqliteHarness, SqliteMode};

use std::sync::Arc;

use crate::harness::Harness;

/// Every adapter of this workspace that can run here, on its embedded
/// defaults (no services needed for the ones listed today).
pub fn workspace_harnesses() -> Vec<Arc<dyn Harness>> {
    vec![
        Arc::new(MemoryHarness),
        Arc::new(SqliteHarness::new(SqliteMode::File)),
        Arc::new(SqliteHarness::new(SqliteMode::Memory)),
    ]
}
