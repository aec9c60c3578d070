//! Redis has no SQL tier: every call is `Unsupported`.

use crate::backend::RedisStore;
use crate::config::BACKEND;

storage_core::unsupported_sql_engine!(RedisStore, BACKEND);
