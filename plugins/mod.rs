//! The plugins and their static registry.
