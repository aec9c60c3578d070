//! The suite has teeth: each deliberately broken backend
//! ([`conformance::broken`]) must fail the cases that guard the contract it
//! breaks. A flaw that passes its cases means the suite lost coverage.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::sync::Arc;

use conformance::broken::{BrokenHarness, Flaw};
use conformance::{run_case, Harness, Outcome};

/// Runs the cases named `tier::case` on the broken backend and returns the
/// names of those that did not fail (which should be none).
fn passing(flaw: Flaw, must_fail: &[&str]) -> Vec<String> {
    let harness: Arc<dyn Harness> = Arc::new(BrokenHarness(flaw));
    let cases = conformance::suites::all();
    let mut passed = Vec::new();
    for name in must_fail {
        let matching: Vec<_> = cases
            .iter()
            .filter(|c| format!("{}::{}", c.tier.name(), c.name) == *name)
            .collect();
        assert!(
            !matching.is_empty(),
            "no case named {name}: the suite was renamed, update this test"
        );
        for case in matching {
            match run_case(case, harness.clone()) {
                Outcome::Fail(msg) => {
                    eprintln!("{flaw:?} caught by {name}:\n{msg}\n");
                }
                other => passed.push(format!("{name} ({other:?})")),
            }
        }
    }
    passed
}

fn assert_caught(flaw: Flaw, must_fail: &[&str]) {
    let passed = passing(flaw, must_fail);
    assert!(
        passed.is_empty(),
        "the suite did not catch {flaw:?}; these cases passed on the broken backend: {passed:#?}"
    );
}

#[test]
fn conditional_writes_that_ignore_the_version_are_caught() {
    assert_caught(
        Flaw::IgnoreVersions,
        &[
            "atomic::random_conditional_operation_sequences_match_the_reference_model",
            "atomic::concurrent_conditional_increments_end_at_exactly_the_number_of_successes",
            "atomic::failed_conditions_report_the_current_version_and_change_nothing",
        ],
    );
}

#[test]
fn transactions_that_are_not_all_or_nothing_are_caught() {
    assert_caught(
        Flaw::NonAtomicTransactions,
        &[
            "transactions::random_transactions_match_the_reference_model",
            "transactions::transaction_is_all_or_nothing_and_names_the_first_failed_operation",
        ],
    );
}

#[test]
fn receipts_that_never_go_stale_are_caught() {
    assert_caught(
        Flaw::ReceiptsNeverStale,
        &[
            "queue::stale_receipt_is_rejected_after_redelivery_and_changes_nothing",
            "queue::random_operation_sequences_match_the_reference_model",
        ],
    );
}

#[test]
fn ignored_expiry_is_caught() {
    assert_caught(
        Flaw::TtlIgnored,
        &[
            "ttl::entry_is_gone_exactly_at_its_expiry_instant_from_every_read",
            "ttl::random_sequences_with_expiries_and_clock_moves_match_the_reference_model",
        ],
    );
}

#[test]
fn scan_cursors_that_repeat_a_key_are_caught() {
    assert_caught(
        Flaw::ScanRepeatsCursorKey,
        &[
            "kv::random_operation_sequences_match_the_reference_model",
            "kv::scans_during_concurrent_writes_never_repeat_or_skip_stable_keys",
        ],
    );
}

#[test]
fn capability_drift_is_caught() {
    assert_caught(
        Flaw::UndeclaredFeaturesWork,
        &[
            "ttl::undeclared_ttl_returns_unsupported_and_writes_nothing",
            "fifo::undeclared_fifo_returns_unsupported",
        ],
    );
}

#[test]
fn every_flaw_has_a_self_test() {
    // Adding a flaw without a test above would leave it unchecked.
    assert_eq!(Flaw::ALL.len(), 6);
}
