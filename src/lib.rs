//! vmcore-report: turn an offline Linux kernel crash dump into a sos-style triage archive.
//!
//! The crate is layered; each module depends only on the ones above it in this list:
//!
//! 1. [`addr`]: address newtypes, byte order and architecture names shared by every layer.
//! 2. [`dump`]: dump readers (ELF, kdump-compressed, flattened) behind the [`dump::PhysMem`] trait,
//!    plus the metadata a dump carries (VMCOREINFO, per-CPU notes, the header's utsname).
//! 3. [`arch`]: kernel virtual → physical translation per architecture ([`arch::AddressSpace`]).
//! 4. [`debuginfo`]: symbols (the vmlinux's, or kallsyms from the dump) and types (a lazy DWARF
//!    index, BTF from the vmlinux or the dump's memory).
//! 5. [`unwind`]: stack unwinding per architecture (ORC, CFI, frame records, back chain).
//! 6. [`kernel`]: the typed kernel view plugins use ([`kernel::Kernel`], [`kernel::Object`]).
//! 7. [`assemble`]: open the dump and build the kernel view from the symbol and type sources
//!    that exist (a matching vmlinux, else the dump alone).
//! 8. [`report`]: the plugin framework, the runner, the manifest and the sos-layout archive.
//!
//! The plugins themselves live in the top-level `plugins/` directory (one file each, plus the
//! static registry) and see only [`kernel`] and the report sink. [`cli`] turns the command line
//! into a validated configuration and [`app`] is the glue the binary runs.

pub mod addr;
pub mod app;
pub mod arch;
pub mod assemble;
pub mod cli;
pub mod debuginfo;
pub mod dump;
pub mod error;
pub mod kernel;
pub mod report;
pub mod unwind;

#[path = "../plugins/mod.rs"]
pub mod plugins;
