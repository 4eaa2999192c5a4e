//! Address newtypes, byte order and architecture names shared by every layer.
//!
//! Physical and virtual addresses are distinct types so that a kernel virtual address can never be
//! handed to the dump reader by mistake (the bug class memflow's `PhysicalAddress` prevents).

use std::fmt;

/// A physical address in the dumped machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PhysAddr(pub u64);

/// A kernel virtual address in the dumped machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct VirtAddr(pub u64);

/// A page frame number (physical address divided by the page size).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pfn(pub u64);

impl PhysAddr {
    #[allow(clippy::should_implement_trait)] // wrapping, unlike what `+` would promise
    pub fn add(self, off: u64) -> PhysAddr {
        PhysAddr(self.0.wrapping_add(off))
    }
    pub fn pfn(self, page_size: u64) -> Pfn {
        Pfn(self.0 / page_size)
    }
}

impl VirtAddr {
    #[allow(clippy::should_implement_trait)] // wrapping, unlike what `+` would promise
    pub fn add(self, off: u64) -> VirtAddr {
        VirtAddr(self.0.wrapping_add(off))
    }
}

impl Pfn {
    pub fn addr(self, page_size: u64) -> PhysAddr {
        PhysAddr(self.0.wrapping_mul(page_size))
    }
}

impl fmt::Display for PhysAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "phys {:#x}", self.0)
    }
}

impl fmt::Display for VirtAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

impl fmt::Display for Pfn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pfn {:#x}", self.0)
    }
}

/// Byte order of the dumped machine (s390x is big-endian, the others little-endian).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Endian {
    Little,
    Big,
}

impl Endian {
    pub fn u16(self, b: [u8; 2]) -> u16 {
        match self {
            Endian::Little => u16::from_le_bytes(b),
            Endian::Big => u16::from_be_bytes(b),
        }
    }
    pub fn u32(self, b: [u8; 4]) -> u32 {
        match self {
            Endian::Little => u32::from_le_bytes(b),
            Endian::Big => u32::from_be_bytes(b),
        }
    }
    pub fn u64(self, b: [u8; 8]) -> u64 {
        match self {
            Endian::Little => u64::from_le_bytes(b),
            Endian::Big => u64::from_be_bytes(b),
        }
    }
    /// Reads an unsigned integer of 1, 2, 4 or 8 bytes from the start of `b`.
    /// Returns `None` for any other width or a short slice.
    pub fn uint(self, b: &[u8], width: usize) -> Option<u64> {
        match width {
            1 => b.first().map(|&v| v as u64),
            2 => Some(self.u16(b.get(..2)?.try_into().ok()?) as u64),
            4 => Some(self.u32(b.get(..4)?.try_into().ok()?) as u64),
            8 => Some(self.u64(b.get(..8)?.try_into().ok()?)),
            _ => None,
        }
    }
}

/// The architectures vmcore-report understands. Always detected from the dump, never the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    X86_64,
    Aarch64,
    S390x,
}

impl Arch {
    /// The name `uname -m` prints for this architecture.
    pub fn uname_machine(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
            Arch::S390x => "s390x",
        }
    }
    pub fn endian(self) -> Endian {
        match self {
            Arch::S390x => Endian::Big,
            _ => Endian::Little,
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.uname_machine())
    }
}

/// Serializes an address as a `"0x…"` string (serde `serialize_with`): a kernel address does not
/// fit JSON's exact integer range.
pub fn ser_hex<S: serde::Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{v:#x}"))
}

/// [`ser_hex`] for an optional address (`null` when absent).
pub fn ser_opt_hex<S: serde::Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => ser_hex(v, s),
        None => s.serialize_none(),
    }
}
