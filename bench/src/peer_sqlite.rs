//! The OpenDAL sqlite peer, in another process: OpenDAL's sqlite service
//! pulls `sqlx` 0.8 → `libsqlite3-sys` 0.30, and Cargo allows one
//! `links = "sqlite3"` package per graph, which rusqlite 0.31 (0.28)
//! already is. `bench/peer-sqlite` is a Cargo project of its own; this
//! side drives it over stdin/stdout, one slice per request, so its slices
//! interleave with the adapter's like every other side's:
//!
//! - `preload <value size> <keys>` → `ok`
//! - `run <get|put> <value size> <keys> <concurrency> <seconds>` → ops/s

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use async_trait::async_trait;
use parking_lot::Mutex;

use crate::kv::{self, Fixture, Work};
use crate::measure::{External, Op};

struct Proc {
    _child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Proc {
    fn ask(&mut self, line: &str) -> Result<String> {
        writeln!(self.stdin, "{line}")?;
        self.stdin.flush()?;
        let mut reply = String::new();
        self.stdout.read_line(&mut reply)?;
        let reply = reply.trim().to_owned();
        if let Some(err) = reply.strip_prefix("error ") {
            bail!("peer-sqlite: {err}");
        }
        if reply.is_empty() {
            bail!("peer-sqlite exited");
        }
        Ok(reply)
    }
}

/// The peer process.
pub struct PeerSqlite {
    bin: PathBuf,
    dir: PathBuf,
    proc: Arc<Mutex<Option<Proc>>>,
}

impl PeerSqlite {
    /// Runs `bin` with its database files in `dir`.
    pub fn new(bin: &Path, dir: PathBuf) -> PeerSqlite {
        PeerSqlite {
            bin: bin.to_owned(),
            dir,
            proc: Arc::new(Mutex::new(None)),
        }
    }
}

#[async_trait]
impl kv::Comparator for PeerSqlite {
    fn name(&self) -> String {
        "opendal sqlite (own process)".into()
    }
    fn target(&self) -> Option<f64> {
        Some(1.2)
    }
    async fn preload(&self, fx: &Fixture) -> Result<()> {
        let (bin, dir, proc) = (self.bin.clone(), self.dir.clone(), self.proc.clone());
        let (size, keys) = (fx.value.len(), fx.keys.len());
        tokio::task::spawn_blocking(move || {
            let mut g = proc.lock();
            if g.is_none() {
                let mut child = Command::new(&bin)
                    .arg(&dir)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .spawn()
                    .with_context(|| format!("starting {}", bin.display()))?;
                let stdin = child.stdin.take().context("peer stdin")?;
                let stdout = BufReader::new(child.stdout.take().context("peer stdout")?);
                *g = Some(Proc {
                    _child: child,
                    stdin,
                    stdout,
                });
            }
            let p = g.as_mut().context("peer process")?;
            p.ask(&format!("preload {size} {keys}")).map(|_| ())
        })
        .await?
    }
    fn op(self: Arc<Self>, _work: Work, _fx: Arc<Fixture>, _conc: usize) -> Option<Op> {
        None
    }
    fn external(&self, work: Work, fx: &Fixture) -> Option<External> {
        let name = match work {
            Work::Get => "get",
            Work::Put => "put",
            _ => return None,
        };
        let (size, keys, proc) = (fx.value.len(), fx.keys.len(), self.proc.clone());
        Some(Arc::new(move |slice: Duration, conc: usize| {
            let mut g = proc.lock();
            let p = g.as_mut().context("peer process not started")?;
            let reply = p.ask(&format!(
                "run {name} {size} {keys} {conc} {}",
                slice.as_secs_f64()
            ))?;
            reply.parse().context("peer rate")
        }))
    }
}
