//! `storage check URL` prints the same matrix as the conformance runner:
//! for each backend, the binary's Markdown (cases run on stores derived
//! from a URL) is compared with the report of the runner's own harness of
//! that backend, run in this process.
//!
//! Both sides run the whole suite with a small property budget
//! (`CHECK_MATRIX_PROPTEST_CASES`, default 8; sequences of at most 20
//! operations): the matrix is the point here, the depth of the property
//! search is the conformance runner's job. The `::memory:` forms of SQLite
//! and DuckDB differ from the file forms only in the URL parsing (unit
//! and CLI tests) and are left out to keep CI affordable.

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::process::Command;
use std::sync::Arc;

use common::Env;
use conformance::harnesses::{
    DuckDbHarness, DuckDbMode, MemoryHarness, RedisHarness, RemoteLocalHarness, RemoteS3Harness,
    SqliteHarness, SqliteMode,
};
use conformance::Harness;

fn budget() -> String {
    std::env::var("CHECK_MATRIX_PROPTEST_CASES").unwrap_or_else(|_| "8".to_owned())
}

/// The binary's matrix for `url`.
fn cli_matrix(url: &str, env: &[(&str, String)]) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_storage"));
    cmd.args(["check", url])
        .env("PROPTEST_CASES", budget())
        .env("CONFORMANCE_MAX_OPS", "20");
    for (k, v) in Env::s3_credentials() {
        cmd.env(k, v);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "storage check {url} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The runner's matrix for `harness`, in this process.
fn runner_matrix(harness: Arc<dyn Harness>) -> String {
    std::env::set_var("PROPTEST_CASES", budget());
    std::env::set_var("CONFORMANCE_MAX_OPS", "20");
    let report = conformance::run_report(&[harness], &conformance::suites::all(), |_, _, _| {});
    format!("{}\n", report.to_markdown())
}

fn same_matrix(url: &str, harness: Arc<dyn Harness>, env: &[(&str, String)]) {
    let name = harness.name();
    let ours = cli_matrix(url, env);
    let theirs = runner_matrix(harness);
    assert!(ours.contains("| pass |"), "{ours}");
    assert!(ours.contains(&format!("| case | {name} |")), "{ours}");
    assert_eq!(
        ours, theirs,
        "storage check {url} differs from the runner's {name} matrix"
    );
}

#[test]
fn memory() {
    same_matrix("memory://", Arc::new(MemoryHarness), &[]);
}

#[test]
fn sqlite_file() {
    let env = Env::new(&[]);
    let url = format!("sqlite://{}/app.db", env.dir.path().display());
    same_matrix(&url, Arc::new(SqliteHarness::new(SqliteMode::File)), &[]);
    // Every case ran beside the named file and cleaned up after itself.
    let left: Vec<_> = std::fs::read_dir(env.dir.path()).unwrap().collect();
    assert!(left.is_empty(), "check left {left:?} behind");
}

#[test]
fn duckdb_file() {
    let env = Env::new(&[]);
    let url = format!("duckdb://{}/app.duckdb", env.dir.path().display());
    same_matrix(&url, Arc::new(DuckDbHarness::new(DuckDbMode::File)), &[]);
}

#[test]
fn redis() {
    let env = Env::new(&["redis"]);
    let server = env.redis.as_ref().unwrap().url().to_owned();
    let url = format!("{server}?prefix=check-test");
    // The runner's harness starts a server of its own.
    same_matrix(&url, Arc::new(RedisHarness::new()), &[]);
    let keys = storage_redis::testing::keys_matching(&server, "*check-test*").unwrap();
    assert!(keys.is_empty(), "check left {} keys behind", keys.len());
}

#[test]
fn remote_local_and_s3() {
    let env = Env::new(&["s3"]);
    let dir = env.dir.path().join("objects");
    same_matrix(
        &format!("file://{}", dir.display()),
        Arc::new(RemoteLocalHarness::new()),
        &[],
    );
    let (server, bucket) = env.s3.as_ref().unwrap();
    common::set_s3_credentials();
    same_matrix(
        &format!("s3://{bucket}/check?endpoint={}", server.endpoint()),
        Arc::new(RemoteS3Harness::new()),
        &[],
    );
}
