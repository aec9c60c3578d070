//! Command-line flags (each also readable from a `BENCH_*` variable).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};

/// Every group of measurements, in run order.
pub const GROUPS: &[&str] = &["kv", "queue", "sql", "redis-benchmark", "scale", "rss"];
/// Every backend.
pub const BACKENDS: &[&str] = &[
    "memory",
    "sqlite",
    "redis",
    "duckdb",
    "remote-memory",
    "remote-local",
    "s3",
];

/// What to run and where to write it.
#[derive(Debug, Clone)]
pub struct Config {
    /// Measured time per side per row (split over the rounds).
    pub seconds: f64,
    /// Rounds per row (each side one slice per round, order rotated).
    pub rounds: usize,
    /// Groups to run (see [`GROUPS`]).
    pub groups: Vec<String>,
    /// Backends to run (see [`BACKENDS`]).
    pub backends: Vec<String>,
    /// Largest store size of the scale curves.
    pub max_scale: u64,
    /// Seconds a backend may spend filling one scale step before the
    /// curve stops at the size it reached.
    pub fill_budget: f64,
    /// Markdown report.
    pub out: PathBuf,
    /// JSON results.
    pub json: PathBuf,
    /// Hand-written notes appended to the report.
    pub notes: PathBuf,
    /// The scale plot.
    pub svg: PathBuf,
    /// The OpenDAL-sqlite peer binary (a separate Cargo project).
    pub peer_sqlite: Option<PathBuf>,
    /// A smoke run.
    pub quick: bool,
    /// Child mode (`rss-entries N`, `rss-basic`): measure and print JSON.
    pub child: Option<(String, u64)>,
    /// The command line, for the report.
    pub command: String,
    /// Re-render the report from this results file instead of measuring
    /// (after editing the notes).
    pub from_json: Option<PathBuf>,
    /// Lay this run's figures over the results file already there
    /// instead of replacing it (re-measure one group or backend).
    pub merge: bool,
}

impl Config {
    /// Reads flags, falling back to `BENCH_*` variables, then defaults.
    pub fn from_args() -> Result<Config> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let mut args = std::env::args().skip(1);
        let mut quick = env("BENCH_QUICK").is_some_and(|v| v != "0");
        let mut merge = env("BENCH_MERGE").is_some_and(|v| v != "0");
        let mut seconds = env("BENCH_SECONDS");
        let mut rounds = env("BENCH_ROUNDS");
        let mut groups = env("BENCH_GROUPS");
        let mut backends = env("BENCH_BACKENDS");
        let mut max_scale = env("BENCH_MAX_SCALE");
        let mut fill_budget = env("BENCH_FILL_BUDGET");
        let mut out = PathBuf::from("BENCHMARKS.md");
        let mut json = PathBuf::from("bench/results.json");
        let mut notes = PathBuf::from("bench/NOTES.md");
        let mut svg = PathBuf::from("bench/scale.svg");
        let mut peer_sqlite = env("BENCH_PEER_SQLITE").map(PathBuf::from);
        let mut child = None;
        let mut command = env("BENCH_COMMAND");
        let mut from_json = None;
        while let Some(arg) = args.next() {
            let mut value =
                |name: &str| args.next().with_context(|| format!("{name} needs a value"));
            match arg.as_str() {
                "--quick" => quick = true,
                "--merge" => merge = true,
                "--seconds" => seconds = Some(value("--seconds")?),
                "--rounds" => rounds = Some(value("--rounds")?),
                "--groups" => groups = Some(value("--groups")?),
                "--backends" => backends = Some(value("--backends")?),
                "--max-scale" => max_scale = Some(value("--max-scale")?),
                "--fill-budget" => fill_budget = Some(value("--fill-budget")?),
                "--out" => out = value("--out")?.into(),
                "--json" => json = value("--json")?.into(),
                "--notes" => notes = value("--notes")?.into(),
                "--svg" => svg = value("--svg")?.into(),
                "--peer-sqlite" => peer_sqlite = Some(value("--peer-sqlite")?.into()),
                "--command" => command = Some(value("--command")?),
                "--render" => from_json = Some(value("--render")?.into()),
                "--child" => {
                    let mode = value("--child")?;
                    let n = if mode == "rss-entries" {
                        value("--child rss-entries")?.parse()?
                    } else {
                        0
                    };
                    child = Some((mode, n));
                }
                "-h" | "--help" => {
                    println!("{}", HELP);
                    std::process::exit(0);
                }
                other => bail!("unknown argument {other:?}\n{HELP}"),
            }
        }
        let list = |v: Option<String>, all: &[&str]| -> Result<Vec<String>> {
            let items: Vec<String> = match v {
                None => all.iter().map(|s| (*s).to_owned()).collect(),
                Some(v) => v.split(',').map(|s| s.trim().to_owned()).collect(),
            };
            for i in &items {
                if !all.contains(&i.as_str()) {
                    bail!("unknown name {i:?}; known: {}", all.join(", "));
                }
            }
            Ok(items)
        };
        let parse_f = |v: Option<String>, d: f64| -> Result<f64> {
            v.map_or(Ok(d), |v| v.parse().context("not a number"))
        };
        Ok(Config {
            seconds: parse_f(seconds, if quick { 0.3 } else { 1.5 })?,
            rounds: rounds.map_or(Ok(if quick { 2 } else { 3 }), |v| v.parse())?,
            groups: list(groups, GROUPS)?,
            backends: list(backends, BACKENDS)?,
            max_scale: max_scale
                .map_or(Ok(if quick { 10_000 } else { 1_000_000 }), |v| v.parse())?,
            fill_budget: parse_f(fill_budget, if quick { 20.0 } else { 120.0 })?,
            out,
            json,
            notes,
            svg,
            peer_sqlite,
            quick,
            child,
            command: command.unwrap_or_else(|| std::env::args().collect::<Vec<_>>().join(" ")),
            from_json,
            merge,
        })
    }

    /// Whether a group is selected.
    pub fn group(&self, g: &str) -> bool {
        self.groups.iter().any(|x| x == g)
    }

    /// Whether a backend is selected.
    pub fn backend(&self, b: &str) -> bool {
        self.backends.iter().any(|x| x == b)
    }

    /// One slice of one side.
    pub fn slice(&self) -> Duration {
        Duration::from_secs_f64(self.seconds / self.rounds.max(1) as f64)
    }
}

const HELP: &str = "\
bench: every adapter beside its raw driver and its peers; writes BENCHMARKS.md

  --quick              smoke run (0.3 s per side, 2 rounds, scale up to 10k)
  --seconds F          measured seconds per side per row (BENCH_SECONDS, 1.5)
  --rounds N           rounds per row, order rotated (BENCH_ROUNDS, 3)
  --groups LIST        kv,queue,sql,redis-benchmark,scale,rss (BENCH_GROUPS)
  --backends LIST      memory,sqlite,redis,duckdb,remote-memory,remote-local,s3
                       (BENCH_BACKENDS)
  --max-scale N        largest scale step (BENCH_MAX_SCALE, 1000000)
  --fill-budget S      seconds to fill one scale step (BENCH_FILL_BUDGET, 120)
  --out PATH           Markdown report (BENCHMARKS.md)
  --json PATH          JSON results (bench/results.json)
  --notes PATH         hand-written notes appended (bench/NOTES.md)
  --svg PATH           scale plot (bench/scale.svg)
  --peer-sqlite PATH   the OpenDAL-sqlite peer binary (bench/peer-sqlite)
  --merge              keep the figures of the results file (--json) that
                       this run does not measure, replace the ones it does
                       (BENCH_MERGE=1); without it a run replaces the file
  --render JSON        measure nothing: rewrite the report from a results
                       file (e.g. after editing bench/NOTES.md)";
