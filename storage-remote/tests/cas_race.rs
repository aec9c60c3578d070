//! The CAS contract: 8 tasks × 100 optimistic increments end at exactly
//! 800, on object_store's InMemory, on a local directory, on S3 (moto) —
//! and on a local directory shared by two processes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use storage_remote::RemoteStore;

const TASKS: usize = 8;
const INCREMENTS: usize = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn in_memory_race_of_8_tasks_by_100_is_exact() {
    let (store, keep) = common::memory();
    let n = common::race(Arc::new(store), "c", b"n", TASKS, INCREMENTS).await;
    assert_eq!(n, (TASKS * INCREMENTS) as u64);
    keep.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_dir_race_of_8_tasks_by_100_is_exact() {
    let (store, keep) = common::local();
    let n = common::race(Arc::new(store), "c", b"n", TASKS, INCREMENTS).await;
    assert_eq!(n, (TASKS * INCREMENTS) as u64);
    keep.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_race_of_8_tasks_by_100_is_exact() {
    let server = common::server();
    let (store, keep) = common::s3(&server, "race");
    let n = common::race(Arc::new(store), "c", b"n", TASKS, INCREMENTS).await;
    assert_eq!(n, (TASKS * INCREMENTS) as u64);
    keep.cleanup().await;
}

/// Set in the child process: the directory both processes share.
const CHILD_DIR: &str = "STORAGE_REMOTE_CAS_CHILD_DIR";

/// The second process's half of the two-process race; a no-op in a
/// normal test run.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn child_process_increments() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let store = RemoteStore::local_dir(&dir, Arc::new(storage_core::SystemClock)).expect("open");
    let store: Arc<dyn storage_core::AtomicKv> = Arc::new(store);
    let mut handles = Vec::new();
    for _ in 0..TASKS / 2 {
        let s = store.clone();
        handles.push(tokio::spawn(async move {
            common::increment(&*s, "c", b"n", INCREMENTS).await
        }));
    }
    for h in handles {
        h.await.expect("task");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_dir_race_across_two_processes_is_exact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("test binary");
    let mut child = tokio::process::Command::new(exe)
        .args([
            "--exact",
            "child_process_increments",
            "--test-threads=1",
            "--nocapture",
        ])
        .env(CHILD_DIR, dir.path())
        .spawn()
        .expect("spawn the second process");
    let store =
        RemoteStore::local_dir(dir.path(), Arc::new(storage_core::SystemClock)).expect("open");
    let store: Arc<dyn storage_core::AtomicKv> = Arc::new(store);
    let mut handles = Vec::new();
    for _ in 0..TASKS / 2 {
        let s = store.clone();
        handles.push(tokio::spawn(async move {
            common::increment(&*s, "c", b"n", INCREMENTS).await
        }));
    }
    for h in handles {
        h.await.expect("task");
    }
    let status = child.wait().await.expect("wait");
    assert!(status.success(), "second process failed: {status}");
    let n = common::read_counter(&*store, "c", b"n").await;
    assert_eq!(n, (TASKS * INCREMENTS) as u64);
}
