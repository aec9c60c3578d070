//! One command for every benchmark of the storage crate family: each
//! adapter beside its raw driver and its peer libraries, in one run,
//! written as BENCHMARKS.md (tables), bench/results.json and
//! bench/scale.svg. See `bash bench/run.sh --help`.

mod backends;
mod config;
mod kv;
mod machine;
mod measure;
mod peer_sqlite;
mod peers;
mod plot;
mod queue;
mod raw;
mod report;
mod results;
mod rss;
mod scale;
mod sql;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use crate::backends::Services;
use crate::config::{Config, BACKENDS};
use crate::measure::{Plan, Side, Work};
use crate::results::{Results, Row};

fn main() -> Result<()> {
    let cfg = Config::from_args()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("tokio runtime")?;
    if let Some((mode, n)) = &cfg.child {
        return rt.block_on(async {
            match mode.as_str() {
                "rss-entries" => rss::child_entries(*n).await,
                "rss-basic" => rss::child_basic().await,
                other => anyhow::bail!("unknown child mode {other}"),
            }
        });
    }
    if let Some(path) = &cfg.from_json {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let res: Results = serde_json::from_str(&text).context("parsing the results")?;
        return write(&cfg, &res);
    }
    let mut res = rt.block_on(run(&cfg))?;
    // Servers and pools die with the runtime; don't wait for stragglers.
    rt.shutdown_timeout(Duration::from_secs(2));
    if cfg.merge {
        let text = std::fs::read_to_string(&cfg.json)
            .with_context(|| format!("--merge: reading {}", cfg.json.display()))?;
        let old: Results = serde_json::from_str(&text).context("--merge: parsing the results")?;
        res = res.merged_over(old, &|p| problem_remeasured(&cfg, p));
    }
    write(&cfg, &res)
}

async fn run(cfg: &Config) -> Result<Results> {
    let started = Instant::now();
    let mut res = Results {
        machine: machine::describe(),
        command: cfg.command.clone(),
        settings: format!(
            "{} s per side per row over {} rounds; max scale {}; fill budget {} s per step{}",
            cfg.seconds,
            cfg.rounds,
            report::count(cfg.max_scale),
            cfg.fill_budget,
            if cfg.quick { " (quick mode)" } else { "" }
        ),
        ..Results::default()
    };
    let mut svc = Services::new()?;
    let plan = Plan {
        rounds: cfg.rounds,
        slice: cfg.slice(),
        concurrency: 1,
    };

    for name in BACKENDS.iter().filter(|b| cfg.backend(b)) {
        if !(cfg.group("kv") || cfg.group("queue")) {
            break;
        }
        let b = match svc.backend(name).await {
            Ok(b) => b,
            Err(e) => {
                res.problems.push(format!("{name}: not available: {e:#}"));
                continue;
            }
        };
        if cfg.group("kv") {
            let shape = kv_shape(name, cfg, plan);
            let mut cmp = b.kv_cmp.clone();
            if *name == "sqlite" {
                if let Some(peer) = &cfg.peer_sqlite {
                    cmp.push(Arc::new(peer_sqlite::PeerSqlite::new(
                        peer,
                        svc_dir(&mut svc)?,
                    )));
                }
            }
            if let Err(e) = kv::run_backend(name, b.kv.clone(), cmp, &shape, &mut res).await {
                res.problems.push(format!("{name} KV: {e:#}"));
            }
        }
        if cfg.group("queue") {
            if let Some(q) = b.queue.clone() {
                let run = queue::run_backend(name, q, b.q_cmp.clone(), plan, &[1, 16], &mut res);
                if let Err(e) = run.await {
                    res.problems.push(format!("{name} queue: {e:#}"));
                }
            }
        }
    }

    if cfg.group("sql") {
        let n = if cfg.quick { 100_000 } else { 1_000_000 };
        for name in ["sqlite", "duckdb"].into_iter().filter(|b| cfg.backend(b)) {
            let run = async {
                let (a, r) = svc.sql(name).await?;
                sql::run_engine(name, a, r, n, plan, &mut res).await
            };
            if let Err(e) = run.await {
                res.problems.push(format!("{name} SQL: {e:#}"));
            }
        }
    }

    if cfg.group("redis-benchmark") && cfg.backend("redis") {
        if let Err(e) = redis_benchmark(&mut svc, plan, &mut res.rows).await {
            res.problems.push(format!("redis-benchmark: {e:#}"));
        }
    }

    if cfg.group("scale") {
        let budget = Duration::from_secs_f64(cfg.fill_budget);
        for name in BACKENDS.iter().filter(|b| cfg.backend(b)) {
            let (max, why) = match *name {
                "s3" => (
                    1_000,
                    "moto answers ~500 requests/s: 1k is the largest step measured",
                ),
                "remote-local" => (
                    100_000,
                    "one file per key; 1M files in one directory is not measured here",
                ),
                _ => (u64::MAX, ""),
            };
            let max = cfg.max_scale.min(max);
            if max < cfg.max_scale {
                res.scale_limits.push(results::ScaleLimit {
                    backend: (*name).into(),
                    metric: scale::SCAN.into(),
                    reached: max,
                    reason: why.into(),
                });
            }
            let run = async {
                let mut out = scale::Curves {
                    points: &mut res.scale,
                    limits: &mut res.scale_limits,
                };
                let (kv, q, _keep) = svc.scale_store(name).await?;
                scale::scan_curve(name, kv, max, budget, &mut out).await?;
                if let Some(q) = q {
                    scale::receive_curve(name, q, max, budget, &mut out).await?;
                }
                scale::raw_curves(name, max, budget, &mut out).await?;
                anyhow::Ok(())
            };
            if let Err(e) = run.await {
                res.problems.push(format!("{name} scale: {e:#}"));
            }
        }
    }

    if cfg.group("rss") {
        let n = cfg.max_scale.min(1_000_000);
        match tokio::task::spawn_blocking(move || rss::measure(n)).await? {
            Ok(r) => res.rss = Some(r),
            Err(e) => res.problems.push(format!("RSS: {e:#}")),
        }
    }

    res.machine.load_end = machine::load();
    res.machine.duration_s = started.elapsed().as_secs_f64();
    Ok(res)
}

/// Whether this run redid what a problem of an earlier run was about.
/// Problems name their subject first: "sqlite KV: …", "s3: not
/// available: …", "redis-benchmark: …", "RSS: …".
fn problem_remeasured(cfg: &Config, problem: &str) -> bool {
    let mut words = problem
        .split([' ', ':'])
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase);
    let subject = words.next().unwrap_or_default();
    match subject.as_str() {
        "rss" | "redis-benchmark" => cfg.group(&subject),
        backend if cfg.backend(backend) => match words.next().as_deref() {
            Some(group @ ("kv" | "queue" | "sql" | "scale")) => cfg.group(group),
            // "not available": found while opening it for KV or queues.
            _ => cfg.group("kv") || cfg.group("queue"),
        },
        _ => false,
    }
}

fn svc_dir(svc: &mut Services) -> Result<std::path::PathBuf> {
    svc.scratch("peer-sqlite")
}

/// Value sizes (with key counts), concurrencies and timing per backend.
fn kv_shape(name: &str, cfg: &Config, plan: Plan) -> kv::Shape {
    if name == "s3" {
        // moto is slow: a short look, 100 B, one client.
        return kv::Shape {
            sizes: vec![(100, 200)],
            concurrencies: vec![1],
            plan: Plan {
                rounds: 2,
                slice: Duration::from_secs_f64((cfg.seconds / 2.0).min(1.0)),
                ..plan
            },
        };
    }
    let keys = if cfg.quick { 2_000 } else { 10_000 };
    kv::Shape {
        sizes: vec![(100, keys), (10_000, 2_000)],
        concurrencies: vec![1, 64],
        plan,
    }
}

/// `redis-benchmark` beside the adapter's plain get / put, same server.
async fn redis_benchmark(svc: &mut Services, plan: Plan, rows: &mut Vec<Row>) -> Result<()> {
    let url = svc.redis()?.url().to_owned();
    let port = svc.redis_port()?;
    let store =
        storage_redis::RedisStore::connect(storage_redis::RedisConfig::standalone(url, "rb"))
            .await?;
    let adapter: Arc<dyn storage_core::AtomicKv> = Arc::new(store);
    let fx = Arc::new(kv::Fixture::new(10_000, 100));
    kv::preload_adapter(&adapter, &fx).await?;
    for conc in [1, 64] {
        for (work, test, label) in [
            (kv::Work::Get, "get", "get 100 B"),
            (kv::Work::Put, "set", "put / SET 100 B"),
        ] {
            eprintln!("redis-benchmark {test} c={conc}");
            let a = kv::adapter_op(&adapter, work, &fx, conc).context("adapter op")?;
            let sides = [
                Side::op("adapter", a),
                Side {
                    name: "redis-benchmark".into(),
                    work: Work::External(peers::redis_benchmark::side(port, test, 10_000)),
                },
            ];
            let rates = measure::compare(
                &sides,
                Plan {
                    concurrency: conc,
                    ..plan
                },
            )
            .await?;
            rows.push(Row {
                group: "redis-benchmark".into(),
                workload: label.into(),
                backend: "redis".into(),
                concurrency: conc,
                adapter: rates[0],
                comparator: format!("redis-benchmark -c {conc}"),
                comparator_ops: rates[1],
                target: (conc == 64).then_some(1.0),
            });
        }
    }
    Ok(())
}

fn write(cfg: &Config, res: &Results) -> Result<()> {
    let svg = cfg.svg.to_string_lossy().into_owned();
    if !res.scale.is_empty() {
        if let Err(e) = plot::draw(&cfg.svg, &res.scale) {
            eprintln!("warning: plot not drawn: {e:#}");
        }
    }
    let mut md = report::render(res, &svg);
    match std::fs::read_to_string(&cfg.notes) {
        Ok(notes) => {
            md.push_str(&notes);
            if !md.ends_with('\n') {
                md.push('\n');
            }
        }
        Err(e) => eprintln!("warning: no notes appended ({}: {e})", cfg.notes.display()),
    }
    std::fs::write(&cfg.out, md).with_context(|| format!("writing {}", cfg.out.display()))?;
    let json = serde_json::to_string_pretty(res)?;
    std::fs::write(&cfg.json, json).with_context(|| format!("writing {}", cfg.json.display()))?;
    eprintln!(
        "wrote {}, {}, {} in {:.0} s",
        cfg.out.display(),
        cfg.json.display(),
        svg,
        res.machine.duration_s
    );
    Ok(())
}
