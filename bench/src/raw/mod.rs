//! Raw drivers doing the adapters' work, one file per backend.

pub mod duckdb;
pub mod memory;
pub mod object;
pub mod redis;
pub mod sqlite;
