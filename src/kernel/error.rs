//! Errors of the kernel view. Plugins branch on the kind: a member missing from this kernel
//! version means "degrade", unreadable memory means "record and carry on".

use crate::addr::VirtAddr;
use crate::arch::TranslateError;
use crate::debuginfo::DebugInfoError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KernelError {
    /// Neither the symbol table nor the debuginfo knows this global.
    #[error("no symbol {0:?} in this kernel")]
    NoSymbol(String),
    /// The type is not described by the debuginfo.
    #[error("no type {0:?} in this kernel's debuginfo")]
    NoType(String),
    /// The member does not exist in this kernel's version of the type.
    #[error("{ty} has no member {member:?} in this kernel")]
    NoMember { ty: String, member: String },
    /// The bytes could not be read: absent from the dump (filtered), unmapped, or unreadable.
    #[error("cannot read {len} bytes at {va}: {source}")]
    Memory {
        va: VirtAddr,
        len: u64,
        source: TranslateError,
    },
    /// The data read contradicts itself: a list cycle, an impossible value, a runaway walk.
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// An operation that does not apply to the object's type (deref of an integer, …): a bug in
    /// the caller or a kernel whose type changed shape.
    #[error("wrong type: {0}")]
    WrongType(String),
    /// The dump or the architecture does not support the operation (user memory on an
    /// architecture whose walker reads kernel addresses only).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A running task's backtrace cannot start: the dump saved no registers for its CPU.
    #[error("no registers: {0}")]
    NoRegisters(String),
    /// The deadline set with [`crate::kernel::Kernel::set_deadline`] passed.
    #[error("timed out")]
    TimedOut,
    #[error(transparent)]
    DebugInfo(#[from] DebugInfoError),
}

impl KernelError {
    /// A stable machine-readable code for the manifest.
    pub fn code(&self) -> &'static str {
        match self {
            KernelError::NoSymbol(_) => "no-such-symbol",
            KernelError::NoType(_) => "no-such-type",
            KernelError::NoMember { .. } => "no-such-member",
            KernelError::Memory { source, .. } if source.is_not_dumped() => "not-dumped",
            KernelError::Memory { source, .. } => source.code(),
            KernelError::Corrupt(_) => "corrupt-data",
            KernelError::WrongType(_) => "wrong-type",
            KernelError::Unsupported(_) => "unsupported",
            KernelError::NoRegisters(_) => "no-registers",
            KernelError::TimedOut => "timed-out",
            KernelError::DebugInfo(e) => e.code(),
        }
    }

    /// True for "this kernel does not have it" (symbol, type or member): the caller should
    /// degrade gracefully rather than report a failure.
    pub fn is_missing(&self) -> bool {
        matches!(
            self,
            KernelError::NoSymbol(_) | KernelError::NoType(_) | KernelError::NoMember { .. }
        )
    }

    /// True when the memory is simply not in the dump (filtered out when it was taken).
    pub fn is_not_dumped(&self) -> bool {
        matches!(self, KernelError::Memory { source, .. } if source.is_not_dumped())
    }
}

impl crate::error::ErrorCode for KernelError {
    fn code(&self) -> &'static str {
        KernelError::code(self)
    }
    fn address(&self) -> Option<u64> {
        match self {
            KernelError::Memory { va, .. } => Some(va.0),
            _ => None,
        }
    }
}
