//! ttl cases (being written).

use crate::case::Case;

/// The ttl cases.
pub fn cases() -> Vec<Case> {
    vec![]
}
