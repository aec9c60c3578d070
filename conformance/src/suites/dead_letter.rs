//! dead_letter cases (being written).

use crate::case::Case;

/// The dead_letter cases.
pub fn cases() -> Vec<Case> {
    vec![]
}
