//! Synthetic builder placeholder; filled in by its layer's tests.
