//! transactions cases (being written).

use crate::case::Case;

/// The transactions cases.
pub fn cases() -> Vec<Case> {
    vec![]
}
