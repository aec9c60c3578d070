//! # conformance
//!
//! The shared conformance suite of the storage family. A backend — in this
//! workspace or a third party's — implements [`Harness`] (make a fresh,
//! isolated store per case on a [`ManualClock`](storage_core::ManualClock),
//! declare capabilities, clean up) and hands it to [`trials`] or
//! [`run_report`]. Every case runs through `Arc<dyn …>` trait objects.
//!
//! Cases whose capability the backend does not declare are reported as
//! *unsupported with the reason*, never as passes; the matching
//! `…_returns_unsupported` cases then check the backend really answers
//! [`Error::Unsupported`](storage_core::Error::Unsupported).
//!
//! Property tests read `PROPTEST_CASES` (cases per property) and
//! `CONFORMANCE_MAX_OPS` (longest operation sequence); see the README.

pub mod broken;
pub mod case;
pub mod harness;
pub mod harnesses;
pub mod model;
pub mod prop;
pub mod report;
pub mod runner;
pub mod suites;

pub use case::{Case, CaseResult, Failure, Requirement, Tier};
pub use harness::{Fixture, Harness};
pub use report::{Outcome, Report};
pub use runner::{run_case, run_report, trials};
