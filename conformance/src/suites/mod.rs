//! The suites, one module per tier. [`all`] lists every case in report order.

pub mod sql;

use crate::case::Case;

/// Every case of the suite.
pub fn all() -> Vec<Case> {
    let mut cases = Vec::new();
    cases.extend(sql::cases());
    cases
}
