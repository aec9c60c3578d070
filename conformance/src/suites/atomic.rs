//! atomic cases (being written).

use crate::case::Case;

/// The atomic cases.
pub fn cases() -> Vec<Case> {
    vec![]
}
