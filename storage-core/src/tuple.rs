//! Order-preserving tuple encoding for composite keys (in progress).
