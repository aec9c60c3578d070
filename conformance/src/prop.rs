//! Running proptest properties inside async conformance cases.
//!
//! [`check`] runs a [`TestRunner`] on a blocking thread (proptest is
//! synchronous) and drives each generated input with
//! [`Handle::block_on`](tokio::runtime::Handle::block_on) on the case's
//! runtime, opening a fresh fixture per input (and closing it, pass or
//! fail). On failure the case's message holds the *shrunk* minimal input
//! in `Debug` form followed by the test's own message for that input, so
//! it is a reproduction.
//!
//! # Knobs
//!
//! - `PROPTEST_CASES`: inputs per property (default [`DEFAULT_CASES`]).
//! - `CONFORMANCE_MAX_OPS`: longest generated operation sequence
//!   (default [`DEFAULT_MAX_OPS`]); read by the suites through [`max_ops`].
//! - `PROPTEST_MAX_SHRINK_ITERS`: shrink steps after a failure (default
//!   [`DEFAULT_MAX_SHRINK_ITERS`], so shrinking stays bounded on slow
//!   network backends).
//! - `PROPTEST_RNG_SEED`: a fixed seed, to replay a run.
//!
//! Failure persistence (`proptest-regressions/` files) is always off: the
//! suite runs against third-party backends from other crates' `tests/`.

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};

use crate::case::{CaseResult, Failure};
use crate::harness::{Fixture, Harness};
use crate::runner::with_fixture;

/// Inputs per property when `PROPTEST_CASES` is unset.
pub const DEFAULT_CASES: u32 = 32;
/// Longest operation sequence when `CONFORMANCE_MAX_OPS` is unset.
pub const DEFAULT_MAX_OPS: usize = 40;
/// Shrink steps when `PROPTEST_MAX_SHRINK_ITERS` is unset.
pub const DEFAULT_MAX_SHRINK_ITERS: u32 = 1024;

fn env<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok()?.trim().parse().ok()
}

/// Inputs per property: `PROPTEST_CASES`, default [`DEFAULT_CASES`].
pub fn cases() -> u32 {
    env("PROPTEST_CASES").unwrap_or(DEFAULT_CASES)
}

/// Longest generated operation sequence: `CONFORMANCE_MAX_OPS`, default
/// [`DEFAULT_MAX_OPS`] (at least 1).
pub fn max_ops() -> usize {
    env("CONFORMANCE_MAX_OPS").unwrap_or(DEFAULT_MAX_OPS).max(1)
}

/// The proptest configuration of every property of the suite.
pub fn config() -> Config {
    Config {
        cases: cases(),
        failure_persistence: None,
        fork: false,
        max_shrink_iters: env("PROPTEST_MAX_SHRINK_ITERS").unwrap_or(DEFAULT_MAX_SHRINK_ITERS),
        // Config::default() reads the remaining PROPTEST_* variables
        // (PROPTEST_RNG_SEED, PROPTEST_VERBOSE, ...).
        ..Config::default()
    }
}

/// Runs a property: for every input `make_strategy()` generates, opens a
/// fresh fixture from `harness`, runs `test` on it and closes it.
///
/// The strategy is built on the blocking thread, so it need not be `Send`.
/// Must be called from within a multi-threaded tokio runtime (the
/// runner's).
pub async fn check<M, S, T, Fut>(
    harness: &Arc<dyn Harness>,
    make_strategy: M,
    test: T,
) -> CaseResult
where
    M: FnOnce() -> S + Send + 'static,
    S: Strategy,
    S::Value: Debug,
    T: Fn(Fixture, S::Value) -> Fut + Send + 'static,
    Fut: Future<Output = CaseResult>,
{
    let handle = tokio::runtime::Handle::current();
    let harness = harness.clone();
    let joined = tokio::task::spawn_blocking(move || {
        let strategy = make_strategy();
        let mut runner = TestRunner::new(config());
        let test = &test;
        let result = runner.run(&strategy, |input| {
            handle
                .block_on(with_fixture(&harness, move |f| test(f, input)))
                .map_err(|Failure(msg)| TestCaseError::fail(msg))
        });
        match result {
            Ok(()) => Ok(()),
            Err(TestError::Fail(reason, minimal)) => Err(Failure(format!(
                "property failed; minimal failing input (after shrinking):\n{minimal:?}\n\n\
                 what went wrong on that input:\n{reason}"
            ))),
            Err(TestError::Abort(reason)) => Err(Failure(format!("property aborted: {reason}"))),
        }
    })
    .await;
    joined.map_err(|e| Failure(format!("the property's thread failed: {e}")))?
}
