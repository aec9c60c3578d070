//! Small reference models the property tests compare backends against.
