//! OpenDAL's sqlite service as a KV peer, driven by `bench` over stdin:
//!
//! - `preload <value size> <keys>` → `ok` (a fresh table, every key written)
//! - `run <get|put> <value size> <keys> <concurrency> <seconds>` → ops/s
//!
//! Keys, the key sequence and the per-task key stripes are the same as
//! the main runner's (`bench/src/kv.rs`). The table is created the way
//! OpenDAL's docs expect (`key TEXT PRIMARY KEY, value BLOB`); the
//! connection uses sqlx's defaults (WAL, `synchronous = FULL`).

use std::io::{BufRead, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use opendal::Operator;

fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn key(i: u64) -> String {
    format!("bench/key-{i:010}")
}

struct Peer {
    dir: std::path::PathBuf,
    op: Option<Operator>,
    generation: u32,
    seq: u64,
}

impl Peer {
    async fn preload(&mut self, size: usize, keys: u64) -> Result<()> {
        self.generation += 1;
        let path = self.dir.join(format!("opendal-{}.db", self.generation));
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let pool = sqlx::SqlitePool::connect(&url)
            .await
            .context("sqlx connect")?;
        sqlx::query("CREATE TABLE kv (key TEXT PRIMARY KEY, value BLOB)")
            .execute(&pool)
            .await?;
        pool.close().await;
        let op = Operator::new(
            opendal::services::Sqlite::default()
                .connection_string(&url)
                .table("kv")
                .key_field("key")
                .value_field("value"),
        )?;
        let value = vec![b'v'; size];
        for i in 0..keys {
            op.write(&key(i), value.clone()).await?;
        }
        self.op = Some(op);
        Ok(())
    }

    async fn run(
        &mut self,
        work: &str,
        size: usize,
        keys: u64,
        conc: usize,
        secs: f64,
    ) -> Result<f64> {
        let op = self.op.clone().context("run before preload")?;
        let put = match work {
            "get" => false,
            "put" => true,
            other => bail!("unknown work {other}"),
        };
        let value = Arc::new(vec![b'v'; size]);
        let start = Instant::now();
        let deadline = start + Duration::from_secs_f64(secs);
        let base = self.seq;
        self.seq += 1 << 32;
        let per = (keys / conc as u64).max(1);
        let mut tasks = Vec::new();
        for t in 0..conc {
            let (op, value) = (op.clone(), value.clone());
            tasks.push(tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < deadline {
                    let i = base + n;
                    if put {
                        let k = t as u64 + conc as u64 * (mix(i) % per);
                        op.write(&key(k), value.as_ref().clone()).await?;
                    } else {
                        let b = op.read(&key(mix(i) % keys)).await?;
                        if b.len() != size {
                            bail!("read {} bytes, expected {size}", b.len());
                        }
                    }
                    n += 1;
                }
                Ok(n)
            }));
        }
        let mut total = 0;
        for t in tasks {
            total += t.await??;
        }
        Ok(total as f64 / start.elapsed().as_secs_f64())
    }
}

async fn handle(peer: &mut Peer, line: &str) -> Result<String> {
    let f: Vec<&str> = line.split_whitespace().collect();
    match f.as_slice() {
        ["preload", size, keys] => {
            peer.preload(size.parse()?, keys.parse()?).await?;
            Ok("ok".into())
        }
        ["run", work, size, keys, conc, secs] => {
            let rate = peer
                .run(
                    work,
                    size.parse()?,
                    keys.parse()?,
                    conc.parse()?,
                    secs.parse()?,
                )
                .await?;
            Ok(format!("{rate}"))
        }
        _ => bail!("unknown request {line:?}"),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let dir = std::env::args().nth(1).context("usage: peer-sqlite DIR")?;
    let mut peer = Peer {
        dir: dir.into(),
        op: None,
        generation: 0,
        seq: 0,
    };
    let stdin = std::io::stdin();
    let mut out = std::io::stdout();
    for line in stdin.lock().lines() {
        let line = line?;
        let reply = match handle(&mut peer, &line).await {
            Ok(r) => r,
            Err(e) => format!("error {e:#}"),
        };
        writeln!(out, "{reply}")?;
        out.flush()?;
    }
    Ok(())
}
