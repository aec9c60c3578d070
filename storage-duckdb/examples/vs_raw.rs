//! The adapter's SQL tier against raw `duckdb` crate calls doing the same
//! work: parameterised single-row inserts, 100-row multi-VALUES inserts
//! (and the raw appender as a reference), point queries, and an aggregate
//! over one million rows. Prints a Markdown table of rates and the
//! adapter / raw ratio.
//!
//! `cargo run -p storage-duckdb --example vs_raw [scale] [rounds]` (an
//! example, not a `[[bench]]`, so that it reuses the dev build of DuckDB
//! instead of compiling the C++ once more in release mode; numbers are
//! relative). Each round runs every workload on the adapter and then on
//! the raw connection; the table shows each side's median over the rounds
//! (default 5), so a burst of load from elsewhere moves one round, not the
//! result.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::time::Instant;

use duckdb::{params_from_iter, Connection};
use storage_core::{SqlEngine, SqlValue};
use storage_duckdb::{DuckDbConfig, DuckDbStore};

const SETUP: &str = "CREATE TABLE t (id BIGINT, v VARCHAR);
     CREATE TABLE big AS SELECT i AS id, i % 100 AS grp, i * 2 AS n FROM range(1000000) r(i);";

fn rate(n: usize, secs: f64) -> f64 {
    n as f64 / secs
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let arg = |i: usize, default: usize| {
        std::env::args()
            .nth(i)
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    };
    let (scale, rounds) = (arg(1, 1), arg(2, 5).max(1));
    let store = DuckDbStore::open(DuckDbConfig::memory()).await.unwrap();
    store.execute_batch(SETUP).await.unwrap();
    let raw = Connection::open_in_memory().unwrap();
    raw.execute_batch(SETUP).unwrap();

    let mut all: Vec<Vec<(&str, f64, f64)>> = Vec::new();
    for _ in 0..rounds {
        all.push(round(&store, &raw, scale).await);
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!("| workload | storage-duckdb | raw duckdb | ratio |");
    println!("|---|---|---|---|");
    for (i, (name, _, _)) in all[0].iter().enumerate() {
        let ours = median(all.iter().map(|r| r[i].1).collect());
        let theirs = median(all.iter().map(|r| r[i].2).collect());
        if ours.is_nan() {
            println!("| {name} | – | {theirs:.1} | – |");
        } else {
            println!(
                "| {name} | {ours:.1} | {theirs:.1} | {:.2}x |",
                ours / theirs
            );
        }
    }
}

/// One round of every workload: the adapter's rate and the raw rate.
async fn round(
    store: &DuckDbStore,
    raw: &Connection,
    scale: usize,
) -> Vec<(&'static str, f64, f64)> {
    let inserts = 2_000 * scale;
    let batches = 50 * scale;
    let queries = 2_000 * scale;
    let aggregates = 10 * scale;

    let mut rows: Vec<(&str, f64, f64)> = Vec::new();

    // Single-row parameterised inserts.
    let start = Instant::now();
    for i in 0..inserts {
        store
            .execute(
                "INSERT INTO t VALUES (?, ?)",
                &[SqlValue::Integer(i as i64), SqlValue::Text(format!("v{i}"))],
            )
            .await
            .unwrap();
    }
    let ours = rate(inserts, start.elapsed().as_secs_f64());
    let start = Instant::now();
    for i in 0..inserts {
        raw.prepare_cached("INSERT INTO t VALUES (?, ?)")
            .unwrap()
            .execute(duckdb::params![i as i64, format!("v{i}")])
            .unwrap();
    }
    let theirs = rate(inserts, start.elapsed().as_secs_f64());
    rows.push(("insert, one row per statement (rows/s)", ours, theirs));

    // 100-row inserts with 200 bound parameters.
    let sql = format!("INSERT INTO t VALUES {}", vec!["(?, ?)"; 100].join(", "));
    let params: Vec<SqlValue> = (0..100)
        .flat_map(|i| [SqlValue::Integer(i), SqlValue::Text(format!("b{i}"))])
        .collect();
    let start = Instant::now();
    for _ in 0..batches {
        store.execute(&sql, &params).await.unwrap();
    }
    let ours = rate(batches * 100, start.elapsed().as_secs_f64());
    let raw_params: Vec<duckdb::types::Value> = (0..100)
        .flat_map(|i| {
            [
                duckdb::types::Value::BigInt(i),
                duckdb::types::Value::Text(format!("b{i}")),
            ]
        })
        .collect();
    let start = Instant::now();
    for _ in 0..batches {
        raw.prepare_cached(&sql)
            .unwrap()
            .execute(params_from_iter(raw_params.iter()))
            .unwrap();
    }
    let theirs = rate(batches * 100, start.elapsed().as_secs_f64());
    rows.push(("insert, 100 rows per statement (rows/s)", ours, theirs));
    let start = Instant::now();
    {
        let mut app = raw.appender("t").unwrap();
        for i in 0..(batches * 100) {
            app.append_row(duckdb::params![i as i64, format!("a{i}")])
                .unwrap();
        }
        app.flush().unwrap();
    }
    let appender = rate(batches * 100, start.elapsed().as_secs_f64());

    // Point queries.
    let start = Instant::now();
    for i in 0..queries {
        let r = store
            .execute(
                "SELECT n FROM big WHERE id = ?",
                &[SqlValue::Integer((i * 7919 % 1_000_000) as i64)],
            )
            .await
            .unwrap();
        assert_eq!(r.rows.len(), 1);
    }
    let ours = rate(queries, start.elapsed().as_secs_f64());
    let start = Instant::now();
    for i in 0..queries {
        let _: i64 = raw
            .prepare_cached("SELECT n FROM big WHERE id = ?")
            .unwrap()
            .query_row([(i * 7919 % 1_000_000) as i64], |r| r.get(0))
            .unwrap();
    }
    let theirs = rate(queries, start.elapsed().as_secs_f64());
    rows.push(("point query (queries/s)", ours, theirs));

    // Aggregate over 1M rows.
    let agg = "SELECT grp, SUM(n), COUNT(*) FROM big GROUP BY grp ORDER BY grp";
    let start = Instant::now();
    for _ in 0..aggregates {
        let r = store.execute(agg, &[]).await.unwrap();
        assert_eq!(r.rows.len(), 100);
    }
    let ours = rate(aggregates, start.elapsed().as_secs_f64());
    let start = Instant::now();
    for _ in 0..aggregates {
        let mut stmt = raw.prepare_cached(agg).unwrap();
        let out: Vec<(i64, i128, i64)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(out.len(), 100);
    }
    let theirs = rate(aggregates, start.elapsed().as_secs_f64());
    rows.push(("GROUP BY aggregate over 1M rows (queries/s)", ours, theirs));
    rows.push(("(raw appender, for reference; rows/s)", f64::NAN, appender));
    rows
}
