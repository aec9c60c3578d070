//! Raw `duckdb` crate: one connection (in-memory database of its own) on
//! the calling thread, `prepare_cached` statements a duckdb user writes
//! for the job, on a table shaped like the adapter's (`ns, key, value,
//! version`; no index, as in the adapter's schema). [`super::Hopped`]
//! runs the same work behind one `spawn_blocking` hop per adapter call.

use std::sync::Arc;

use anyhow::{ensure, Context as _, Result};
use async_trait::async_trait;
use duckdb::{params, Connection, OptionalExt};
use parking_lot::Mutex;

use crate::kv::{self, check_len, Fixture, Work, NS, PAGE};
use crate::measure::{op, Op};

/// The raw connection.
pub struct RawDuck {
    conn: Mutex<Connection>,
}

impl RawDuck {
    /// A fresh in-memory database with the KV table.
    pub fn open() -> Result<RawDuck> {
        let conn = Connection::open_in_memory().context("raw duckdb")?;
        conn.execute_batch(
            "CREATE TABLE kv (ns VARCHAR NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL, \
             version BIGINT NOT NULL)",
        )?;
        Ok(RawDuck {
            conn: Mutex::new(conn),
        })
    }

    fn kv_work(&self, work: Work, fx: &Fixture, t: usize, n: u64, conc: usize) -> Result<()> {
        let mut c = self.conn.lock();
        match work {
            Work::Get => {
                let v: Option<Vec<u8>> = c
                    .prepare_cached("SELECT value FROM kv WHERE ns = ? AND key = ?")?
                    .query_row(params![NS, &fx.keys[fx.any(n)][..]], |r| r.get(0))
                    .optional()?;
                check_len(v.map(|v| v.len()), fx.value.len())
            }
            Work::Put => {
                let k = &fx.keys[fx.own(t, n, conc)];
                let n = c
                    .prepare_cached(
                        "UPDATE kv SET value = ?, version = version + 1 WHERE ns = ? AND key = ?",
                    )?
                    .execute(params![&fx.value[..], NS, &k[..]])?;
                ensure!(n == 1, "put updated {n} rows");
                Ok(())
            }
            Work::Scan => {
                let mut st = c.prepare_cached(
                    "SELECT key, value, version FROM kv WHERE ns = ? AND key >= ? \
                     ORDER BY key LIMIT ?",
                )?;
                let rows = st
                    .query_map(
                        params![NS, &fx.keys[fx.any(n)][..], (PAGE + 1) as i64],
                        |r| {
                            Ok((
                                r.get::<_, Vec<u8>>(0)?,
                                r.get::<_, Vec<u8>>(1)?,
                                r.get::<_, i64>(2)?,
                            ))
                        },
                    )?
                    .collect::<duckdb::Result<Vec<_>>>()?;
                ensure!(!rows.is_empty(), "scan returned nothing");
                Ok(())
            }
            Work::Cas => {
                let k = &fx.keys[fx.own(t, n, conc)];
                let (_v, ver): (Vec<u8>, i64) = c
                    .prepare_cached("SELECT value, version FROM kv WHERE ns = ? AND key = ?")?
                    .query_row(params![NS, &k[..]], |r| Ok((r.get(0)?, r.get(1)?)))?;
                let n = c
                    .prepare_cached(
                        "UPDATE kv SET value = ?, version = version + 1 \
                         WHERE ns = ? AND key = ? AND version = ?",
                    )?
                    .execute(params![&fx.value[..], NS, &k[..], ver])?;
                ensure!(n == 1, "CAS conflict");
                Ok(())
            }
            Work::Tx => {
                let tx = c.transaction()?;
                for i in fx.own_run(t, n, conc) {
                    tx.prepare_cached(
                        "UPDATE kv SET value = ?, version = version + 1 WHERE ns = ? AND key = ?",
                    )?
                    .execute(params![&fx.value[..], NS, &fx.keys[i][..]])?;
                }
                tx.commit()?;
                Ok(())
            }
        }
    }
}

#[async_trait]
impl kv::Comparator for RawDuck {
    fn name(&self) -> String {
        "duckdb crate".into()
    }
    fn target(&self) -> Option<f64> {
        Some(0.9)
    }
    async fn preload(&self, fx: &Fixture) -> Result<()> {
        let c = self.conn.lock();
        c.execute("DELETE FROM kv", [])?;
        let mut app = c.appender("kv")?;
        for (i, k) in fx.keys.iter().enumerate() {
            app.append_row(params![NS, &k[..], &fx.value[..], i as i64])?;
        }
        app.flush()?;
        Ok(())
    }
    fn op(self: Arc<Self>, work: Work, fx: Arc<Fixture>, conc: usize) -> Option<Op> {
        Some(op(move |t, n| {
            std::future::ready(self.kv_work(work, &fx, t, n, conc))
        }))
    }
}

impl super::BlockingKv for RawDuck {
    fn kv_op(&self, work: Work, fx: &Fixture, t: usize, n: u64, conc: usize) -> Result<()> {
        self.kv_work(work, fx, t, n, conc)
    }
}
