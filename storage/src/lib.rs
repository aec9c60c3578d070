#![doc = include_str!("../README.md")]

#[cfg(feature = "check")]
pub mod check;
mod env;
mod error;
mod inspect;
mod location;
mod memory_file;
mod open;
mod store;
mod transfer;

pub use error::OpenError;
pub use inspect::{inspect, Inspection, NamespaceInfo, QueueInfo};
pub use location::{Adapter, DbPath, Location, ADAPTERS, DEFAULT_REDIS_PREFIX};
pub use open::{open, open_location, open_with_clock};
pub use storage_core::snapshot::{ImportMode, Summary};
pub use store::Store;
pub use transfer::{copy, export, import, rebase, Scope};

#[cfg(feature = "remote")]
pub use env::s3_config;

/// The workspace README's examples, compiled and run as doctests so they
/// stay true (this crate sees every crate they use).
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
