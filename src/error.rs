//! The one cross-layer error convention: every layer's error has a stable machine-readable code
//! that the manifest records, so pipelines can group failures without parsing messages.

pub trait ErrorCode: std::error::Error {
    /// A short kebab-case code, stable across releases (`not-dumped`, `no-such-member`, …).
    fn code(&self) -> &'static str;
    /// The address the error is about (virtual for kernel reads, physical for dump reads), when
    /// it has one: the runner aggregates repeated failures by code with their first and last
    /// address.
    fn address(&self) -> Option<u64> {
        None
    }
}

impl ErrorCode for crate::dump::DumpError {
    fn code(&self) -> &'static str {
        crate::dump::DumpError::code(self)
    }
    fn address(&self) -> Option<u64> {
        use crate::dump::DumpError as E;
        match self {
            E::NotDumped { addr } | E::OutOfRange { addr } => Some(addr.0),
            _ => None,
        }
    }
}

impl ErrorCode for crate::arch::TranslateError {
    fn code(&self) -> &'static str {
        crate::arch::TranslateError::code(self)
    }
    fn address(&self) -> Option<u64> {
        use crate::arch::TranslateError as E;
        match self {
            E::NotMapped { va, .. }
            | E::TableNotDumped { va, .. }
            | E::NonCanonical { va }
            | E::Memory { va, .. } => Some(va.0),
            _ => None,
        }
    }
}

impl ErrorCode for crate::debuginfo::DebugInfoError {
    fn code(&self) -> &'static str {
        crate::debuginfo::DebugInfoError::code(self)
    }
}
