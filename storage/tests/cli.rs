//! The `storage` binary, run as a user runs it: exit codes, one-line
//! errors without secrets, pipes, JSON output, and no partial import.

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use common::Env;

fn storage(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_storage"));
    cmd.args(args);
    for (k, v) in Env::s3_credentials() {
        cmd.env(k, v);
    }
    cmd
}

fn run(args: &[&str]) -> Output {
    storage(args).output().unwrap()
}

fn run_with_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = storage(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The command failed cleanly: exit code 1 (not clap's 2, not a panic's
/// 101), one line on stderr starting with `error: ` that contains `cause`.
fn assert_clean_failure(o: &Output, what: &str, cause: &str) {
    let err = stderr(o);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{what}: exit status, stderr {err}"
    );
    assert_eq!(err.lines().count(), 1, "{what}: more than one line: {err}");
    assert!(err.starts_with("error: "), "{what}: {err}");
    assert!(!err.contains("panicked"), "{what}: {err}");
    assert!(
        err.contains(cause),
        "{what}: {err:?} does not name {cause:?}"
    );
}

#[test]
fn bad_urls_fail_with_one_line_naming_the_cause() {
    let cases: &[(&str, &str)] = &[
        ("nosuch://x", "unknown store URL scheme \"nosuch\""),
        ("not a url", "malformed store URL"),
        ("sqlite://host/x.db", "take no host"),
        ("sqlite:relative.db", "sqlite:///absolute/path"),
        ("memory://?bogus=1", "option \"bogus\": unknown option"),
        (
            "sqlite:///tmp/x.db?durability=maybe",
            "option \"durability\"",
        ),
        ("duckdb:///tmp/x.duckdb?threads=-1", "option \"threads\""),
        ("redis://127.0.0.1:1/zero", "database number"),
        ("redis://127.0.0.1:1/0?node=h:1", "only redis+cluster"),
        ("s3:///prefix", "names its bucket"),
        ("s3://b/p?endpoint=ftp://x", "option \"endpoint\""),
        ("file://host/dir", "take no host"),
    ];
    for (url, cause) in cases {
        assert_clean_failure(&run(&["inspect", url]), url, cause);
    }
}

#[test]
fn secrets_never_appear_in_errors() {
    // A Redis password in the URL of an unreachable server.
    let o = run(&["inspect", "redis://:hunter2secret@127.0.0.1:1/0"]);
    assert_clean_failure(&o, "redis password", "127.0.0.1");
    assert!(!stderr(&o).contains("hunter2secret"), "{}", stderr(&o));
    // S3 credentials in the URL are refused without echoing them.
    let o = run(&["inspect", "s3://AKIAEXAMPLE:s3cr3tvalue@bucket/p"]);
    assert_clean_failure(&o, "s3 userinfo", "credentials do not belong in the URL");
    assert!(!stderr(&o).contains("s3cr3tvalue"), "{}", stderr(&o));
    // Missing credentials name the variable.
    let o = storage(&["inspect", "s3://bucket/p?endpoint=http://127.0.0.1:1"])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .output()
        .unwrap();
    assert_clean_failure(&o, "no credentials", "AWS_ACCESS_KEY_ID");
}

#[test]
fn unreachable_servers_fail_with_the_cause() {
    let o = run(&["inspect", "redis://127.0.0.1:1/0"]);
    assert_clean_failure(&o, "redis", "127.0.0.1");
    let o = run(&["inspect", "redis+cluster://127.0.0.1:1?node=127.0.0.1:2"]);
    assert_clean_failure(&o, "redis cluster", "127.0.0.1");
    let o = run(&[
        "inspect",
        "s3://bucket/p?endpoint=http://127.0.0.1:1&region=us-east-1",
    ]);
    assert_clean_failure(&o, "s3", "s3://bucket/p");
}

#[test]
fn a_missing_tier_is_refused_before_writing() {
    let env = Env::new(&[]);
    let sqlite = env.url("sqlite");
    let duck = env.url("duckdb");
    // SQLite with a queue, then into DuckDB (no queue tier): refused whole.
    let mut snap = Vec::new();
    {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let s = storage::open(&sqlite).await.unwrap();
            let q = s.queue().unwrap();
            q.create_queue("jobs", storage_core::QueueConfig::default())
                .await
                .unwrap();
            storage::export(&s, storage::Scope::All, &mut snap, &|_| {})
                .await
                .unwrap();
        });
    }
    let o = run_with_stdin(&["import", &duck], &snap);
    assert_clean_failure(&o, "queue into duckdb", "queue");
    let o = run(&["copy", &sqlite, &duck]);
    assert_clean_failure(&o, "copy queue into duckdb", "queue");
    // --kv-only moves what fits.
    let o = run(&["copy", "--kv-only", &sqlite, &duck]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn export_import_copy_inspect_round_trip_through_pipes() {
    let env = Env::new(&["redis"]);
    let (a, b, c) = (env.url("sqlite"), env.url("redis"), env.url("memory"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let s = storage::open(&a).await.unwrap();
        let kv = s.kv().unwrap();
        for i in 0..300u32 {
            kv.put(
                if i % 3 == 0 { "users" } else { "orders" },
                &i.to_be_bytes(),
                bytes::Bytes::from(format!("value {i}")),
                storage_core::PutOptions::default(),
            )
            .await
            .unwrap();
        }
        let q = s.queue().unwrap();
        q.create_queue("jobs", storage_core::QueueConfig::default())
            .await
            .unwrap();
        for i in 0..5 {
            q.send_batch(
                "jobs",
                vec![storage_core::SendMessage::new(format!("job {i}"))],
            )
            .await
            .unwrap();
        }
        q.receive("jobs", storage_core::ReceiveOptions::batch(2))
            .await
            .unwrap();
    });

    // inspect --json
    let o = run(&["inspect", "--json", &a]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["backend"], "sqlite-file");
    assert_eq!(v["namespaces"][0]["name"], "orders");
    assert_eq!(v["namespaces"][0]["keys"], 200);
    assert_eq!(v["namespaces"][1]["keys"], 100);
    assert_eq!(v["queues"][0]["visible"], 3);
    assert_eq!(v["queues"][0]["in_flight"], 2);

    // export > stdout, import < stdin
    let exported = run(&["export", &a]);
    assert!(exported.status.success(), "{}", stderr(&exported));
    assert!(
        stderr(&exported).contains("exported 300 entries in 2 namespaces, 5 messages in 1 queues")
    );
    let o = run_with_stdin(&["import", "--json", &b], &exported.stdout);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["entries"], 300);
    assert_eq!(summary["messages"], 5);

    // copy redis -> memory? (a private memory store vanishes; copy into a
    // file-backed memory store instead) and compare inspections.
    let snap = env.dir.path().join("copy.snap");
    let mem = format!("{c}?snapshot={}", snap.display());
    let o = run(&["copy", &b, &mem]);
    assert!(o.status.success(), "{}", stderr(&o));
    let strip = |o: Output| {
        let mut v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v["location"] = serde_json::Value::Null;
        v["backend"] = serde_json::Value::Null;
        v["capabilities"] = serde_json::Value::Null;
        v
    };
    let original = strip(run(&["inspect", "--json", &a]));
    assert_eq!(strip(run(&["inspect", "--json", &b])), original);
    assert_eq!(strip(run(&["inspect", "--json", &mem])), original);

    // A corrupted snapshot changes nothing.
    let before = run(&["inspect", "--json", &b]).stdout;
    let mut bad = exported.stdout.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 1;
    assert_clean_failure(
        &run_with_stdin(&["import", &b], &bad),
        "corrupted",
        "checksum mismatch",
    );
    assert_clean_failure(
        &run_with_stdin(
            &["import", &b],
            &exported.stdout[..exported.stdout.len() - 10],
        ),
        "truncated",
        "truncated",
    );
    assert_eq!(run(&["inspect", "--json", &b]).stdout, before);

    // Clean up the Redis prefix.
    rt.block_on(async { storage::open(&b).await.unwrap().destroy().await.unwrap() });
}

/// Built without a feature (CI runs this file once with
/// `--no-default-features --features memory,sqlite`), its schemes name it.
#[cfg(not(feature = "duckdb"))]
#[test]
fn a_scheme_without_its_feature_names_the_feature() {
    assert_clean_failure(
        &run(&["inspect", "duckdb::memory:"]),
        "duckdb without its feature",
        "need the `duckdb` cargo feature",
    );
}

#[cfg(not(feature = "redis"))]
#[test]
fn redis_without_its_feature_names_the_feature() {
    assert_clean_failure(
        &run(&["inspect", "redis://127.0.0.1:6379/0"]),
        "redis without its feature",
        "need the `redis` cargo feature",
    );
}

#[cfg(not(feature = "check"))]
#[test]
fn check_without_its_feature_names_the_feature() {
    assert_clean_failure(
        &run(&["check", "memory://"]),
        "check without its feature",
        "`check` cargo feature",
    );
}
