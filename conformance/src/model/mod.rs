//! Small reference models the property tests compare backends against.

pub mod kv;
pub mod queue;
