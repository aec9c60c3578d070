//! What a run measured: the rows of the comparison tables, the scale
//! points and the memory figures. Serialised as `results.json`.

use serde::{Deserialize, Serialize};

/// One comparison: the adapter beside one comparator, same workload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    /// "KV", "Queue", "SQL" or "redis-benchmark".
    pub group: String,
    /// e.g. "get 100 B".
    pub workload: String,
    /// e.g. "sqlite".
    pub backend: String,
    /// Tasks (clients) at once.
    pub concurrency: usize,
    /// Adapter operations per second (median over rounds).
    pub adapter: f64,
    /// e.g. "rusqlite", "opendal", "omniqueue", "redis-benchmark".
    pub comparator: String,
    /// Comparator operations per second (median over rounds).
    pub comparator_ops: f64,
    /// Ratio the adapter should reach; `None` = reported only.
    pub target: Option<f64>,
}

impl Row {
    /// adapter ÷ comparator.
    pub fn ratio(&self) -> f64 {
        self.adapter / self.comparator_ops
    }

    /// "met", "missed by 12%", "missed by 3.4×" or "–".
    pub fn verdict(&self) -> String {
        verdict(self.ratio(), self.target)
    }
}

/// Verdict of a ratio against a minimum target.
pub fn verdict(ratio: f64, target: Option<f64>) -> String {
    let Some(t) = target else {
        return "–".to_owned();
    };
    if !ratio.is_finite() {
        "no figure".to_owned()
    } else if ratio >= t {
        "met".to_owned()
    } else if ratio < t / 2.0 {
        format!("missed by {:.1}×", t / ratio)
    } else {
        format!("missed by {:.0}%", (1.0 - ratio / t) * 100.0)
    }
}

/// One point of a scale curve.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScalePoint {
    /// e.g. "sqlite".
    pub backend: String,
    /// "scan page (100)" or "receive (1)".
    pub metric: String,
    /// Entries or messages stored.
    pub size: u64,
    /// Samples taken.
    pub samples: usize,
    /// Median latency, µs.
    pub p50_us: f64,
    /// Mean latency, µs.
    pub mean_us: f64,
    /// 99th percentile, µs.
    pub p99_us: f64,
}

/// A scale curve that stopped early, and why.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScaleLimit {
    /// e.g. "s3".
    pub backend: String,
    /// The metric whose curve stopped.
    pub metric: String,
    /// The largest size measured.
    pub reached: u64,
    /// Why it stopped.
    pub reason: String,
}

/// Resident memory of the memory backend.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Rss {
    /// Entries inserted for the per-entry figure.
    pub entries: u64,
    /// Key + value bytes per entry.
    pub payload_per_entry: f64,
    /// Growth of resident bytes per entry.
    pub resident_per_entry: f64,
    /// Peak resident set of the basic workload, bytes.
    pub basic_workload_peak: u64,
    /// What the basic workload did.
    pub basic_workload: String,
}

/// Machine and run description.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Machine {
    /// CPU model from /proc/cpuinfo.
    pub cpu: String,
    /// Logical CPUs.
    pub cores: usize,
    /// Total RAM, bytes.
    pub ram: u64,
    /// Kernel release.
    pub kernel: String,
    /// `rustc -V`.
    pub rustc: String,
    /// `redis-server --version`.
    pub redis: String,
    /// Load average (1, 5, 15 min) at start.
    pub load_start: String,
    /// Load average at end.
    pub load_end: String,
    /// UTC start time.
    pub started: String,
    /// Wall-clock seconds of the run.
    pub duration_s: f64,
}

/// Everything a run produced.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Results {
    /// The machine.
    pub machine: Machine,
    /// The exact command.
    pub command: String,
    /// Seconds per side per row, rounds, max scale.
    pub settings: String,
    /// Comparison rows.
    pub rows: Vec<Row>,
    /// Scale curve points.
    pub scale: Vec<ScalePoint>,
    /// Curves that stopped early.
    pub scale_limits: Vec<ScaleLimit>,
    /// Memory backend RSS.
    pub rss: Option<Rss>,
    /// Workloads that failed or were skipped, with the reason.
    pub problems: Vec<String>,
}

impl Results {
    /// This run's figures laid over an earlier run's (`--merge`): every
    /// row, scale point and limit this run measured replaces the earlier
    /// one with the same identity; the rest of the earlier run stays, and
    /// the report names both runs. `remeasured` tells whether this run
    /// redid what an earlier problem was about, which then is dropped.
    pub fn merged_over(self, old: Results, remeasured: &dyn Fn(&str) -> bool) -> Results {
        let row_id = |r: &Row| {
            (
                r.group.clone(),
                r.workload.clone(),
                r.backend.clone(),
                r.concurrency,
                r.comparator.clone(),
            )
        };
        let new_rows: std::collections::HashSet<_> = self.rows.iter().map(row_id).collect();
        let mut rows: Vec<Row> = old
            .rows
            .into_iter()
            .filter(|r| !new_rows.contains(&row_id(r)))
            .collect();
        rows.extend(self.rows);

        let curves: std::collections::HashSet<_> = self
            .scale
            .iter()
            .map(|p| (p.backend.clone(), p.metric.clone()))
            .chain(
                self.scale_limits
                    .iter()
                    .map(|l| (l.backend.clone(), l.metric.clone())),
            )
            .collect();
        let fresh = |b: &str, m: &str| curves.contains(&(b.to_owned(), m.to_owned()));
        let mut scale: Vec<ScalePoint> = old
            .scale
            .into_iter()
            .filter(|p| !fresh(&p.backend, &p.metric))
            .collect();
        scale.extend(self.scale);
        let mut scale_limits: Vec<ScaleLimit> = old
            .scale_limits
            .into_iter()
            .filter(|l| !fresh(&l.backend, &l.metric))
            .collect();
        scale_limits.extend(self.scale_limits);

        let mut problems: Vec<String> = old
            .problems
            .into_iter()
            .filter(|p| !remeasured(p))
            .collect();
        problems.extend(self.problems);

        Results {
            command: format!("{}; then, merged over it: {}", old.command, self.command),
            settings: format!(
                "{} (this run); earlier run: {}",
                self.settings, old.settings
            ),
            machine: self.machine,
            rows,
            scale,
            scale_limits,
            rss: self.rss.or(old.rss),
            problems,
        }
    }
}
