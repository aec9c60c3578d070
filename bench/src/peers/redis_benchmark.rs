//! `redis-benchmark` against the adapter's throwaway server, at the same
//! concurrency (`-c`), 100-byte values, no pipelining, one slice per call
//! (the request count is sized from the previous slice's rate).

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use parking_lot::Mutex;

use crate::measure::External;

/// `redis-benchmark -t {get|set}` as an external side.
pub fn side(port: u16, test: &'static str, keys: usize) -> External {
    let last_rate = Arc::new(Mutex::new(20_000.0f64));
    Arc::new(move |slice: Duration, conc: usize| {
        let n = ((*last_rate.lock() * slice.as_secs_f64()) as u64).max(conc as u64 * 20);
        let rate = run(port, test, conc, n, keys)?;
        *last_rate.lock() = rate;
        Ok(rate)
    })
}

fn run(port: u16, test: &str, conc: usize, n: u64, keys: usize) -> Result<f64> {
    let out = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-t", test, "-n", &n.to_string(), "-c", &conc.to_string()])
        .args(["-P", "1", "-d", "100", "-r", &keys.to_string(), "--csv"])
        .output()
        .context("running redis-benchmark")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let want = test.to_ascii_uppercase();
    for line in text.lines() {
        let mut f = line.split(',').map(|s| s.trim_matches('"'));
        if f.next() == Some(want.as_str()) {
            if let Some(rate) = f.next().and_then(|r| r.parse().ok()) {
                return Ok(rate);
            }
        }
    }
    bail!("redis-benchmark printed no {want} rate: {text}")
}
