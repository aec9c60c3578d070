//! The README's `storage` CLI demo, run exactly as printed there (the
//! shell block between `<!-- storage-cli-demo -->` markers), with the
//! servers it names provided the way a user provides them: `REDIS_URL`
//! (a throwaway redis-server), `S3_ENDPOINT` / `S3_BUCKET` (a throwaway
//! moto_server) and AWS credentials in the environment.

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::Env;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The shell commands of the README's demo block.
fn demo_script() -> String {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    let start = readme
        .find("<!-- storage-cli-demo -->")
        .expect("README has a <!-- storage-cli-demo --> block");
    let end = readme
        .find("<!-- /storage-cli-demo -->")
        .expect("README closes the demo block");
    let block = &readme[start..end];
    let body_start = block.find("```sh\n").expect("a ```sh fence") + "```sh\n".len();
    let body_end = block[body_start..].find("```").expect("a closing fence") + body_start;
    block[body_start..body_end].to_owned()
}

#[test]
fn the_readme_cli_demo_runs_as_printed() {
    let env = Env::new(&["redis", "s3"]);
    let script = demo_script();
    assert!(script.contains("storage copy"), "{script}");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_storage")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let (s3, bucket) = env.s3.as_ref().unwrap();
    let output = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .current_dir(workspace_root())
        .env("PATH", path)
        .env("REDIS_URL", env.redis.as_ref().unwrap().url())
        .env("S3_ENDPOINT", s3.endpoint())
        .env("S3_BUCKET", bucket)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("TMPDIR", env.dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the README demo failed\n--- script\n{script}\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    // What the demo shows: the fixture's state arrived everywhere.
    for expected in [
        "imported 5 entries in 2 namespaces, 10 messages in 3 queues",
        "copied 5 entries in 2 namespaces, 10 messages in 3 queues",
        "copied 5 entries in 2 namespaces, 0 messages in 0 queues",
        "jobs-dlq",
    ] {
        assert!(
            stdout.contains(expected),
            "{expected:?} missing from\n{stdout}"
        );
    }
    // Clean the S3 objects the demo wrote (the bucket goes with Env).
    let rt = tokio::runtime::Runtime::new().unwrap();
    common::set_s3_credentials();
    rt.block_on(async {
        let url = format!("s3://{bucket}/app?endpoint={}", s3.endpoint());
        storage::open(&url).await.unwrap().destroy().await.unwrap();
    });
}
