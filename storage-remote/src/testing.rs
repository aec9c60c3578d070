//! Throwaway S3 servers for tests and benchmarks: the one place that
//! starts `moto_server` (PyPI `moto[server]`) processes.
//!
//! - `S3_ENDPOINT` set (e.g. `http://127.0.0.1:5000`): that server is
//!   used (a plain `moto_server` there fails the concurrent CAS cases
//!   now and then, for the reason below); buckets are created on it by an unsigned path-style `PUT`
//!   (moto, and most loopback test servers, accept that), or, with
//!   `S3_BUCKET` also set, every store lives in that bucket under a
//!   unique prefix instead.
//! - Otherwise moto is started on a free loopback port, from the
//!   `moto_server` named by `MOTO_SERVER`, else the first `moto_server`
//!   on `PATH` that is a Python script (a wrapper such as a pyenv shim is
//!   passed over), else the one `.ci/install-moto.sh` puts in
//!   `${STORAGE_CI_VENV:-$HOME/.cache/storage-ci/venv}/bin`. It runs in
//!   that `moto_server`'s Python (its `#!` line) through
//!   `moto_linearizable.py`, which serves moto's own application with
//!   each request applied atomically: plain `moto_server` checks
//!   `If-Match` and writes in two steps with no lock between, so
//!   concurrent compare-and-swap loses updates there, where real S3 does
//!   not (see that file). It is killed when the [`S3Server`] is dropped.
//! - Anything that does not work is an `Err("S3 unavailable: <why>")`;
//!   callers fail with it, they never skip.
//!
//! Credentials: `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` when set,
//! else moto's conventional `testing` / `testing`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use storage_core::SharedClock;

use crate::{RemoteStore, S3Config};

/// How long a started server gets to answer HTTP.
const START_TIMEOUT: Duration = Duration::from_secs(60);

fn unavailable(why: impl std::fmt::Display) -> String {
    format!("S3 unavailable: {why}")
}

/// An S3 API endpoint: a `moto_server` this module started, or the one
/// `S3_ENDPOINT` names.
#[derive(Debug)]
pub struct S3Server {
    endpoint: String,
    host_port: String,
    child: Option<Child>,
    shared_bucket: Option<String>,
}

impl S3Server {
    /// `S3_ENDPOINT` when set, else a fresh `moto_server`.
    pub fn start() -> Result<S3Server, String> {
        match std::env::var("S3_ENDPOINT") {
            Ok(endpoint) if !endpoint.is_empty() => {
                let host_port = endpoint
                    .strip_prefix("http://")
                    .ok_or_else(|| {
                        unavailable(format!(
                            "S3_ENDPOINT {endpoint:?} is not an http:// URL (loopback test servers only)"
                        ))
                    })?
                    .trim_end_matches('/')
                    .to_owned();
                let shared_bucket = std::env::var("S3_BUCKET").ok().filter(|b| !b.is_empty());
                Ok(S3Server {
                    endpoint,
                    host_port,
                    child: None,
                    shared_bucket,
                })
            }
            _ => S3Server::spawn(&[]),
        }
    }

    /// Always a fresh moto on a free loopback port (serving requests
    /// atomically, see the module docs), with extra environment
    /// variables (e.g. `INITIAL_NO_AUTH_ACTION_COUNT=0` makes moto check
    /// credentials).
    pub fn spawn(env: &[(&str, &str)]) -> Result<S3Server, String> {
        let bin = moto_binary()?;
        let python = moto_python(&bin)?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .map_err(|e| unavailable(format!("no free loopback port: {e}")))?;
        let mut cmd = Command::new(&python);
        cmd.args(["-c", LINEARIZABLE_MOTO, "127.0.0.1", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().map_err(|e| {
            unavailable(format!(
                "cannot start moto with {} (the Python of {}): {e}",
                python.display(),
                bin.display()
            ))
        })?;
        let host_port = format!("127.0.0.1:{port}");
        let mut server = S3Server {
            endpoint: format!("http://{host_port}"),
            host_port,
            child: Some(child),
            shared_bucket: None,
        };
        server.wait_ready()?;
        Ok(server)
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if http(&self.host_port, "GET", "/").is_ok() {
                return Ok(());
            }
            if let Some(child) = &mut self.child {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(unavailable(format!(
                        "moto exited at start ({status}); `<its Python> -c 'import moto.server'` tells why"
                    )));
                }
            }
            if Instant::now() > deadline {
                return Err(unavailable(format!(
                    "moto_server on {} did not answer within {START_TIMEOUT:?}",
                    self.host_port
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The endpoint URL.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// A config for `bucket` on this server with the test credentials.
    pub fn config(&self, bucket: &str) -> S3Config {
        let key = std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_else(|_| "testing".to_owned());
        let secret =
            std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or_else(|_| "testing".to_owned());
        S3Config::endpoint(&self.endpoint, bucket, key, secret)
    }

    /// Creates a bucket (unsigned path-style `PUT /<bucket>`).
    pub fn create_bucket(&self, bucket: &str) -> Result<(), String> {
        let status = http(&self.host_port, "PUT", &format!("/{bucket}"))?;
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(unavailable(format!(
                "creating bucket {bucket} on {} answered HTTP {status}",
                self.endpoint
            )))
        }
    }

    /// Deletes an (empty) bucket; best effort.
    pub fn delete_bucket(&self, bucket: &str) {
        let _ = http(&self.host_port, "DELETE", &format!("/{bucket}"));
    }

    /// A fresh store for one test: its own bucket (or, with `S3_BUCKET`,
    /// its own prefix in that bucket). Call [`TestBucket::cleanup`] after.
    pub fn store(
        &self,
        label: &str,
        clock: SharedClock,
    ) -> Result<(RemoteStore, TestBucket), String> {
        let (bucket, prefix, owned) = match &self.shared_bucket {
            Some(b) => (b.clone(), unique_name(label), false),
            None => {
                let b = unique_name(label);
                self.create_bucket(&b)?;
                (b, String::new(), true)
            }
        };
        let store = RemoteStore::s3(&self.config(&bucket).with_prefix(prefix), clock)
            .map_err(unavailable)?;
        Ok((
            store.clone(),
            TestBucket {
                store,
                bucket,
                owned,
                host_port: self.host_port.clone(),
            },
        ))
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// What [`S3Server::store`] made; [`TestBucket::cleanup`] removes it.
#[derive(Debug)]
pub struct TestBucket {
    store: RemoteStore,
    bucket: String,
    owned: bool,
    host_port: String,
}

impl TestBucket {
    /// The bucket name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Deletes every object of the store, then the bucket if this test
    /// created it. Best effort: a test that stopped the server has
    /// nothing left to clean.
    pub async fn cleanup(self) {
        let _ = self.store.destroy().await;
        if self.owned {
            let _ = http(&self.host_port, "DELETE", &format!("/{}", self.bucket));
        }
    }
}

/// A bucket-name-safe unique name: lower-case letters, digits and `-`,
/// at most 63 characters.
pub fn unique_name(label: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let label: String = label
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .take(24)
        .collect();
    format!(
        "t-{label}-{}-{}-{nanos:x}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Where the `moto_server` binary is.
pub fn moto_binary() -> Result<PathBuf, String> {
    if let Ok(p) = std::env::var("MOTO_SERVER") {
        if !p.is_empty() {
            let p = PathBuf::from(p);
            return if p.is_file() {
                Ok(p)
            } else {
                Err(unavailable(format!(
                    "MOTO_SERVER={} is not a file",
                    p.display()
                )))
            };
        }
    }
    // A `moto_server` on PATH that is not a Python script (a pyenv shim
    // is a bash script) is passed over: its Python cannot be read off
    // it, and the venv below may hold a usable one.
    let mut passed_over = Vec::new();
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let p = dir.join("moto_server");
            if p.is_file() {
                match moto_python(&p) {
                    Ok(_) => return Ok(p),
                    Err(why) => passed_over.push(why),
                }
            }
        }
    }
    let venv = std::env::var_os("STORAGE_CI_VENV")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/storage-ci/venv"))
        });
    if let Some(p) = venv.map(|v| v.join("bin/moto_server")) {
        if p.is_file() {
            return Ok(p);
        }
    }
    let mut why = "moto_server not found (set MOTO_SERVER, put it on PATH, or run \
                   .ci/install-moto.sh); or set S3_ENDPOINT"
        .to_owned();
    for p in passed_over {
        why.push_str("; passed over: ");
        why.push_str(&p);
    }
    Err(unavailable(why))
}

/// The launcher that serves moto's application one request at a time.
const LINEARIZABLE_MOTO: &str = include_str!("testing/moto_linearizable.py");

/// The Python interpreter a `moto_server` script runs in: the program
/// its `#!` line names (`#!/usr/bin/env python3` names `python3`).
fn moto_python(bin: &std::path::Path) -> Result<PathBuf, String> {
    let mut head = [0u8; 512];
    let n = std::fs::File::open(bin)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| unavailable(format!("cannot read {}: {e}", bin.display())))?;
    let first = String::from_utf8_lossy(head.get(..n).unwrap_or_default())
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    let mut words = first
        .strip_prefix("#!")
        .ok_or_else(|| {
            unavailable(format!(
                "{} is not a Python script (no #! line), so moto's Python cannot be found",
                bin.display()
            ))
        })?
        .split_whitespace();
    let program = words.next().unwrap_or_default();
    let program = if program.ends_with("/env") {
        words.find(|w| !w.starts_with('-')).unwrap_or_default()
    } else {
        program
    };
    if program.is_empty() {
        return Err(unavailable(format!(
            "the #! line of {} names no interpreter",
            bin.display()
        )));
    }
    let name = program.rsplit('/').next().unwrap_or(program);
    if !(name.starts_with("python") || name.starts_with("pypy")) {
        return Err(unavailable(format!(
            "{} is run by {program}, not by a Python (a wrapper such as a pyenv shim?); \
             set MOTO_SERVER to the script itself (`pyenv which moto_server`)",
            bin.display()
        )));
    }
    Ok(PathBuf::from(program))
}

/// One unsigned HTTP/1.1 request with an empty body; the status code.
fn http(host_port: &str, method: &str, path: &str) -> Result<u16, String> {
    let mut s = TcpStream::connect(host_port)
        .map_err(|e| unavailable(format!("cannot connect to {host_port}: {e}")))?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host_port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes())
        .map_err(|e| unavailable(format!("cannot write to {host_port}: {e}")))?;
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let head =
        String::from_utf8_lossy(buf.get(..buf.len().min(64)).unwrap_or_default()).into_owned();
    head.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| unavailable(format!("no HTTP answer from {host_port}")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::moto_python;
    use std::path::PathBuf;

    fn python_of(first_line: &str) -> Result<PathBuf, String> {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("moto_server");
        std::fs::write(&bin, format!("{first_line}\nimport re\n")).unwrap();
        moto_python(&bin)
    }

    #[test]
    fn the_interpreter_is_the_one_the_shebang_names() {
        assert_eq!(
            python_of("#!/venv/bin/python").unwrap(),
            PathBuf::from("/venv/bin/python")
        );
        assert_eq!(
            python_of("#!/usr/bin/env -S python3 -u").unwrap(),
            PathBuf::from("python3")
        );
        assert!(python_of("\u{7f}ELF").unwrap_err().contains("no #! line"));
        assert!(python_of("#!")
            .unwrap_err()
            .contains("names no interpreter"));
        // A pyenv shim is a bash script that execs the real one.
        assert!(python_of("#!/usr/bin/env bash")
            .unwrap_err()
            .contains("run by bash, not by a Python"));
        assert!(python_of("#!/bin/sh")
            .unwrap_err()
            .contains("run by /bin/sh"));
        assert_eq!(
            python_of("#!/opt/pypy/bin/pypy3").unwrap(),
            PathBuf::from("/opt/pypy/bin/pypy3")
        );
    }
}
