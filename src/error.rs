//! The one cross-layer error convention: every layer's error has a stable machine-readable code
//! that the manifest records, so pipelines can group failures without parsing messages.

pub trait ErrorCode: std::error::Error {
    /// A short kebab-case code, stable across releases (`not-dumped`, `no-such-member`, …).
    fn code(&self) -> &'static str;
}

impl ErrorCode for crate::dump::DumpError {
    fn code(&self) -> &'static str {
        crate::dump::DumpError::code(self)
    }
}

impl ErrorCode for crate::arch::TranslateError {
    fn code(&self) -> &'static str {
        crate::arch::TranslateError::code(self)
    }
}

impl ErrorCode for crate::debuginfo::DebugInfoError {
    fn code(&self) -> &'static str {
        crate::debuginfo::DebugInfoError::code(self)
    }
}
