//! What a conformance case is, and how it fails.

use std::fmt;
use std::sync::Arc;

use futures::future::BoxFuture;
use storage_core::Capabilities;

use crate::harness::Harness;

/// The tier or feature a case exercises; the report's column groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum Tier {
    /// Ordered namespaced key-value.
    Kv,
    /// Expiry by the store clock.
    Ttl,
    /// Compare-and-swap.
    Atomic,
    /// Conditional multi-key transactions.
    Transactions,
    /// Standard queues.
    Queue,
    /// FIFO queues.
    Fifo,
    /// Dead-letter redrive.
    DeadLetter,
    /// SQL.
    Sql,
}

impl Tier {
    /// Lower-case name used in test names.
    pub fn name(self) -> &'static str {
        match self {
            Tier::Kv => "kv",
            Tier::Ttl => "ttl",
            Tier::Atomic => "atomic",
            Tier::Transactions => "transactions",
            Tier::Queue => "queue",
            Tier::Fifo => "fifo",
            Tier::DeadLetter => "dead_letter",
            Tier::Sql => "sql",
        }
    }
}

/// Whether a case applies to a backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// Run it.
    Run,
    /// Do not run it; the backend lacks what it needs, for this reason.
    Unsupported(String),
    /// Do not run it; it checks the absence of something the backend has
    /// (e.g. "undeclared TTL returns Unsupported" on a backend with TTL),
    /// which other cases exercise instead.
    NotApplicable(String),
}

/// A case's verdict: `Ok(())` or a failure message.
pub type CaseResult = Result<(), Failure>;

/// Why a case failed.
#[derive(Clone, PartialEq, Eq)]
pub struct Failure(pub String);

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<storage_core::Error> for Failure {
    fn from(e: storage_core::Error) -> Self {
        Failure(format!("unexpected error: {e}"))
    }
}

impl From<String> for Failure {
    fn from(s: String) -> Self {
        Failure(s)
    }
}

/// Future a case returns.
pub type CaseFuture = BoxFuture<'static, CaseResult>;

/// One conformance case.
#[derive(Clone)]
pub struct Case {
    /// A sentence in snake case: `stale_receipt_is_rejected_after_redelivery`.
    pub name: &'static str,
    /// Tier it belongs to.
    pub tier: Tier,
    /// Whether the backend's capabilities let it run.
    pub requires: fn(&Capabilities) -> Requirement,
    /// The case itself. It opens its own fixture(s) from the harness.
    pub run: fn(Arc<dyn Harness>) -> CaseFuture,
}

impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Case({}::{})", self.tier.name(), self.name)
    }
}

/// Fails the case with a formatted message unless `cond` holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err($crate::Failure(format!($($fmt)+)));
        }
    };
}

/// Fails the case unless both sides are equal, showing both.
#[macro_export]
macro_rules! ensure_eq {
    ($left:expr, $right:expr $(,)?) => {
        $crate::ensure_eq!($left, $right, "values differ")
    };
    ($left:expr, $right:expr, $($fmt:tt)+) => {{
        let (l, r) = (&$left, &$right);
        if l != r {
            return Err($crate::Failure(format!(
                "{}\n  left: {:?}\n right: {:?}\n  ({} vs {} at {}:{})",
                format!($($fmt)+), l, r, stringify!($left), stringify!($right), file!(), line!()
            )));
        }
    }};
}

/// Requirement helpers for [`Case::requires`].
pub mod req {
    use super::Requirement;
    use storage_core::{Capabilities, TransactionScope};

    fn need(ok: bool, reason: &str) -> Requirement {
        if ok {
            Requirement::Run
        } else {
            Requirement::Unsupported(reason.to_owned())
        }
    }

    /// KV declared.
    pub fn kv(c: &Capabilities) -> Requirement {
        need(c.kv, "backend declares no KV tier")
    }
    /// KV TTL declared.
    pub fn ttl(c: &Capabilities) -> Requirement {
        need(c.kv && c.kv_ttl, "backend declares no KV TTL")
    }
    /// CAS declared.
    pub fn atomic(c: &Capabilities) -> Requirement {
        need(c.atomic, "backend declares no CAS tier")
    }
    /// Transactions over any keys, or at least within a namespace.
    pub fn tx(c: &Capabilities) -> Requirement {
        need(
            c.atomic && c.transaction_scope != TransactionScope::None,
            "backend declares no multi-key transactions",
        )
    }
    /// Transactions across namespaces.
    pub fn tx_any(c: &Capabilities) -> Requirement {
        need(
            c.atomic && c.transaction_scope == TransactionScope::Any,
            "backend's transactions do not span namespaces",
        )
    }
    /// Queue declared.
    pub fn queue(c: &Capabilities) -> Requirement {
        need(c.queue, "backend declares no queue tier")
    }
    /// FIFO queues declared.
    pub fn fifo(c: &Capabilities) -> Requirement {
        need(c.queue && c.queue_fifo, "backend declares no FIFO queues")
    }
    /// Dead-letter redrive declared.
    pub fn dlq(c: &Capabilities) -> Requirement {
        need(
            c.queue && c.queue_dead_letter,
            "backend declares no dead-letter redrive",
        )
    }
    /// SQL declared.
    pub fn sql(c: &Capabilities) -> Requirement {
        need(c.sql.is_some(), "backend declares no SQL dialect")
    }
    /// Runs only where a capability is *not* declared (the suite then
    /// checks the backend answers `Unsupported`); `parent` must hold for
    /// the case to make sense (e.g. TTL needs the KV tier).
    fn lacks(parent: Option<(bool, &str)>, declared: bool, what: &str) -> Requirement {
        if let Some((false, tier)) = parent {
            return Requirement::Unsupported(format!("backend declares no {tier}"));
        }
        if declared {
            Requirement::NotApplicable(format!(
                "backend declares {what}, so it is exercised instead"
            ))
        } else {
            Requirement::Run
        }
    }
    /// KV not declared.
    pub fn lacks_kv(c: &Capabilities) -> Requirement {
        lacks(None, c.kv, "the KV tier")
    }
    /// KV declared, TTL not.
    pub fn lacks_ttl(c: &Capabilities) -> Requirement {
        lacks(Some((c.kv, "KV tier")), c.kv_ttl, "KV TTL")
    }
    /// CAS not declared.
    pub fn lacks_atomic(c: &Capabilities) -> Requirement {
        lacks(None, c.atomic, "the CAS tier")
    }
    /// CAS declared, transactions not.
    pub fn lacks_tx(c: &Capabilities) -> Requirement {
        lacks(
            Some((c.atomic, "CAS tier")),
            c.transaction_scope != TransactionScope::None,
            "transactions",
        )
    }
    /// Queue not declared.
    pub fn lacks_queue(c: &Capabilities) -> Requirement {
        lacks(None, c.queue, "the queue tier")
    }
    /// Queue declared, FIFO not.
    pub fn lacks_fifo(c: &Capabilities) -> Requirement {
        lacks(Some((c.queue, "queue tier")), c.queue_fifo, "FIFO queues")
    }
    /// Queue declared, redrive not.
    pub fn lacks_dlq(c: &Capabilities) -> Requirement {
        lacks(
            Some((c.queue, "queue tier")),
            c.queue_dead_letter,
            "dead-letter redrive",
        )
    }
    /// SQL not declared.
    pub fn lacks_sql(c: &Capabilities) -> Requirement {
        lacks(None, c.sql.is_some(), "a SQL dialect")
    }
    /// Always runs.
    pub fn always(_: &Capabilities) -> Requirement {
        Requirement::Run
    }
}
