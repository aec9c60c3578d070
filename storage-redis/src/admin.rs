//! Administrative operations on a whole store (not part of any tier).

use storage_core::{Context, Result};

use crate::backend::RedisStore;
use crate::config::BACKEND;
use crate::error::map_err;

impl RedisStore {
    /// Deletes every key of this store's prefix (test cleanup; the
    /// namespace counters go too, so only use it on a store being
    /// discarded). Uses `SCAN`, never `KEYS`. On a cluster it cleans the
    /// node the connection routes `SCAN` to; use a standalone server or
    /// per-test prefixes there.
    pub async fn destroy(&self) -> Result<()> {
        let ctx = || Context::new("destroy", BACKEND);
        let mut conn = self.conn();
        for pattern in self.inner.keys.patterns() {
            let mut cursor: u64 = 0;
            loop {
                let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(500)
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| map_err(ctx(), e))?;
                for k in keys {
                    let _: i64 = redis::cmd("DEL")
                        .arg(&k)
                        .query_async(&mut conn)
                        .await
                        .map_err(|e| map_err(ctx(), e))?;
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(())
    }
}
