//! Portable snapshot format (in progress).
