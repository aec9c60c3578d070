//! Reference model of the queue tier (being written).
