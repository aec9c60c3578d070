//! The memory backend has no SQL tier: every call is `Unsupported`.

use crate::backend::MemoryStore;
use crate::config::BACKEND;

storage_core::unsupported_sql_engine!(MemoryStore, BACKEND);
