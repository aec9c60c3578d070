//! kv cases (being written).

use crate::case::Case;

/// The kv cases.
pub fn cases() -> Vec<Case> {
    vec![]
}
