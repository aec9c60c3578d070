//! Harnesses for this workspace's own adapters.

mod memory;

pub use memory::MemoryHarness;

use std::sync::Arc;

use crate::harness::Harness;

/// Every adapter of this workspace that can run here, on its embedded
/// defaults (no services needed for the ones listed today).
pub fn workspace_harnesses() -> Vec<Arc<dyn Harness>> {
    vec![Arc::new(MemoryHarness)]
}
