//! fifo cases (being written).

use crate::case::Case;

/// The fifo cases.
pub fn cases() -> Vec<Case> {
    vec![]
}
