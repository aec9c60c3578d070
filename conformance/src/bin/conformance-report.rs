//! Prints the capability / conformance matrix of every backend available
//! on its embedded defaults, as Markdown; exits non-zero on any failure.
//!
//! `cargo run -p conformance --bin conformance-report -- [--json PATH] [--filter TEXT]`

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Command-line options.
#[derive(Debug, Parser)]
#[command(about = "Run the conformance suite on every backend and print the matrix")]
struct Args {
    /// Also write the report as JSON to this path.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Only run cases whose `tier::case` name contains this text.
    #[arg(long)]
    filter: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let harnesses = conformance::harnesses::workspace_harnesses();
    let mut cases = conformance::suites::all();
    if let Some(f) = &args.filter {
        cases.retain(|c| format!("{}::{}", c.tier.name(), c.name).contains(f.as_str()));
    }
    let report = conformance::run_report(&harnesses, &cases, |backend, case, outcome| {
        let verdict = match outcome {
            conformance::Outcome::Pass => "pass",
            conformance::Outcome::Fail(_) => "FAIL",
            conformance::Outcome::Unsupported(_) => "unsupported",
            conformance::Outcome::NotApplicable(_) => "n/a",
        };
        eprintln!(
            "{backend} {}::{} ... {verdict}",
            case.tier.name(),
            case.name
        );
    });
    // Stop servers the harnesses started before printing and exiting.
    drop(harnesses);
    println!("{}", report.to_markdown());
    if let Some(path) = &args.json {
        let json = match serde_json::to_string_pretty(&report) {
            Ok(j) => j,
            Err(e) => {
                eprintln!("error: cannot encode the report as JSON: {e}");
                return ExitCode::FAILURE;
            }
        };
        if let Err(e) = std::fs::write(path, json) {
            eprintln!("error: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    if report.failures() > 0 {
        eprintln!("{} case(s) failed", report.failures());
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
