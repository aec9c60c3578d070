//! queue cases (being written).

use crate::case::Case;

/// The queue cases.
pub fn cases() -> Vec<Case> {
    vec![]
}
