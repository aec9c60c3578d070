//! Crash durability: a child process writing acknowledged keys, CAS
//! creates and queue messages in a loop is killed with `SIGKILL` at a
//! random point, 20 times over on one database file. After every kill the
//! file passes `PRAGMA integrity_check`, reopens, and holds every write the
//! child acknowledged — in this trial and in every earlier one — with the
//! exact value, version token, message id and body it acknowledged.
//!
//! The child is this test binary re-executing itself: the test
//! `crash_child_writer` does nothing unless `STORAGE_SQLITE_CRASH_CHILD`
//! names a database file, in which case it runs the writer loop forever
//! and reports each acknowledged write as one stdout line (flushed before
//! the next write starts). Real time is used only for the kill delay
//! (5–300 ms after the child reports it is ready, seeded by the trial
//! number) and to wait for the child; nothing waits for a timeout.

#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use storage_core::{
    AtomicKv, Clock, ManualClock, PutMode, PutOptions, QueueConfig, QueueStore, QueueStoreExt,
    SendMessage, SharedClock, SystemClock, Version,
};
use storage_sqlite::{Durability, SqliteConfig, SqliteStore};

const CHILD_ENV: &str = "STORAGE_SQLITE_CRASH_CHILD";
const TRIAL_ENV: &str = "STORAGE_SQLITE_CRASH_TRIAL";
const CHILD_TEST: &str = "crash_child_writer";
/// Marks the child's report lines (libtest may print on the same line).
const MARK: &str = "@@crash ";
const NS: &str = "crash";
const QUEUE: &str = "crash-q";
const TRIALS: u64 = 20;

fn kv_key(trial: u64, i: u64) -> String {
    format!("t{trial:02}/k{i:07}")
}
fn cas_key(trial: u64, i: u64) -> String {
    format!("t{trial:02}/c{i:07}")
}
fn value(trial: u64, i: u64) -> String {
    format!("value of trial {trial} write {i}")
}
fn body(trial: u64, i: u64) -> String {
    format!("message of trial {trial} write {i}")
}

/// splitmix64: a deterministic delay per trial.
fn mix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Entry point of the child process; a no-op in a normal test run.
#[test]
fn crash_child_writer() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let trial: u64 = std::env::var(TRIAL_ENV).unwrap().parse().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let config = SqliteConfig::file(&path);
        assert_eq!(config.durability, Durability::Full);
        let store = SqliteStore::open_with_clock(config, Arc::new(SystemClock))
            .await
            .unwrap();
        let kv: Arc<dyn AtomicKv> = Arc::new(store.clone());
        let q: Arc<dyn QueueStore> = Arc::new(store);
        q.create_queue(QUEUE, QueueConfig::default()).await.unwrap();
        let out = std::io::stdout();
        let report = |line: String| {
            let mut out = out.lock();
            writeln!(out, "{MARK}{line}").unwrap();
            out.flush().unwrap();
        };
        report("ready".to_owned());
        for i in 0u64.. {
            let v = Bytes::from(value(trial, i));
            kv.put(
                NS,
                kv_key(trial, i).as_bytes(),
                v.clone(),
                PutOptions::default(),
            )
            .await
            .unwrap();
            report(format!("kv {i}"));
            let version = kv
                .put_if(
                    NS,
                    cas_key(trial, i).as_bytes(),
                    v,
                    PutMode::Create,
                    PutOptions::default(),
                )
                .await
                .unwrap();
            report(format!("cas {i} {version}"));
            let id = q
                .send(QUEUE, SendMessage::new(body(trial, i)))
                .await
                .unwrap();
            report(format!("q {i} {id}"));
        }
    });
}

/// What one child acknowledged before it was killed.
#[derive(Debug, Default)]
struct Acks {
    kv: Vec<u64>,
    cas: Vec<(u64, Version)>,
    queue: Vec<(u64, String)>,
}

fn parse_line(line: &str, acks: &mut Acks) -> bool {
    let Some(pos) = line.find(MARK) else {
        return false;
    };
    let mut words = line[pos + MARK.len()..].split_whitespace();
    let kind = words.next().unwrap();
    if kind == "ready" {
        return true;
    }
    let i: u64 = words.next().unwrap().parse().unwrap();
    match kind {
        "kv" => acks.kv.push(i),
        "cas" => acks.cas.push((i, words.next().unwrap().parse().unwrap())),
        "q" => acks.queue.push((i, words.next().unwrap().to_owned())),
        other => panic!("unknown report {other:?}"),
    }
    false
}

/// Runs one child on `path`, kills it after `delay` (from its "ready"),
/// and returns what it acknowledged.
fn run_child(path: &Path, trial: u64, delay: Duration) -> Acks {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args(["--exact", CHILD_TEST, "--nocapture", "--test-threads", "1"])
        .env(CHILD_ENV, path)
        .env(TRIAL_ENV, trial.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut acks = Acks::default();
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                // A line cut short by the kill was never fully reported:
                // its write does not count as acknowledged.
                Ok(_) if !line.ends_with('\n') => break,
                Ok(_) => {
                    if parse_line(&line, &mut acks) {
                        let _ = ready_tx.send(());
                    }
                }
            }
        }
        acks
    });
    let ready = ready_rx.recv_timeout(Duration::from_secs(60));
    if ready.is_ok() {
        std::thread::sleep(delay);
    }
    // Child::kill sends SIGKILL on Unix.
    let _ = child.kill();
    let status = child.wait().unwrap();
    let acks = out_reader.join().unwrap();
    let stderr = err_reader.join().unwrap();
    assert!(ready.is_ok(), "child never became ready; stderr:\n{stderr}");
    assert_eq!(
        status.signal(),
        Some(SIGKILL),
        "the child must die by SIGKILL, not exit on its own ({status}); stderr:\n{stderr}"
    );
    acks
}

/// Signal number of SIGKILL on every Unix.
const SIGKILL: i32 = 9;

fn integrity_check(path: &Path) {
    let conn = rusqlite::Connection::open(path).unwrap();
    let rows: Vec<String> = conn
        .prepare("PRAGMA integrity_check")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows, vec!["ok".to_owned()], "integrity_check failed");
}

#[derive(Debug, Default)]
struct Totals {
    kv: usize,
    cas: usize,
    queue: usize,
}

/// Reopens the file and checks every acknowledged write of every trial.
async fn verify(path: &Path, history: &[(u64, Acks)], totals: &mut Totals) {
    // A manual clock frozen at "now": the messages were sent moments ago
    // by the system clock, well within their 4-day retention.
    let clock: SharedClock = Arc::new(ManualClock::new(SystemClock.now()));
    let store = SqliteStore::open_with_clock(SqliteConfig::file(path), clock)
        .await
        .unwrap();
    let kv: Arc<dyn AtomicKv> = Arc::new(store.clone());
    let q: Arc<dyn QueueStore> = Arc::new(store);
    let state = q.export_queue(QUEUE).await.unwrap();
    let by_id: HashMap<&str, (u64, &Bytes)> = state
        .messages
        .iter()
        .map(|m| (m.id.as_str(), (m.sequence, &m.body)))
        .collect();
    *totals = Totals::default();
    for (trial, acks) in history {
        let trial = *trial;
        for &i in &acks.kv {
            let got = kv.get(NS, kv_key(trial, i).as_bytes()).await.unwrap();
            assert_eq!(
                got,
                Some(Bytes::from(value(trial, i))),
                "trial {trial}: acknowledged put {i} lost"
            );
        }
        for (i, version) in &acks.cas {
            let got = kv
                .get_versioned(NS, cas_key(trial, *i).as_bytes())
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("trial {trial}: acknowledged put_if {i} lost"));
            assert_eq!(got.value, Bytes::from(value(trial, *i)));
            assert_eq!(
                &got.version, version,
                "trial {trial}: put_if {i} acknowledged a version the file does not hold"
            );
        }
        let mut last_seq = None;
        for (i, id) in &acks.queue {
            let (seq, b) = by_id
                .get(id.as_str())
                .unwrap_or_else(|| panic!("trial {trial}: acknowledged message {i} ({id}) lost"));
            assert_eq!(**b, Bytes::from(body(trial, *i)), "message {id} body");
            assert!(last_seq < Some(*seq), "send order of acknowledged messages");
            last_seq = Some(*seq);
        }
        totals.kv += acks.kv.len();
        totals.cas += acks.cas.len();
        totals.queue += acks.queue.len();
    }
}

#[test]
fn sigkilled_writer_loses_no_acknowledged_write() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.sqlite");
    // Create and migrate the file up front.
    drop(
        rt.block_on(SqliteStore::open(SqliteConfig::file(&path)))
            .unwrap(),
    );
    let started = Instant::now();
    let mut history: Vec<(u64, Acks)> = Vec::new();
    let mut totals = Totals::default();
    let mut per_trial = Vec::new();
    for trial in 0..TRIALS {
        let delay = Duration::from_millis(5 + mix(trial) % 296);
        let acks = run_child(&path, trial, delay);
        // The raw file first, exactly as the kill left it (WAL and all).
        integrity_check(&path);
        per_trial.push((delay.as_millis(), acks.kv.len(), acks.queue.len()));
        history.push((trial, acks));
        rt.block_on(verify(&path, &history, &mut totals));
        integrity_check(&path);
    }
    eprintln!(
        "crash: {TRIALS} SIGKILL trials in {:.1?}; acknowledged and found after reopen: \
         {} puts, {} put_if creates (same version), {} messages (same id and body)",
        started.elapsed(),
        totals.kv,
        totals.cas,
        totals.queue
    );
    for (trial, (delay, kv, q)) in per_trial.iter().enumerate() {
        eprintln!(
            "  trial {trial:2}: killed {delay:3} ms after ready; {kv} puts, {q} messages acked"
        );
    }
}
