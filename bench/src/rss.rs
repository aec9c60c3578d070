//! Resident memory of the memory backend, measured in child processes (a
//! fresh heap each): bytes per entry for N entries (`/proc/self/statm`
//! before and after), and the peak RSS (`VmHWM`) of a basic workload.

use std::process::Command;
use std::sync::Arc;

use anyhow::{ensure, Context as _, Result};
use bytes::Bytes;
use serde_json::json;
use storage_core::{
    BatchOp, KvStore, PutOptions, QueueConfig, QueueStore, QueueStoreExt, ReceiveOptions,
    ScanRequest, SendMessage,
};
use storage_memory::MemoryStore;

use crate::kv::key_name;
use crate::results::Rss;

const VALUE: usize = 100;

fn resident_bytes() -> Result<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").context("/proc/self/statm")?;
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .context("statm has no resident field")?
        .parse()?;
    Ok(pages * 4096)
}

fn peak_bytes() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status").context("/proc/self/status")?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .context("no VmHWM")?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?;
    Ok(kb * 1024)
}

/// Child: inserts `n` entries, prints {before, after, payload}.
pub async fn child_entries(n: u64) -> Result<()> {
    let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
    // Keys and values are built per batch and dropped after it: what stays
    // is what the store holds.
    let before = resident_bytes()?;
    let value = Bytes::from(vec![b'r'; VALUE]);
    let mut payload = 0u64;
    for start in (0..n).step_by(1000) {
        let ops: Vec<BatchOp> = (start..(start + 1000).min(n))
            .map(|i| {
                let key = Bytes::from(key_name(i));
                payload += (key.len() + VALUE) as u64;
                // A fresh copy per entry, as values arriving over a
                // network would be.
                BatchOp::Put {
                    key,
                    value: Bytes::copy_from_slice(&value),
                    options: PutOptions::default(),
                }
            })
            .collect();
        store.write_batch("rss", ops).await?;
    }
    let after = resident_bytes()?;
    println!(
        "{}",
        json!({"before": before, "after": after, "payload": payload})
    );
    Ok(())
}

/// Child: a basic workload, prints {peak}.
pub async fn child_basic() -> Result<()> {
    let store = MemoryStore::new();
    let kv: Arc<dyn KvStore> = Arc::new(store.clone());
    let q: Arc<dyn QueueStore> = Arc::new(store);
    let value = Bytes::from(vec![b'b'; VALUE]);
    for i in 0..10_000u64 {
        kv.put(
            "basic",
            &Bytes::from(key_name(i)),
            value.clone(),
            PutOptions::default(),
        )
        .await?;
    }
    for i in 0..10_000u64 {
        ensure!(
            kv.get("basic", key_name(i).as_bytes()).await?.is_some(),
            "lost a key"
        );
    }
    for _ in 0..100 {
        kv.scan("basic", ScanRequest::all().with_limit(100)).await?;
    }
    q.create_queue("basic", QueueConfig::default()).await?;
    for _ in 0..1_000 {
        q.send("basic", SendMessage::new(value.clone())).await?;
        let got = q.receive("basic", ReceiveOptions::default()).await?;
        q.ack("basic", &got.first().context("no message")?.receipt)
            .await?;
    }
    println!("{}", json!({"peak": peak_bytes()?}));
    Ok(())
}

fn run_child(args: &[&str]) -> Result<serde_json::Value> {
    let exe = std::env::current_exe()?;
    let out = Command::new(exe).args(args).output().context("RSS child")?;
    ensure!(
        out.status.success(),
        "RSS child failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// Parent: runs both children.
pub fn measure(entries: u64) -> Result<Rss> {
    let e = run_child(&["--child", "rss-entries", &entries.to_string()])?;
    let b = run_child(&["--child", "rss-basic"])?;
    let get = |v: &serde_json::Value, k: &str| v[k].as_f64().with_context(|| format!("no {k}"));
    let (before, after, payload) = (get(&e, "before")?, get(&e, "after")?, get(&e, "payload")?);
    Ok(Rss {
        entries,
        payload_per_entry: payload / entries as f64,
        resident_per_entry: (after - before) / entries as f64,
        basic_workload_peak: get(&b, "peak")? as u64,
        basic_workload: "10k puts + 10k gets of 100 B, 100 scan pages, 1k queue cycles".into(),
    })
}
