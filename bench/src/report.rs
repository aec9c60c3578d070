//! Writes BENCHMARKS.md from the results, then appends the hand-written
//! notes file, so regeneration never loses the analysis.

use std::fmt::Write as _;

use crate::results::{Results, Row, ScalePoint};
use crate::scale::RAW_MARK;

/// 1234567.8 → "1,234,568".
pub fn int(x: f64) -> String {
    if !x.is_finite() {
        return "–".into();
    }
    let s = format!("{:.0}", x.abs());
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if x < 0.0 {
        format!("-{out}")
    } else {
        out
    }
}

/// 1000 → "1k", 1000000 → "1M".
pub fn count(n: u64) -> String {
    if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
        format!("{}M", n / 1_000_000)
    } else if n >= 1000 && n.is_multiple_of(1000) {
        format!("{}k", n / 1000)
    } else {
        int(n as f64)
    }
}

/// Verdict of a value against a maximum.
pub fn verdict_max(value: f64, max: f64) -> String {
    if !value.is_finite() {
        "no figure".into()
    } else if value <= max {
        "met".into()
    } else if value > 2.0 * max {
        format!("missed by {:.1}×", value / max)
    } else {
        format!("missed by {:.0}%", (value / max - 1.0) * 100.0)
    }
}

fn gib(b: u64) -> String {
    format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64)
}

fn rows_table(out: &mut String, rows: &[&Row]) {
    out.push_str(
        "| workload | backend | c | adapter ops/s | comparator | comparator ops/s | ratio | target | verdict |\n\
         |---|---|---:|---:|---|---:|---:|---|---|\n",
    );
    for r in rows {
        let target = r.target.map_or("–".into(), |t| format!("≥ {t}×"));
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {:.2} | {} | {} |",
            r.workload,
            r.backend,
            r.concurrency,
            int(r.adapter),
            r.comparator,
            int(r.comparator_ops),
            r.ratio(),
            target,
            r.verdict()
        );
    }
}

fn summary(out: &mut String, res: &Results) {
    out.push_str("| group | rows with a target | met | missed |\n|---|---:|---:|---:|\n");
    for g in ["KV", "Queue", "SQL", "redis-benchmark"] {
        let with: Vec<&Row> = res
            .rows
            .iter()
            .filter(|r| r.group == g && r.target.is_some())
            .collect();
        let met = with.iter().filter(|r| r.verdict() == "met").count();
        let _ = writeln!(
            out,
            "| {g} | {} | {met} | {} |",
            with.len(),
            with.len() - met
        );
    }
    out.push('\n');
}

fn scale_section(out: &mut String, res: &Results, svg: &str) {
    let _ = writeln!(
        out,
        "![scale curves: median latency against stored size]({svg})\n"
    );
    out.push_str(
        "| backend | operation | size | samples | p50 µs | mean µs | p99 µs |\n\
         |---|---|---:|---:|---:|---:|---:|\n",
    );
    for p in &res.scale {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:.1} | {:.1} | {:.1} |",
            p.backend,
            p.metric,
            count(p.size),
            p.samples,
            p.p50_us,
            p.mean_us,
            p.p99_us
        );
    }
    out.push_str(
        "\nRatio of the largest size measured to 1k (medians; target ≤ 1.5 at 1M). \
         Where the raw driver has a curve of its own (measured the same way, \
         same run), its ratio stands beside the adapter's: growth the raw \
         structure shows too is the structure's and the machine's caches', \
         not the adapter's.\n\n\
         | backend | operation | largest size | p50 largest ÷ p50 1k | raw driver, same curve | target ≤ 1.5 |\n\
         |---|---|---:|---:|---|---|\n",
    );
    let mut seen: Vec<(&str, &str)> = Vec::new();
    for p in &res.scale {
        let key = (p.backend.as_str(), p.metric.as_str());
        if seen.contains(&key) || p.backend.contains(RAW_MARK) {
            continue;
        }
        seen.push(key);
        let Some((ratio, largest)) = growth(res, &p.backend, &p.metric) else {
            continue;
        };
        let mut verdict = verdict_max(ratio, 1.5);
        if largest < 1_000_000 {
            verdict.push_str(&format!(" (at {}, not 1M)", count(largest)));
        }
        let prefix = format!("{}{RAW_MARK}", p.backend);
        let mut raws: Vec<String> = Vec::new();
        for q in res
            .scale
            .iter()
            .filter(|q| q.metric == p.metric && q.backend.starts_with(&prefix))
        {
            let driver = &q.backend[prefix.len()..];
            if raws.iter().any(|r| r.starts_with(driver)) {
                continue;
            }
            if let Some((r, at)) = growth(res, &q.backend, &q.metric) {
                raws.push(format!("{driver}: {r:.2} (at {})", count(at)));
            }
        }
        let raw = if raws.is_empty() {
            "–".to_owned()
        } else {
            raws.join("; ")
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.2} | {} | {} |",
            p.backend,
            p.metric,
            count(largest),
            ratio,
            raw,
            verdict
        );
    }
    if !res.scale_limits.is_empty() {
        out.push_str("\nCurves that stop before 1M:\n\n");
        for l in &res.scale_limits {
            let _ = writeln!(
                out,
                "- {} {}: measured up to {} — {}",
                l.backend,
                l.metric,
                count(l.reached),
                l.reason
            );
        }
    }
    out.push('\n');
}

/// A curve's growth: the median at its largest size ÷ the median at its
/// first, and that largest size (`None` for a curve of one point).
fn growth(res: &Results, backend: &str, metric: &str) -> Option<(f64, u64)> {
    let curve: Vec<&ScalePoint> = res
        .scale
        .iter()
        .filter(|q| q.backend == backend && q.metric == metric)
        .collect();
    match (curve.first(), curve.last()) {
        (Some(first), Some(last)) if curve.len() >= 2 => {
            Some((last.p50_us / first.p50_us, last.size))
        }
        _ => None,
    }
}

/// The whole report, without the notes.
pub fn render(res: &Results, svg: &str) -> String {
    let m = &res.machine;
    let mut out = String::new();
    let _ = write!(
        out,
        "# Benchmarks\n\n\
         <!-- Generated by bench/ (bash bench/run.sh). Do not edit by hand: put analysis \
         in bench/NOTES.md, which is appended below on every run. -->\n\n\
         Regenerate everything below (from the repository root; builds the separate `bench/` \
         Cargo project in release mode, starts its own throwaway redis-server and moto server, \
         and writes this file, `bench/results.json` and `bench/scale.svg`):\n\n\
         ```sh\n\
         bash bench/run.sh            # the full run\n\
         bash bench/run.sh --quick    # smoke run: short slices, scale up to 10k\n\
         bash bench/run.sh --help     # groups, backends, seconds, rounds, max scale\n\
         ```\n\n\
         This run: `{}`\n\n",
        res.command
    );
    let _ = write!(
        out,
        "## Machine\n\n\
         | | |\n|---|---|\n\
         | CPU | {} |\n| cores | {} |\n| RAM | {} |\n| kernel | {} |\n| rustc | {} |\n\
         | redis | {} |\n| started | {} |\n| duration | {:.0} s |\n\
         | load average (1/5/15 min) at start | {} |\n| load average at end | {} |\n\
         | settings | {} |\n\n",
        m.cpu,
        m.cores,
        gib(m.ram),
        m.kernel,
        m.rustc,
        m.redis,
        m.started,
        m.duration_s,
        m.load_start,
        m.load_end,
        res.settings
    );
    out.push_str(
        "## How to read the tables\n\n\
         Every row is one workload on one backend at one concurrency `c` (tasks sharing one \
         store), the adapter beside one comparator **in the same run**: the sides take turns \
         in slices, the order rotating every round, and each figure is the side's median over \
         the rounds, so load drift hits both alike. Keys and values are precomputed; every \
         written key belongs to one task (no CAS conflicts). ratio = adapter ÷ comparator. \
         Targets: raw driver ≥ 0.9× (memory ≥ 0.5×), peer libraries ≥ 1.2×, redis-benchmark \
         ≥ 1× at c = 64 (c = 1 reported only). A target of – means the row is context, not a \
         goal. Verdicts: `met`, or by how much the ratio falls short (`missed by 12%`, or \
         `missed by 3.4×` when below half the target).\n\n",
    );
    out.push_str("## Summary\n\n");
    summary(&mut out, res);
    for (group, title) in [
        ("KV", "KV"),
        ("Queue", "Queue"),
        ("SQL", "SQL"),
        (
            "redis-benchmark",
            "redis-benchmark (plain get / set, same server)",
        ),
    ] {
        let rows: Vec<&Row> = res.rows.iter().filter(|r| r.group == group).collect();
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(out, "## {title}\n");
        rows_table(&mut out, &rows);
        out.push('\n');
    }
    if !res.scale.is_empty() {
        out.push_str("## Scale\n\n");
        scale_section(&mut out, res, svg);
    }
    if let Some(r) = &res.rss {
        let ratio = r.resident_per_entry / r.payload_per_entry;
        let peak_mb = r.basic_workload_peak as f64 / 1e6;
        let _ = write!(
            out,
            "## Memory backend resident set\n\n\
             Each figure from a child process of its own (`/proc/self/statm` before and \
             after inserting, `VmHWM` for the peak).\n\n\
             | measurement | figure | target | verdict |\n|---|---:|---|---|\n\
             | resident bytes per entry, {} entries of {:.0} B payload (key + value) | {:.0} B = {:.2}× payload | ≤ 2× payload | {} |\n\
             | peak RSS of a basic workload ({}) | {:.1} MB | < 50 MB | {} |\n\n",
            count(r.entries),
            r.payload_per_entry,
            r.resident_per_entry,
            ratio,
            verdict_max(ratio, 2.0),
            r.basic_workload,
            peak_mb,
            verdict_max(peak_mb, 50.0),
        );
    }
    if !res.problems.is_empty() {
        out.push_str("## What did not run\n\n");
        for p in &res.problems {
            let _ = writeln!(out, "- {p}");
        }
        out.push('\n');
    }
    out
}
