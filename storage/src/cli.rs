//! The `storage` command line: argument parsing, progress bars, output.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use storage::{ImportMode, Summary};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Export, import, copy, inspect and check storage backends by URL.
///
/// URLs: memory://[?snapshot=PATH], sqlite:///path | sqlite::memory:,
/// duckdb:///path | duckdb::memory:, redis://host:port/db[?prefix=P],
/// redis+cluster://host:port[?node=host:port&prefix=P],
/// s3://bucket/prefix[?endpoint=URL&region=R], file:///dir.
/// S3 credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
#[derive(Debug, Parser)]
#[command(name = "storage", version)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write a store's KV and queue state as a snapshot (to stdout by default).
    Export {
        /// The store.
        url: String,
        /// Write the snapshot here instead of stdout; the summary then goes to stdout.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Only the KV state (no queues).
        #[arg(long)]
        kv_only: bool,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Load a snapshot (from stdin by default) into a store. The snapshot is
    /// verified completely before the first write.
    Import {
        /// The store.
        url: String,
        /// Read the snapshot from this file instead of stdin.
        #[arg(short, long)]
        input: Option<PathBuf>,
        /// `replace`: the store ends up holding exactly the snapshot;
        /// `merge`: snapshot keys and queues overwrite their namesakes.
        #[arg(long, value_enum, default_value_t = Mode::Replace)]
        mode: Mode,
        /// Shift every instant in the snapshot so it looks taken just now:
        /// TTLs, delays, visibility timeouts and retention keep the time
        /// they had left at the export (for fixtures).
        #[arg(long)]
        rebase: bool,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Copy one store's state into another (export, verify, import).
    Copy {
        /// Source store.
        from: String,
        /// Target store.
        to: String,
        /// As for `import`.
        #[arg(long, value_enum, default_value_t = Mode::Replace)]
        mode: Mode,
        /// Only the KV state (for a target without a queue tier).
        #[arg(long)]
        kv_only: bool,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List namespaces with key counts and queues with visible / in-flight /
    /// delayed counts.
    Inspect {
        /// The store.
        url: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run the conformance suite against the backend the URL names (each
    /// case on a fresh isolated store beside it) and print the matrix.
    Check {
        /// The store.
        url: String,
        /// Only cases whose `tier::case` name contains this text.
        #[arg(long)]
        filter: Option<String>,
        /// Print the report as JSON instead of the Markdown matrix.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Mode {
    Replace,
    Merge,
}

impl From<Mode> for ImportMode {
    fn from(m: Mode) -> ImportMode {
        match m {
            Mode::Replace => ImportMode::Replace,
            Mode::Merge => ImportMode::Merge,
        }
    }
}

/// Runs one command.
pub fn run(args: Args) -> Result<ExitCode, Error> {
    if let Command::Check { url, filter, json } = &args.command {
        // The suite runs each case on a runtime of its own.
        return check(url, filter.as_deref(), *json);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run_async(args.command))
}

async fn run_async(command: Command) -> Result<ExitCode, Error> {
    match command {
        Command::Export {
            url,
            output,
            kv_only,
            json,
        } => {
            let store = storage::open(&url).await?;
            let bar = reading_spinner("exporting");
            let mut bytes = Vec::new();
            let summary =
                storage::export(&store, scope(kv_only), &mut bytes, &|s| show_read(&bar, s))
                    .await?;
            bar.finish_and_clear();
            match &output {
                Some(path) => {
                    std::fs::write(path, &bytes).map_err(|e| format!("{}: {e}", path.display()))?;
                    print_summary("exported", &summary, json, &mut std::io::stdout())?;
                }
                None => {
                    let mut out = std::io::stdout().lock();
                    out.write_all(&bytes)?;
                    out.flush()?;
                    print_summary("exported", &summary, json, &mut std::io::stderr())?;
                }
            }
        }
        Command::Import {
            url,
            input,
            mode,
            rebase,
            json,
        } => {
            let bytes = match &input {
                Some(path) => {
                    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?
                }
                None => {
                    let mut stdin = std::io::stdin();
                    if stdin.is_terminal() {
                        return Err("import reads the snapshot from stdin: `storage import URL < FILE` (or --input FILE)".into());
                    }
                    let mut bytes = Vec::new();
                    stdin.read_to_end(&mut bytes)?;
                    bytes
                }
            };
            // Refuse a bad snapshot before connecting anywhere.
            storage_core::snapshot::decode(&bytes)?;
            let store = storage::open(&url).await?;
            warn_if_private(&store);
            let bytes = if rebase {
                storage::rebase(&store, &bytes)?
            } else {
                bytes
            };
            let bar = writing_bar("importing");
            let summary = storage::import(&store, &bytes, mode.into(), &|d, t| {
                show_written(&bar, d, t)
            })
            .await?;
            bar.finish_and_clear();
            print_summary("imported", &summary, json, &mut std::io::stdout())?;
        }
        Command::Copy {
            from,
            to,
            mode,
            kv_only,
            json,
        } => {
            let source = storage::open(&from).await?;
            let target = storage::open(&to).await?;
            warn_if_private(&target);
            let reading = reading_spinner("reading");
            let writing = writing_bar("writing");
            writing.set_draw_target(indicatif::ProgressDrawTarget::hidden());
            let summary = storage::copy(
                &source,
                &target,
                scope(kv_only),
                mode.into(),
                &|s| show_read(&reading, s),
                &|d, t| {
                    if !reading.is_finished() {
                        reading.finish_and_clear();
                        writing.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                    }
                    show_written(&writing, d, t);
                },
            )
            .await?;
            reading.finish_and_clear();
            writing.finish_and_clear();
            print_summary("copied", &summary, json, &mut std::io::stdout())?;
        }
        Command::Inspect { url, json } => {
            let store = storage::open(&url).await?;
            let inspection = storage::inspect(&store).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&inspection)?);
            } else {
                print!("{}", inspection.to_text());
            }
        }
        Command::Check { .. } => {}
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(feature = "check")]
fn check(url: &str, filter: Option<&str>, json: bool) -> Result<ExitCode, Error> {
    let report = storage::check::check(url, filter, |backend, case, outcome| {
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
    })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{}", report.to_markdown());
    }
    if report.failures() > 0 {
        eprintln!("{} case(s) failed", report.failures());
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(not(feature = "check"))]
fn check(_url: &str, _filter: Option<&str>, _json: bool) -> Result<ExitCode, Error> {
    Err("`storage check` needs the `check` cargo feature of the `storage` crate, which this build does not have".into())
}

/// A `memory://` store without `?snapshot=` dies with this process.
fn warn_if_private(store: &storage::Store) {
    if matches!(
        store.location(),
        storage::Location::Memory { snapshot: None }
    ) {
        eprintln!(
            "note: memory:// without ?snapshot=PATH is private to this process; what is written to it is gone when the command ends"
        );
    }
}

fn scope(kv_only: bool) -> storage::Scope {
    if kv_only {
        storage::Scope::KvOnly
    } else {
        storage::Scope::All
    }
}

fn reading_spinner(what: &'static str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {prefix}: {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_prefix(what);
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

fn writing_bar(what: &'static str) -> ProgressBar {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix}: [{bar:30}] {pos}/{len} entries+messages ({eta} left) {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_prefix(what);
    bar
}

fn show_read(bar: &ProgressBar, s: &Summary) {
    bar.set_message(format!(
        "{} entries in {} namespaces, {} messages in {} queues",
        s.entries, s.namespaces, s.messages, s.queues
    ));
}

fn show_written(bar: &ProgressBar, done: &Summary, total: &Summary) {
    bar.set_length(total.entries.saturating_add(total.messages));
    bar.set_position(done.entries.saturating_add(done.messages));
}

fn print_summary(verb: &str, s: &Summary, json: bool, out: &mut dyn Write) -> Result<(), Error> {
    if json {
        let value = serde_json::json!({
            "namespaces": s.namespaces,
            "entries": s.entries,
            "queues": s.queues,
            "messages": s.messages,
            "bytes": s.bytes,
        });
        writeln!(out, "{value}")?;
    } else {
        writeln!(
            out,
            "{verb} {} entries in {} namespaces, {} messages in {} queues ({} bytes)",
            s.entries, s.namespaces, s.messages, s.queues, s.bytes
        )?;
    }
    Ok(())
}
