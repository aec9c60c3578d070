//! Queue lifecycle and inspection: create, config, delete, list, purge,
//! counts.

use rusqlite::{params, TransactionBehavior};
use storage_core::{Error, QueueConfig, QueueCounts, Result};

use super::rows;
use super::{dur_ms, ms, Cx};
use crate::backend::SqliteStore;
use crate::config::CAPABILITIES;

impl SqliteStore {
    pub(super) async fn q_create(&self, queue: &str, config: QueueConfig) -> Result<()> {
        let cx = Cx::new("create_queue", queue);
        let ctx = cx.ctx();
        cx.check_name()?;
        config.validate(&ctx, &CAPABILITIES)?;
        let json = serde_json::to_string(&config).map_err(|e| cx.corrupt("queue config", e))?;
        let name = queue.to_owned();
        self.inner
            .db
            .write(ctx, move |conn| {
                let cx = Cx::new("create_queue", &name);
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(cx.db())?;
                if let Some(existing) = rows::load_queue(&tx, cx, &name)? {
                    return if existing.config == config {
                        Ok(())
                    } else {
                        Err(Error::AlreadyExists {
                            ctx: cx.ctx(),
                            what: format!("queue {name:?} with a different configuration"),
                        })
                    };
                }
                tx.execute(
                    "INSERT INTO storage_queues (name, config, next_sequence) VALUES (?1, ?2, 1)",
                    params![name, json],
                )
                .map_err(cx.db())?;
                tx.commit().map_err(cx.db())
            })
            .await
    }

    pub(super) async fn q_config(&self, queue: &str) -> Result<QueueConfig> {
        let cx = Cx::new("queue_config", queue);
        cx.check_name()?;
        let name = queue.to_owned();
        self.inner
            .db
            .read(cx.ctx(), move |conn| {
                let cx = Cx::new("queue_config", &name);
                Ok(rows::require_queue(conn, cx)?.config)
            })
            .await
    }

    pub(super) async fn q_delete(&self, queue: &str) -> Result<bool> {
        let cx = Cx::new("delete_queue", queue);
        cx.check_name()?;
        let name = queue.to_owned();
        let existed = self
            .inner
            .db
            .write(cx.ctx(), move |conn| {
                let cx = Cx::new("delete_queue", &name);
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(cx.db())?;
                let existed = tx
                    .execute("DELETE FROM storage_queues WHERE name = ?1", [&name])
                    .map_err(cx.db())?
                    > 0;
                if existed {
                    for sql in [
                        "DELETE FROM storage_messages WHERE queue = ?1",
                        "DELETE FROM storage_fifo_groups WHERE queue = ?1",
                        "DELETE FROM storage_dedup WHERE queue = ?1",
                    ] {
                        tx.execute(sql, [&name]).map_err(cx.db())?;
                    }
                }
                tx.commit().map_err(cx.db())?;
                Ok(existed)
            })
            .await?;
        if existed {
            // Waiting receives re-check and report NotFound.
            self.inner.waiters.wake(queue);
        }
        Ok(existed)
    }

    pub(super) async fn q_list(&self, prefix: &str) -> Result<Vec<String>> {
        let cx = Cx::new("list_queues", prefix);
        let prefix = prefix.to_owned();
        self.inner
            .db
            .read(cx.ctx(), move |conn| {
                let cx = Cx::new("list_queues", &prefix);
                let mut st = conn
                    .prepare_cached(
                        "SELECT name FROM storage_queues WHERE name >= ?1 ORDER BY name",
                    )
                    .map_err(cx.db())?;
                let mut rows = st.query([&prefix]).map_err(cx.db())?;
                let mut names = Vec::new();
                while let Some(r) = rows.next().map_err(cx.db())? {
                    let name: String = r.get(0).map_err(cx.db())?;
                    if !name.starts_with(prefix.as_str()) {
                        break;
                    }
                    names.push(name);
                }
                Ok(names)
            })
            .await
    }

    pub(super) async fn q_purge(&self, queue: &str) -> Result<()> {
        let cx = Cx::new("purge", queue);
        cx.check_name()?;
        let name = queue.to_owned();
        self.inner
            .db
            .write(cx.ctx(), move |conn| {
                let cx = Cx::new("purge", &name);
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(cx.db())?;
                rows::require_queue(&tx, cx)?;
                // Dedup memory and sequence numbers stay.
                for sql in [
                    "DELETE FROM storage_messages WHERE queue = ?1",
                    "DELETE FROM storage_fifo_groups WHERE queue = ?1",
                ] {
                    tx.execute(sql, [&name]).map_err(cx.db())?;
                }
                tx.commit().map_err(cx.db())
            })
            .await
    }

    pub(super) async fn q_counts(&self, queue: &str) -> Result<QueueCounts> {
        let cx = Cx::new("counts", queue);
        cx.check_name()?;
        let name = queue.to_owned();
        let clock = self.inner.clock.clone();
        self.inner
            .db
            .read(cx.ctx(), move |conn| {
                let cx = Cx::new("counts", &name);
                let tx = conn.unchecked_transaction().map_err(cx.db())?;
                let now = ms(clock.now());
                let q = rows::require_queue(&tx, cx)?;
                let cutoff = now.saturating_sub(dur_ms(q.config.retention));
                let (visible, in_flight, delayed): (i64, i64, i64) = tx
                    .prepare_cached(
                        "SELECT
                             COALESCE(SUM(visible_at <= ?2), 0),
                             COALESCE(SUM(visible_at > ?2 AND receive_count > 0), 0),
                             COALESCE(SUM(visible_at > ?2 AND receive_count = 0), 0)
                         FROM storage_messages WHERE queue = ?1 AND sent_at > ?3",
                    )
                    .and_then(|mut st| {
                        st.query_row(params![name, now, cutoff], |r| {
                            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                        })
                    })
                    .map_err(cx.db())?;
                tx.finish().map_err(cx.db())?;
                let n = |v: i64| u64::try_from(v).unwrap_or(0);
                Ok(QueueCounts {
                    visible: n(visible),
                    in_flight: n(in_flight),
                    delayed: n(delayed),
                })
            })
            .await
    }
}
