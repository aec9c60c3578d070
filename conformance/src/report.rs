//! The capability / conformance matrix.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use storage_core::Capabilities;

use crate::case::Tier;

/// What happened to one case on one backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", content = "detail", rename_all = "snake_case")]
pub enum Outcome {
    /// It passed.
    Pass,
    /// It failed, with the message.
    Fail(String),
    /// The backend does not declare what it needs, for this reason.
    Unsupported(String),
    /// The case checks the absence of a capability the backend declares.
    NotApplicable(String),
}

impl Outcome {
    fn cell(&self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail(_) => "**FAIL**",
            Outcome::Unsupported(_) => "unsupported",
            Outcome::NotApplicable(_) => "n/a",
        }
    }
}

/// One case's result on one backend.
#[derive(Debug, Clone, Serialize)]
pub struct CaseOutcome {
    /// Tier.
    pub tier: Tier,
    /// Case name.
    pub case: String,
    /// Result.
    pub outcome: Outcome,
}

/// Every case's result on one backend.
#[derive(Debug, Clone, Serialize)]
pub struct BackendReport {
    /// Harness name.
    pub backend: String,
    /// Declared capabilities.
    pub capabilities: Capabilities,
    /// Results in suite order.
    pub cases: Vec<CaseOutcome>,
}

/// The whole matrix.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// One entry per backend, in run order.
    pub backends: Vec<BackendReport>,
}

impl Report {
    /// Number of failed (backend, case) pairs.
    pub fn failures(&self) -> usize {
        self.backends
            .iter()
            .flat_map(|b| &b.cases)
            .filter(|c| matches!(c.outcome, Outcome::Fail(_)))
            .count()
    }

    /// Markdown: a capability table, then a case matrix (one row per case,
    /// one column per backend: `pass`, `**FAIL**`, `unsupported` — the
    /// backend lacks what the case needs — or `n/a` — the case checks the
    /// absence of something the backend has), then the failure messages.
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let names: Vec<&str> = self.backends.iter().map(|b| b.backend.as_str()).collect();
        let header = |out: &mut String, first: &str| {
            let _ = writeln!(out, "| {first} | {} |", names.join(" | "));
            let _ = writeln!(out, "|---|{}", "---|".repeat(names.len()));
        };

        out.push_str("## Declared capabilities\n\n");
        header(&mut out, "capability");
        let caps: Vec<BTreeMap<String, String>> = self
            .backends
            .iter()
            .map(|b| capability_cells(&b.capabilities))
            .collect();
        if let Some(first) = caps.first() {
            for key in first.keys() {
                let row: Vec<&str> = caps.iter().map(|c| c[key].as_str()).collect();
                let _ = writeln!(out, "| {key} | {} |", row.join(" | "));
            }
        }

        out.push_str("\n## Conformance\n\n");
        header(&mut out, "case");
        if let Some(first) = self.backends.first() {
            for (i, c) in first.cases.iter().enumerate() {
                let row: Vec<&str> = self
                    .backends
                    .iter()
                    .map(|b| b.cases.get(i).map_or("-", |c| c.outcome.cell()))
                    .collect();
                let _ = writeln!(
                    out,
                    "| {}::{} | {} |",
                    c.tier.name(),
                    c.case,
                    row.join(" | ")
                );
            }
        }

        let mut totals = String::new();
        for b in &self.backends {
            let count = |f: fn(&Outcome) -> bool| b.cases.iter().filter(|c| f(&c.outcome)).count();
            let _ = writeln!(
                totals,
                "- {}: {} passed, {} failed, {} unsupported, {} not applicable",
                b.backend,
                count(|o| matches!(o, Outcome::Pass)),
                count(|o| matches!(o, Outcome::Fail(_))),
                count(|o| matches!(o, Outcome::Unsupported(_))),
                count(|o| matches!(o, Outcome::NotApplicable(_))),
            );
        }
        out.push_str("\n## Totals\n\n");
        out.push_str(&totals);

        let fails: Vec<String> = self
            .backends
            .iter()
            .flat_map(|b| {
                b.cases.iter().filter_map(move |c| match &c.outcome {
                    Outcome::Fail(m) => Some(format!(
                        "### {} {}::{}\n\n```\n{m}\n```\n",
                        b.backend,
                        c.tier.name(),
                        c.case
                    )),
                    _ => None,
                })
            })
            .collect();
        if !fails.is_empty() {
            out.push_str("\n## Failures\n\n");
            out.push_str(&fails.join("\n"));
        }
        out
    }
}

fn capability_cells(c: &Capabilities) -> BTreeMap<String, String> {
    let yes = |b: bool| if b { "yes" } else { "no" }.to_owned();
    let mut m = BTreeMap::new();
    m.insert("kv".into(), yes(c.kv));
    m.insert("kv_ttl".into(), yes(c.kv_ttl));
    m.insert("atomic".into(), yes(c.atomic));
    m.insert(
        "atomic_content_hash_versions".into(),
        yes(c.atomic_content_hash_versions),
    );
    m.insert(
        "transaction_scope".into(),
        format!("{:?}", c.transaction_scope).to_lowercase(),
    );
    m.insert(
        "max_transaction_ops".into(),
        c.max_transaction_ops.to_string(),
    );
    m.insert("queue".into(), yes(c.queue));
    m.insert("queue_fifo".into(), yes(c.queue_fifo));
    m.insert("queue_dead_letter".into(), yes(c.queue_dead_letter));
    m.insert(
        "queue_long_poll_notify".into(),
        yes(c.queue_long_poll_notify),
    );
    m.insert(
        "sql".into(),
        c.sql
            .map_or("no".into(), |d| format!("{d:?}").to_lowercase()),
    );
    m.insert("max_key_size".into(), c.max_key_size.to_string());
    m.insert("max_value_size".into(), c.max_value_size.to_string());
    m.insert(
        "max_namespace_size".into(),
        c.max_namespace_size.to_string(),
    );
    m.insert("max_scan_limit".into(), c.max_scan_limit.to_string());
    m
}
