//! The suites, one module per tier. [`all`] lists every case in report order.

pub mod atomic;
pub mod common;
pub mod dead_letter;
pub mod fifo;
pub mod kv;
pub mod kv_property;
pub mod queue;
pub mod sql;
pub mod transactions;
pub mod ttl;

use crate::case::Case;

/// Every case of the suite, in report order.
pub fn all() -> Vec<Case> {
    let mut cases = Vec::new();
    cases.extend(kv::cases());
    cases.extend(ttl::cases());
    cases.extend(atomic::cases());
    cases.extend(transactions::cases());
    cases.extend(queue::cases());
    cases.extend(fifo::cases());
    cases.extend(dead_letter::cases());
    cases.extend(sql::cases());
    cases
}
