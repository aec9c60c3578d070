//! Redis has no SQL tier: every call is `Unsupported`.

use async_trait::async_trait;
use storage_core::{Error, Result, SqlDialect, SqlEngine, SqlResult, SqlValue};

use crate::backend::RedisStore;
use crate::config::BACKEND;

#[async_trait]
impl SqlEngine for RedisStore {
    fn backend_name(&self) -> &'static str {
        BACKEND
    }

    fn dialect(&self) -> Option<SqlDialect> {
        None
    }

    async fn execute(&self, _sql: &str, _params: &[SqlValue]) -> Result<SqlResult> {
        Err(Error::unsupported("execute", BACKEND))
    }

    async fn execute_batch(&self, _sql: &str) -> Result<()> {
        Err(Error::unsupported("execute_batch", BACKEND))
    }
}
