//! Running cases: as libtest-mimic trials (for `cargo test`) or straight
//! into a [`Report`] (for the report binary and third-party tools).

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use libtest_mimic::{Completion, Failed, Trial};

use crate::case::{Case, Requirement};
use crate::harness::Harness;
use crate::report::{BackendReport, CaseOutcome, Outcome, Report};

/// Longest a single case may run before it is failed as hung.
pub const CASE_TIMEOUT: Duration = Duration::from_secs(600);

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a tokio runtime: {e}"))
}

/// Runs one case on one backend, on a runtime of its own. Panics and hangs
/// become failures.
pub fn run_case(case: &Case, harness: Arc<dyn Harness>) -> Outcome {
    match (case.requires)(&harness.capabilities()) {
        Requirement::Run => {}
        Requirement::Unsupported(reason) => return Outcome::Unsupported(reason),
        Requirement::NotApplicable(reason) => return Outcome::NotApplicable(reason),
    }
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => return Outcome::Fail(e),
    };
    let fut = AssertUnwindSafe((case.run)(harness)).catch_unwind();
    let result = rt.block_on(async { tokio::time::timeout(CASE_TIMEOUT, fut).await });
    // Do not wait for tasks a failed case may have left behind.
    rt.shutdown_background();
    match result {
        Err(_) => Outcome::Fail(format!("case did not finish within {CASE_TIMEOUT:?}")),
        Ok(Err(panic)) => Outcome::Fail(format!("case panicked: {}", panic_message(&panic))),
        Ok(Ok(Err(f))) => Outcome::Fail(f.0),
        Ok(Ok(Ok(()))) => Outcome::Pass,
    }
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

/// One libtest-mimic trial per (backend, case), named
/// `<backend>::<tier>::<case>`. Unsupported cases are reported as ignored
/// with their reason.
pub fn trials(harnesses: &[Arc<dyn Harness>], cases: &[Case]) -> Vec<Trial> {
    let mut out = Vec::new();
    for h in harnesses {
        for case in cases {
            let name = format!("{}::{}::{}", h.name(), case.tier.name(), case.name);
            let (h, case) = (h.clone(), case.clone());
            out.push(Trial::ignorable_test(name, move || {
                match run_case(&case, h) {
                    Outcome::Pass => Ok(Completion::Completed),
                    Outcome::Unsupported(reason) => {
                        Ok(Completion::ignored_with(format!("unsupported: {reason}")))
                    }
                    Outcome::NotApplicable(reason) => Ok(Completion::ignored_with(format!(
                        "not applicable: {reason}"
                    ))),
                    Outcome::Fail(msg) => Err(Failed::from(msg)),
                }
            }));
        }
    }
    out
}

/// Runs every case on every backend, one backend after another, and
/// collects the matrix. `progress` is called after each case.
pub fn run_report(
    harnesses: &[Arc<dyn Harness>],
    cases: &[Case],
    mut progress: impl FnMut(&str, &Case, &Outcome),
) -> Report {
    let mut report = Report::default();
    for h in harnesses {
        let mut b = BackendReport {
            backend: h.name(),
            capabilities: h.capabilities(),
            cases: Vec::new(),
        };
        for case in cases {
            let outcome = run_case(case, h.clone());
            progress(&b.backend, case, &outcome);
            b.cases.push(CaseOutcome {
                tier: case.tier,
                case: case.name.to_owned(),
                outcome,
            });
        }
        report.backends.push(b);
    }
    report
}

/// Opens a fixture from `harness`, runs `body` on it, and always closes it.
pub async fn with_fixture<F, Fut>(harness: &Arc<dyn Harness>, body: F) -> crate::CaseResult
where
    F: FnOnce(crate::Fixture) -> Fut,
    Fut: std::future::Future<Output = crate::CaseResult>,
{
    let fixture = harness
        .open()
        .await
        .map_err(|e| crate::Failure(format!("backend {} unavailable: {e}", harness.name())))?;
    let result = AssertUnwindSafe(body(fixture.clone())).catch_unwind().await;
    harness.close(fixture).await;
    match result {
        Ok(r) => r,
        Err(p) => Err(crate::Failure(format!(
            "case panicked: {}",
            panic_message(&p)
        ))),
    }
}
