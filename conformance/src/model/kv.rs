//! Reference model of the KV and CAS tiers (being written).
