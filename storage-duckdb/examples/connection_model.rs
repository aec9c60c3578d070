//! The measurement behind `backend.rs`'s concurrency model: one
//! mutex-guarded DuckDB connection shared by every task, against one
//! `try_clone`d connection per task, both driven from tokio through
//! `spawn_blocking` exactly as the store does.
//!
//! `cargo run -p storage-duckdb --example connection_model [tasks] [ops]`
//!
//! Three workloads on one in-memory database: point queries on a 100 000
//! row table, inserts of distinct rows, and updates of one hot row (where
//! concurrent autocommit transactions on separate connections conflict).

#![allow(clippy::unwrap_used, clippy::panic)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use duckdb::Connection;
use parking_lot::Mutex;

#[derive(Clone, Copy, Debug)]
enum Work {
    PointQuery,
    Insert,
    HotUpdate,
}

fn run_one(conn: &Connection, work: Work, task: usize, i: usize) -> duckdb::Result<()> {
    match work {
        Work::PointQuery => {
            let id = i64::try_from((task * 7919 + i * 104_729) % 100_000).unwrap();
            let _: String = conn
                .prepare_cached("SELECT v FROM t WHERE id = ?")?
                .query_row([id], |r| r.get(0))?;
        }
        Work::Insert => {
            conn.prepare_cached("INSERT INTO ins VALUES (?, ?)")?
                .execute([i64::try_from(task).unwrap(), i64::try_from(i).unwrap()])?;
        }
        Work::HotUpdate => {
            conn.prepare_cached("UPDATE hot SET n = n + 1 WHERE id = 1")?
                .execute([])?;
        }
    }
    Ok(())
}

/// Runs `tasks × ops` operations; returns (seconds, failed operations).
async fn measure(
    conns: Vec<Arc<Mutex<Connection>>>,
    tasks: usize,
    ops: usize,
    work: Work,
) -> (f64, usize) {
    let failed = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut handles = Vec::new();
    for task in 0..tasks {
        let conn = conns[task % conns.len()].clone();
        let failed = failed.clone();
        handles.push(tokio::spawn(async move {
            for i in 0..ops {
                let conn = conn.clone();
                let ok = tokio::task::spawn_blocking(move || run_one(&conn.lock(), work, task, i))
                    .await
                    .unwrap();
                if ok.is_err() {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    (
        start.elapsed().as_secs_f64(),
        failed.load(Ordering::Relaxed),
    )
}

fn setup() -> Connection {
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(
        "CREATE TABLE t (id BIGINT PRIMARY KEY, v VARCHAR);
         INSERT INTO t SELECT i, 'value ' || i FROM range(100000) r(i);
         CREATE TABLE ins (task BIGINT, i BIGINT);
         CREATE TABLE hot (id INTEGER PRIMARY KEY, n BIGINT);
         INSERT INTO hot VALUES (1, 0);",
    )
    .unwrap();
    conn
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let tasks = args.first().copied().unwrap_or(8);
    let ops = args.get(1).copied().unwrap_or(200);
    println!(
        "{tasks} tasks x {ops} operations each, on {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("| workload | model | ops/s | failed (conflicts) |");
    println!("|---|---|---|---|");
    for work in [Work::PointQuery, Work::Insert, Work::HotUpdate] {
        for pooled in [false, true] {
            let root = setup();
            let conns: Vec<_> = if pooled {
                (0..tasks)
                    .map(|_| Arc::new(Mutex::new(root.try_clone().unwrap())))
                    .collect()
            } else {
                vec![Arc::new(Mutex::new(root.try_clone().unwrap()))]
            };
            // Warm the statement caches.
            for c in &conns {
                let _ = run_one(&c.lock(), Work::PointQuery, 0, 0);
            }
            let (secs, failed) = measure(conns, tasks, ops, work).await;
            let total = tasks * ops;
            let hot: i64 = root
                .query_row("SELECT n FROM hot", [], |r| r.get(0))
                .unwrap();
            let note = match work {
                Work::HotUpdate => format!("{failed} (counter ended at {hot} of {total})"),
                _ => failed.to_string(),
            };
            println!(
                "| {work:?} | {} | {:.0} | {note} |",
                if pooled {
                    "connection per task (try_clone)"
                } else {
                    "one mutex-guarded connection"
                },
                total as f64 / secs,
            );
        }
    }
}
