//! Two processes (and two independent stores in one process) on one
//! database file:
//!
//! - **CAS race**: every participant does read → `put_if` → retry-on-
//!   `Conflict` increments of one counter; the counter ends at exactly the
//!   number of increments.
//! - **Competing consumers**: two consumer processes drain one queue with a
//!   long visibility timeout; every message is acked exactly once and no
//!   message is delivered to both (the second delivery of a message would
//!   have to come at least one visibility timeout after the first).
//!
//! The children are this test binary re-executing itself (the test
//! `two_processes_child` is a no-op unless `STORAGE_SQLITE_TWO_PROC_ROLE`
//! is set). They report over stdout and start together: each prints
//! "ready" and waits for a "go" line on stdin, so the work overlaps
//! without any sleep.

#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use storage_core::{
    AtomicKv, Clock, Error, PutMode, PutOptions, QueueConfig, QueueStore, ReceiveOptions,
    SendMessage, SystemClock,
};
use storage_sqlite::{SqliteConfig, SqliteStore};

const ROLE_ENV: &str = "STORAGE_SQLITE_TWO_PROC_ROLE";
const DB_ENV: &str = "STORAGE_SQLITE_TWO_PROC_DB";
const N_ENV: &str = "STORAGE_SQLITE_TWO_PROC_N";
const CHILD_TEST: &str = "two_processes_child";
const MARK: &str = "@@two ";
const NS: &str = "race";
const COUNTER: &[u8] = b"counter";
const QUEUE: &str = "jobs";
/// Far longer than the test runs: a message delivered to one consumer
/// must not reach the other.
const VISIBILITY: Duration = Duration::from_secs(600);

/// Increments per CAS child process, spread over its tasks.
const CAS_PER_PROCESS: u64 = 200;
/// Concurrent increment loops in each CAS child (one store each process).
const CAS_TASKS_PER_PROCESS: u64 = 4;
/// Messages the producer sends for the two consumers.
const MESSAGES: usize = 300;

fn report(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{MARK}{line}").unwrap();
    out.flush().unwrap();
}

fn parse_counter(b: &Bytes) -> u64 {
    std::str::from_utf8(b).unwrap().parse().unwrap()
}

/// What one participant's increments cost.
#[derive(Debug, Default, Clone, Copy)]
struct CasStats {
    increments: u64,
    conflicts: u64,
    unavailable: u64,
}

/// `n` read → conditional write → retry increments of the counter.
async fn increment(store: Arc<dyn AtomicKv>, n: u64) -> CasStats {
    let mut stats = CasStats::default();
    while stats.increments < n {
        let current = match store.get_versioned(NS, COUNTER).await {
            Ok(c) => c,
            Err(e) if e.is_retryable() => {
                stats.unavailable += 1;
                continue;
            }
            Err(e) => panic!("get_versioned: {e}"),
        };
        let (next, mode) = match current {
            Some(v) => (parse_counter(&v.value) + 1, PutMode::Update(v.version)),
            None => (1, PutMode::Create),
        };
        let value = Bytes::from(next.to_string());
        match store
            .put_if(NS, COUNTER, value, mode, PutOptions::default())
            .await
        {
            Ok(_) => stats.increments += 1,
            Err(Error::Conflict { .. }) => stats.conflicts += 1,
            Err(e) if e.is_retryable() => stats.unavailable += 1,
            Err(e) => panic!("put_if: {e}"),
        }
    }
    stats
}

/// Entry point of the child processes; a no-op in a normal test run.
#[test]
fn two_processes_child() {
    let Ok(role) = std::env::var(ROLE_ENV) else {
        return;
    };
    let path = std::env::var(DB_ENV).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        // "fresh" children open the (not yet existing) file only after
        // "go", so both create and migrate it at the same moment.
        let early = if role == "fresh" {
            None
        } else {
            Some(SqliteStore::open(SqliteConfig::file(&path)).await.unwrap())
        };
        report("ready");
        let mut go = String::new();
        std::io::stdin().read_line(&mut go).unwrap();
        assert_eq!(go.trim(), "go");
        let store = match early {
            Some(s) => s,
            None => SqliteStore::open(SqliteConfig::file(&path))
                .await
                .unwrap_or_else(|e| panic!("opening a fresh file concurrently: {e}")),
        };
        match role.as_str() {
            "cas" | "fresh" => {
                let n: u64 = std::env::var(N_ENV).unwrap().parse().unwrap();
                let start = SystemClock.now().as_millis();
                let tasks: Vec<_> = (0..CAS_TASKS_PER_PROCESS)
                    .map(|t| {
                        let share =
                            n / CAS_TASKS_PER_PROCESS + u64::from(t < n % CAS_TASKS_PER_PROCESS);
                        tokio::spawn(increment(Arc::new(store.clone()), share))
                    })
                    .collect();
                let mut s = CasStats::default();
                for t in tasks {
                    let r = t.await.unwrap();
                    s.increments += r.increments;
                    s.conflicts += r.conflicts;
                    s.unavailable += r.unavailable;
                }
                let end = SystemClock.now().as_millis();
                report(&format!(
                    "done {} {} {} {start} {end}",
                    s.increments, s.conflicts, s.unavailable
                ));
            }
            "consume" => consume(Arc::new(store)).await,
            other => panic!("unknown role {other}"),
        }
    });
}

/// Drains the queue: receive (batch sizes 1..=10, some with a short long
/// poll), report each delivery with the wall-clock window it happened in,
/// ack, report the ack. Stops at the first empty receive: with a
/// visibility far longer than the test, nothing can become visible again.
async fn consume(q: Arc<dyn QueueStore>) {
    for round in 0u64.. {
        let opts = ReceiveOptions {
            max_messages: 1 + (round % 10) as usize,
            visibility_timeout: Some(VISIBILITY),
            wait: if round % 3 == 0 {
                Duration::from_millis(50)
            } else {
                Duration::ZERO
            },
        };
        let before = SystemClock.now().as_millis();
        let got = match q.receive(QUEUE, opts).await {
            Ok(got) => got,
            Err(e) if e.is_retryable() => {
                report("busy");
                continue;
            }
            Err(e) => panic!("receive: {e}"),
        };
        let after = SystemClock.now().as_millis();
        if got.is_empty() {
            break;
        }
        for m in &got {
            report(&format!(
                "recv {} {} {before} {after}",
                m.id, m.receive_count
            ));
        }
        for m in got {
            loop {
                match q.ack(QUEUE, &m.receipt).await {
                    Ok(()) => {
                        report(&format!("ack {}", m.id));
                        break;
                    }
                    Err(Error::StaleReceipt { .. }) => {
                        report(&format!("stale {}", m.id));
                        break;
                    }
                    Err(e) if e.is_retryable() => report("busy"),
                    Err(e) => panic!("ack: {e}"),
                }
            }
        }
    }
    report("done");
}

/// A running child, its report lines collected by a reader thread.
struct Running {
    child: Child,
    stdin: ChildStdin,
    lines: std::thread::JoinHandle<Vec<String>>,
    stderr: std::thread::JoinHandle<String>,
}

/// Spawns a child and waits until it has opened the store.
fn spawn(role: &str, path: &Path, n: u64) -> Running {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args(["--exact", CHILD_TEST, "--nocapture", "--test-threads", "1"])
        .env(ROLE_ENV, role)
        .env(DB_ENV, path)
        .env(N_ENV, n.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let out = child.stdout.take().unwrap();
    let lines = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            let Some(pos) = line.find(MARK) else { continue };
            let report = line[pos + MARK.len()..].to_owned();
            if report == "ready" {
                let _ = ready_tx.send(());
            } else {
                lines.push(report);
            }
        }
        lines
    });
    let ready = ready_rx.recv_timeout(Duration::from_secs(60));
    let mut running = Running {
        child,
        stdin,
        lines,
        stderr,
    };
    if ready.is_err() {
        let _ = running.child.kill();
        let (_, stderr) = running.finish();
        panic!("child {role} never became ready; stderr:\n{stderr}");
    }
    running
}

impl Running {
    fn go(&mut self) {
        writeln!(self.stdin, "go").unwrap();
        self.stdin.flush().unwrap();
    }

    /// Waits for the child; returns its report lines and stderr.
    fn finish(mut self) -> (Vec<String>, String) {
        let status = self.child.wait().unwrap();
        let lines = self.lines.join().unwrap();
        let stderr = self.stderr.join().unwrap();
        assert!(
            status.success(),
            "child failed ({status}); stderr:\n{stderr}"
        );
        (lines, stderr)
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
}

async fn read_counter(path: &Path) -> u64 {
    let store = SqliteStore::open(SqliteConfig::file(path)).await.unwrap();
    let v = store.get_versioned(NS, COUNTER).await.unwrap().unwrap();
    parse_counter(&v.value)
}

#[test]
fn cas_race_between_two_processes_loses_no_increment() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("race.sqlite");
    drop(
        rt.block_on(SqliteStore::open(SqliteConfig::file(&path)))
            .unwrap(),
    );

    let mut children: Vec<Running> = (0..2)
        .map(|_| spawn("cas", &path, CAS_PER_PROCESS))
        .collect();
    for c in &mut children {
        c.go();
    }
    let mut stats = Vec::new();
    let mut spans = Vec::new();
    for c in children {
        let (lines, stderr) = c.finish();
        let done = lines
            .iter()
            .find_map(|l| l.strip_prefix("done "))
            .unwrap_or_else(|| panic!("no result; stderr:\n{stderr}"));
        let n: Vec<u64> = done.split(' ').map(|w| w.parse().unwrap()).collect();
        stats.push(CasStats {
            increments: n[0],
            conflicts: n[1],
            unavailable: n[2],
        });
        spans.push((n[3], n[4]));
    }
    let counter = rt.block_on(read_counter(&path));
    let t0 = spans.iter().map(|s| s.0).min().unwrap_or(0);
    eprintln!(
        "cas race, 2 processes x {CAS_TASKS_PER_PROCESS} tasks, {CAS_PER_PROCESS} increments per \
         process: counter = {counter}; \
         per process (increments, conflicts retried, unavailable retried, ran from..to ms): {:?}",
        stats
            .iter()
            .zip(&spans)
            .map(|(s, (a, b))| (s.increments, s.conflicts, s.unavailable, a - t0, b - t0))
            .collect::<Vec<_>>()
    );
    assert!(stats.iter().all(|s| s.increments == CAS_PER_PROCESS));
    assert_eq!(counter, 2 * CAS_PER_PROCESS);
}

#[test]
fn cas_race_between_two_stores_in_one_process_loses_no_increment() {
    const TASKS: u64 = 4;
    const PER_TASK: u64 = 40;
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("race.sqlite");
    let (counter, stats) = rt.block_on(async {
        let a = SqliteStore::open(SqliteConfig::file(&path)).await.unwrap();
        let b = SqliteStore::open(SqliteConfig::file(&path)).await.unwrap();
        let mut tasks = Vec::new();
        for store in [a, b] {
            for _ in 0..TASKS {
                let s: Arc<dyn AtomicKv> = Arc::new(store.clone());
                tasks.push(tokio::spawn(increment(s, PER_TASK)));
            }
        }
        let mut stats = Vec::new();
        for t in tasks {
            stats.push(t.await.unwrap());
        }
        (read_counter(&path).await, stats)
    });
    let conflicts: u64 = stats.iter().map(|s| s.conflicts).sum();
    let unavailable: u64 = stats.iter().map(|s| s.unavailable).sum();
    eprintln!(
        "cas race, 2 stores x {TASKS} tasks x {PER_TASK} increments: counter = {counter}; \
         {conflicts} conflicts and {unavailable} unavailable retried"
    );
    assert_eq!(counter, 2 * TASKS * PER_TASK);
}

#[test]
fn two_processes_creating_the_same_fresh_file_at_once_both_open_it() {
    const ROUNDS: usize = 5;
    const N: u64 = 20;
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    for round in 0..ROUNDS {
        let path = dir.path().join(format!("fresh-{round}.sqlite"));
        let mut children: Vec<Running> = (0..2).map(|_| spawn("fresh", &path, N)).collect();
        for c in &mut children {
            c.go();
        }
        for c in children {
            let (lines, stderr) = c.finish();
            assert!(
                lines.iter().any(|l| l.starts_with("done ")),
                "no result; stderr:\n{stderr}"
            );
        }
        assert_eq!(rt.block_on(read_counter(&path)), 2 * N, "round {round}");
    }
    eprintln!("fresh file: {ROUNDS} rounds of two processes creating one file at once, all opened");
}

#[test]
fn two_stores_creating_the_same_fresh_file_at_once_both_open_it() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    for round in 0..20 {
        let path = dir.path().join(format!("fresh-{round}.sqlite"));
        let (a, b) = rt.block_on(async {
            tokio::join!(
                SqliteStore::open(SqliteConfig::file(&path)),
                SqliteStore::open(SqliteConfig::file(&path))
            )
        });
        if let Err(e) = a.and(b) {
            panic!("round {round}: {e}");
        }
    }
}

/// One delivery as a consumer reported it.
#[derive(Debug, Clone, Copy)]
struct Delivery {
    consumer: usize,
    receive_count: u32,
    /// Wall-clock window (ms) the receive call ran in.
    before: u64,
    after: u64,
}

#[test]
fn two_consumer_processes_never_hold_the_same_message() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queue.sqlite");
    let sent: Vec<String> = rt.block_on(async {
        let store = SqliteStore::open(SqliteConfig::file(&path)).await.unwrap();
        let q: Arc<dyn QueueStore> = Arc::new(store);
        let config = QueueConfig {
            visibility_timeout: VISIBILITY,
            ..QueueConfig::default()
        };
        q.create_queue(QUEUE, config).await.unwrap();
        let mut ids = Vec::new();
        for chunk in (0..MESSAGES).collect::<Vec<_>>().chunks(10) {
            let batch = chunk
                .iter()
                .map(|i| SendMessage::new(format!("job {i}")))
                .collect();
            ids.extend(q.send_batch(QUEUE, batch).await.unwrap());
        }
        ids.into_iter().map(|id| id.as_str().to_owned()).collect()
    });
    assert_eq!(sent.len(), MESSAGES);

    let mut children: Vec<Running> = (0..2).map(|_| spawn("consume", &path, 0)).collect();
    for c in &mut children {
        c.go();
    }
    let mut deliveries: BTreeMap<String, Vec<Delivery>> = BTreeMap::new();
    let mut acks: HashMap<String, Vec<usize>> = HashMap::new();
    let mut stale = Vec::new();
    let mut busy = [0usize; 2];
    let mut received = [0usize; 2];
    for (consumer, c) in children.into_iter().enumerate() {
        let (lines, stderr) = c.finish();
        assert_eq!(lines.last().map(String::as_str), Some("done"), "{stderr}");
        for line in &lines {
            let w: Vec<&str> = line.split(' ').collect();
            match w[0] {
                "recv" => {
                    received[consumer] += 1;
                    deliveries
                        .entry(w[1].to_owned())
                        .or_default()
                        .push(Delivery {
                            consumer,
                            receive_count: w[2].parse().unwrap(),
                            before: w[3].parse().unwrap(),
                            after: w[4].parse().unwrap(),
                        });
                }
                "ack" => acks.entry(w[1].to_owned()).or_default().push(consumer),
                "stale" => stale.push(w[1].to_owned()),
                "busy" => busy[consumer] += 1,
                "done" => {}
                other => panic!("unknown report {other:?}"),
            }
        }
    }
    let counts = rt.block_on(async {
        let store = SqliteStore::open(SqliteConfig::file(&path)).await.unwrap();
        store.counts(QUEUE).await.unwrap()
    });
    eprintln!(
        "two consumer processes, {MESSAGES} messages: consumer 0 received {}, consumer 1 \
         received {}; {} acked, {} stale acks, busy retries {busy:?}; queue afterwards {counts:?}",
        received[0],
        received[1],
        acks.len(),
        stale.len()
    );

    // The contract: a second delivery only after the first one's
    // visibility expired (it cannot within this test).
    for (id, ds) in &deliveries {
        for pair in ds.windows(2) {
            let (first, second) = (pair[0], pair[1]);
            assert!(
                second.after >= first.before + VISIBILITY.as_millis() as u64,
                "message {id} delivered to consumer {} and again to consumer {} within its \
                 visibility timeout: {ds:?}",
                first.consumer,
                second.consumer
            );
        }
    }
    let both: Vec<&String> = deliveries
        .iter()
        .filter(|(_, ds)| ds.iter().map(|d| d.consumer).collect::<HashSet<_>>().len() > 1)
        .map(|(id, _)| id)
        .collect();
    assert!(both.is_empty(), "received by both consumers: {both:?}");
    assert!(stale.is_empty(), "stale acks: {stale:?}");
    assert!(deliveries.values().flatten().all(|d| d.receive_count == 1));
    let sent_set: HashSet<&String> = sent.iter().collect();
    let acked_set: HashSet<&String> = acks.keys().collect();
    assert_eq!(acked_set, sent_set, "every message acked, none invented");
    assert!(
        acks.values().all(|by| by.len() == 1),
        "a message acked more than once"
    );
    assert_eq!(received[0] + received[1], MESSAGES);
    assert_eq!(
        (counts.visible, counts.in_flight, counts.delayed),
        (0, 0, 0)
    );
}
