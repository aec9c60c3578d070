//! SQL workloads on SQLite and DuckDB: a parameterised one-row insert, a
//! point query by primary key on a table of N rows (1M by default), and a
//! `GROUP BY` aggregate over all N rows (100 groups). The adapter through
//! `Arc<dyn SqlEngine>` beside the raw driver running the same statements
//! (`prepare_cached`, parameters bound) on its own database with the same
//! table, on the calling thread.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use anyhow::{ensure, Context as _, Result};
use parking_lot::Mutex;
use storage_core::{SqlEngine, SqlValue};

use crate::measure::{self, mix, op, Op, Plan, Side};
use crate::results::{Results, Row};

const CREATE: &str = "CREATE TABLE big (id BIGINT PRIMARY KEY, grp BIGINT NOT NULL, val DOUBLE NOT NULL); \
     CREATE TABLE ins (id BIGINT NOT NULL, grp BIGINT NOT NULL, val DOUBLE NOT NULL, name VARCHAR NOT NULL)";
const INSERT: &str = "INSERT INTO ins (id, grp, val, name) VALUES (?, ?, ?, ?)";
const POINT: &str = "SELECT grp, val FROM big WHERE id = ?";
const AGGREGATE: &str =
    "SELECT grp, COUNT(*), SUM(val), AVG(val) FROM big GROUP BY grp ORDER BY grp";

/// The statement that fills `big` with `n` rows, per dialect.
fn fill(duck: bool, n: u64) -> String {
    if duck {
        format!("INSERT INTO big SELECT range, range % 100, range * 0.5 FROM range(1, {n} + 1)")
    } else {
        format!(
            "INSERT INTO big WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c \
             WHERE x < {n}) SELECT x, x % 100, x * 0.5 FROM c"
        )
    }
}

/// The raw side of one engine.
pub enum RawSql {
    /// rusqlite.
    Sqlite(Mutex<rusqlite::Connection>),
    /// duckdb.
    Duck(Mutex<duckdb::Connection>),
}

impl RawSql {
    fn name(&self) -> &'static str {
        match self {
            RawSql::Sqlite(_) => "rusqlite",
            RawSql::Duck(_) => "duckdb crate",
        }
    }

    fn batch(&self, sql: &str) -> Result<()> {
        match self {
            RawSql::Sqlite(c) => c.lock().execute_batch(sql)?,
            RawSql::Duck(c) => c.lock().execute_batch(sql)?,
        }
        Ok(())
    }

    fn insert(&self, id: i64) -> Result<()> {
        let name = "row";
        match self {
            RawSql::Sqlite(c) => {
                c.lock().prepare_cached(INSERT)?.execute(rusqlite::params![
                    id,
                    id % 100,
                    id as f64 * 0.5,
                    name
                ])?;
            }
            RawSql::Duck(c) => {
                c.lock().prepare_cached(INSERT)?.execute(duckdb::params![
                    id,
                    id % 100,
                    id as f64 * 0.5,
                    name
                ])?;
            }
        }
        Ok(())
    }

    fn point(&self, id: i64) -> Result<()> {
        let (grp, _val): (i64, f64) = match self {
            RawSql::Sqlite(c) => c
                .lock()
                .prepare_cached(POINT)?
                .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))?,
            RawSql::Duck(c) => c
                .lock()
                .prepare_cached(POINT)?
                .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))?,
        };
        ensure!(grp == id % 100, "point query returned the wrong row");
        Ok(())
    }

    fn aggregate(&self) -> Result<()> {
        type Agg = (i64, i64, f64, f64);
        let rows: Vec<Agg> = match self {
            RawSql::Sqlite(c) => c
                .lock()
                .prepare_cached(AGGREGATE)?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect::<rusqlite::Result<_>>()?,
            RawSql::Duck(c) => c
                .lock()
                .prepare_cached(AGGREGATE)?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect::<duckdb::Result<_>>()?,
        };
        ensure!(
            rows.len() == 100,
            "aggregate returned {} groups",
            rows.len()
        );
        Ok(())
    }
}

/// `f` behind one `spawn_blocking` hop, as the adapter runs every call:
/// the context comparator that shows what the hop alone costs.
fn hopped<F>(f: F) -> Op
where
    F: Fn(u64) -> Result<()> + Send + Sync + 'static,
{
    let f = Arc::new(f);
    op(move |_, i| {
        let f = f.clone();
        async move { tokio::task::spawn_blocking(move || f(i)).await? }
    })
}

/// One engine's SQL rows.
pub async fn run_engine(
    backend: &str,
    adapter: Arc<dyn SqlEngine>,
    raw: Arc<RawSql>,
    rows_n: u64,
    plan: Plan,
    res: &mut Results,
) -> Result<()> {
    let (rows, problems) = (&mut res.rows, &mut res.problems);
    let duck = matches!(*raw, RawSql::Duck(_));
    let setup = format!("{CREATE}; {}", fill(duck, rows_n));
    adapter
        .execute_batch(&setup)
        .await
        .with_context(|| format!("{backend} adapter SQL setup"))?;
    raw.batch(&setup)
        .with_context(|| format!("{backend} raw SQL setup"))?;
    let next_a = Arc::new(AtomicI64::new(0));
    let next_r = Arc::new(AtomicI64::new(0));
    let n = rows_n;
    let work: [(&str, Op, Op, Op); 3] = [
        (
            "parameterised insert (1 row), rows/s",
            {
                let (a, next) = (adapter.clone(), next_a.clone());
                op(move |_, _| {
                    let (a, id) = (a.clone(), next.fetch_add(1, Ordering::Relaxed));
                    async move {
                        let params = [
                            SqlValue::Integer(id),
                            SqlValue::Integer(id % 100),
                            SqlValue::Float(id as f64 * 0.5),
                            SqlValue::Text("row".into()),
                        ];
                        let r = a.execute(INSERT, &params).await?;
                        ensure!(r.rows_affected == 1, "insert affected {}", r.rows_affected);
                        Ok(())
                    }
                })
            },
            {
                let (r, next) = (raw.clone(), next_r.clone());
                op(move |_, _| std::future::ready(r.insert(next.fetch_add(1, Ordering::Relaxed))))
            },
            {
                let (r, next) = (raw.clone(), next_r.clone());
                hopped(move |_| r.insert(next.fetch_add(1, Ordering::Relaxed)))
            },
        ),
        (
            "point query by primary key, queries/s",
            {
                let a = adapter.clone();
                op(move |_, i| {
                    let a = a.clone();
                    async move {
                        let id = (mix(i) % n) as i64 + 1;
                        let r = a.execute(POINT, &[SqlValue::Integer(id)]).await?;
                        ensure!(
                            r.rows.first().and_then(|row| row.first())
                                == Some(&SqlValue::Integer(id % 100)),
                            "point query returned the wrong row"
                        );
                        Ok(())
                    }
                })
            },
            {
                let r = raw.clone();
                op(move |_, i| std::future::ready(r.point((mix(i) % n) as i64 + 1)))
            },
            {
                let r = raw.clone();
                hopped(move |i| r.point((mix(i) % n) as i64 + 1))
            },
        ),
        (
            "GROUP BY aggregate over all rows, queries/s",
            {
                let a = adapter.clone();
                op(move |_, _| {
                    let a = a.clone();
                    async move {
                        let r = a.execute(AGGREGATE, &[]).await?;
                        ensure!(
                            r.rows.len() == 100,
                            "aggregate returned {} groups",
                            r.rows.len()
                        );
                        Ok(())
                    }
                })
            },
            {
                let r = raw.clone();
                op(move |_, _| std::future::ready(r.aggregate()))
            },
            {
                let r = raw.clone();
                hopped(move |_| r.aggregate())
            },
        ),
    ];
    let hop_name = format!("{} via spawn_blocking", raw.name());
    for (label, a, r, h) in work {
        eprintln!("sql {backend} {label}");
        let sides = [
            Side::op("adapter", a),
            Side::op(raw.name(), r),
            Side::op(&hop_name, h),
        ];
        let plan = Plan {
            concurrency: 1,
            ..plan
        };
        match measure::compare(&sides, plan).await {
            Ok(rates) => {
                for (comparator, ops, target) in [
                    (raw.name().to_owned(), rates[1], Some(0.9)),
                    (hop_name.clone(), rates[2], None),
                ] {
                    rows.push(Row {
                        group: "SQL".into(),
                        workload: format!("{label} ({} rows)", crate::report::count(rows_n)),
                        backend: backend.into(),
                        concurrency: 1,
                        adapter: rates[0],
                        comparator,
                        comparator_ops: ops,
                        target,
                    });
                }
            }
            Err(e) => problems.push(format!("{backend} SQL {label}: {e:#}")),
        }
    }
    Ok(())
}
