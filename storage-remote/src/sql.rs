//! Object storage has no SQL tier: every call is `Unsupported`. SQL
//! databases travel to object storage as files instead, by the snapshot
//! transport (`transport.rs`).

use crate::backend::RemoteStore;
use crate::config::BACKEND;

storage_core::unsupported_sql_engine!(RemoteStore, BACKEND);
