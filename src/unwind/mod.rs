//! Kernel stack unwinding, as data walked by one loop: a starting register set, a source of
//! unwind rules per program counter (x86_64 ORC tables, DWARF CFI from `.debug_frame`, the
//! frame-pointer or back-chain conventions), and the stack memory, read through
//! [`StackMemory`]. Each architecture's module implements [`Unwinder::step`]: from one frame's
//! registers to its caller's. [`unwind`] runs the steps, bounds the depth, detects loops and
//! records why it stopped.
//!
//! This layer sits between the debug info and the kernel view: it knows nothing of tasks or
//! CPUs. The kernel view ([`crate::kernel`]) finds the starting registers (the dump's PRSTATUS
//! notes, the per-CPU `crash_notes`, a sleeping task's saved context), the stacks' bounds and the
//! in-memory unwind tables, and symbolizes the frames.
//!
//! Registers are kept by their DWARF numbers (the numbering `.debug_frame` and gimli use), so
//! CFI rules apply to them directly:
//! - x86_64 (System V psABI): 0 rax, 1 rdx, 2 rcx, 3 rbx, 4 rsi, 5 rdi, 6 rbp, 7 rsp,
//!   8–15 r8–r15, 16 return address (rip), 49 rflags, 51 cs, 52 ss; 57 orig_rax is the crate's
//!   own slot (the psABI reserves 56–57) for the `pt_regs` word of that name;
//! - aarch64 (DWARF for the Arm 64-bit Architecture): 0–30 x0–x30 (29 = fp, 30 = lr), 31 sp,
//!   32 pc (the crate's own slot; the ABI reserves 32 for the ELR pseudo-register), 33 pstate
//!   (the crate's own slot, for saved `pt_regs` and PRSTATUS; no CFI rule names it);
//! - s390x (ELF ABI s390x supplement): 0–15 r0–r15 (15 = sp, 14 = return address),
//!   64 psw mask, 65 psw address.

use crate::addr::{Arch, ser_hex};

pub mod aarch64;
pub mod cfi;
pub mod s390x;
mod text;

pub use text::TextRanges;

pub mod orc;
pub mod x86_64;

/// The deepest trace [`unwind`] builds; a deeper stack is cut with [`StopReason::MaxDepth`]. The
/// kernel's own stack traces stop at 64 entries in most configurations; 192 leaves room for
/// IRQ and exception stacks on top of a deep task stack.
pub const MAX_FRAMES: usize = 192;

/// The highest DWARF register number kept, plus one (s390x's psw address is 65).
pub const NREGS: usize = 66;

/// x86_64 DWARF register numbers.
pub mod x86_64_regs {
    pub const RAX: u16 = 0;
    pub const RDX: u16 = 1;
    pub const RCX: u16 = 2;
    pub const RBX: u16 = 3;
    pub const RSI: u16 = 4;
    pub const RDI: u16 = 5;
    pub const RBP: u16 = 6;
    pub const RSP: u16 = 7;
    pub const R8: u16 = 8;
    pub const R9: u16 = 9;
    pub const R10: u16 = 10;
    pub const R11: u16 = 11;
    pub const R12: u16 = 12;
    pub const R13: u16 = 13;
    pub const R14: u16 = 14;
    pub const R15: u16 = 15;
    pub const RIP: u16 = 16;
    pub const RFLAGS: u16 = 49;
    pub const CS: u16 = 51;
    pub const SS: u16 = 52;
    /// Not a psABI register: the crate's slot for `pt_regs.orig_ax` (56–57 are reserved).
    pub const ORIG_RAX: u16 = 57;
}

/// aarch64 DWARF register numbers.
pub mod aarch64_regs {
    pub const FP: u16 = 29;
    pub const LR: u16 = 30;
    pub const SP: u16 = 31;
    pub const PC: u16 = 32;
    pub const PSTATE: u16 = 33;
}

/// s390x DWARF register numbers.
pub mod s390x_regs {
    pub const R14: u16 = 14;
    pub const SP: u16 = 15;
    pub const PSW_MASK: u16 = 64;
    pub const PSW_ADDR: u16 = 65;
}

/// A register set by DWARF register number; a register not known is `None`.
#[derive(Clone, PartialEq, Eq)]
pub struct Regs {
    values: [Option<u64>; NREGS],
}

impl Default for Regs {
    fn default() -> Self {
        Regs {
            values: [None; NREGS],
        }
    }
}

impl std::fmt::Debug for Regs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut map = f.debug_map();
        for (r, v) in self.iter() {
            map.entry(&r, &format_args!("{v:#x}"));
        }
        map.finish()
    }
}

impl Regs {
    pub fn get(&self, reg: u16) -> Option<u64> {
        self.values.get(usize::from(reg)).copied().flatten()
    }

    /// Sets a register; a number at or above [`NREGS`] is ignored.
    pub fn set(&mut self, reg: u16, value: u64) {
        if let Some(slot) = self.values.get_mut(usize::from(reg)) {
            *slot = Some(value);
        }
    }

    pub fn clear(&mut self, reg: u16) {
        if let Some(slot) = self.values.get_mut(usize::from(reg)) {
            *slot = None;
        }
    }

    /// The known registers in ascending number.
    pub fn iter(&self) -> impl Iterator<Item = (u16, u64)> + '_ {
        self.values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|v| (i as u16, v)))
    }

    /// The program counter of `arch` (x86_64 rip, aarch64 pc, s390x psw address).
    pub fn pc(&self, arch: Arch) -> Option<u64> {
        self.get(pc_reg(arch))
    }

    /// The stack pointer of `arch`.
    pub fn sp(&self, arch: Arch) -> Option<u64> {
        self.get(sp_reg(arch))
    }
}

/// The DWARF number of `arch`'s program counter slot.
pub fn pc_reg(arch: Arch) -> u16 {
    match arch {
        Arch::X86_64 => x86_64_regs::RIP,
        Arch::Aarch64 => aarch64_regs::PC,
        Arch::S390x => s390x_regs::PSW_ADDR,
    }
}

/// The DWARF number of `arch`'s stack pointer.
pub fn sp_reg(arch: Arch) -> u16 {
    match arch {
        Arch::X86_64 => x86_64_regs::RSP,
        Arch::Aarch64 => aarch64_regs::SP,
        Arch::S390x => s390x_regs::SP,
    }
}

/// Why a read of stack memory failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cannot read stack memory at {addr:#x}: {why}")]
pub struct MemoryError {
    pub addr: u64,
    pub why: String,
}

/// The memory an unwinder reads: kernel virtual addresses, in the dumped machine's byte order.
pub trait StackMemory {
    /// The 64-bit word at `addr`.
    fn read_u64(&self, addr: u64) -> Result<u64, MemoryError>;
}

/// Which stack an address lies on; the kernel view gives the bounds ([`StackRange`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StackKind {
    Task,
    Irq,
    SoftIrq,
    Nmi,
    /// Another exception stack (#DF, #DB, #MC, #VC; arm64 overflow/SDEI).
    Exception,
    /// The KPTI entry trampoline stack.
    Entry,
    User,
    Unknown,
}

/// One stack's bounds, `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StackRange {
    pub kind: StackKind,
    pub start: u64,
    pub end: u64,
}

impl StackRange {
    pub fn contains(&self, addr: u64) -> bool {
        self.start <= addr && addr < self.end
    }
}

/// The stacks a task's trace may pass through: its own, and the CPU's IRQ and exception stacks
/// when it was running.
#[derive(Clone, Debug, Default)]
pub struct Stacks {
    pub ranges: Vec<StackRange>,
}

impl Stacks {
    /// The kind of stack `sp` lies on ([`StackKind::Unknown`] when no range holds it).
    pub fn classify(&self, sp: u64) -> StackKind {
        self.ranges
            .iter()
            .find(|r| r.contains(sp))
            .map_or(StackKind::Unknown, |r| r.kind)
    }

    pub fn range_of(&self, sp: u64) -> Option<&StackRange> {
        self.ranges.iter().find(|r| r.contains(sp))
    }

    /// Whether `[addr, addr + len)` lies within one of the stacks; any address passes when no
    /// stack is known (an unwinder then relies on the memory reads alone).
    pub fn holds(&self, addr: u64, len: u64) -> bool {
        self.ranges.is_empty()
            || self
                .range_of(addr)
                .is_some_and(|r| addr.checked_add(len).is_some_and(|e| e <= r.end))
    }
}

/// Reads a register block saved in memory (a `pt_regs`): each (register, offset from `base`).
pub fn read_saved_regs(
    mem: &dyn StackMemory,
    base: u64,
    fields: impl IntoIterator<Item = (u16, u64)>,
) -> Result<Regs, StopReason> {
    let mut regs = Regs::default();
    for (reg, off) in fields {
        regs.set(reg, mem.read_u64(base.wrapping_add(off))?);
    }
    Ok(regs)
}

/// How a frame was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// The starting registers.
    Start,
    Orc,
    DwarfCfi,
    FramePointer,
    /// aarch64 frame records (x29 chain).
    FrameRecord,
    /// s390x back chain.
    BackChain,
    /// Registers saved by an interrupt or exception (a `pt_regs` on the stack).
    PtRegs,
    /// A return address found by scanning the stack (no unwind rule for the frame below).
    StackScan,
}

/// One physical frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The frame's program counter: for frame 0 and a frame entered by an interrupt or an
    /// exception the exact instruction (`interrupted`), else a return address (symbolize
    /// `pc - 1`).
    pub pc: u64,
    /// The stack pointer in this frame.
    pub sp: u64,
    /// The canonical frame address (the caller's stack pointer before the call), when the rule
    /// that found the caller knew it.
    pub cfa: Option<u64>,
    /// `pc` was interrupted (exact), not a return address.
    pub interrupted: bool,
    pub method: Method,
    /// False when the frame was found by a heuristic (frame-pointer fallback without unwind
    /// information, a return address outside kernel text).
    pub reliable: bool,
    pub stack: StackKind,
    /// The full register set, on frames that start a segment (the first frame, and frames
    /// entered from saved `pt_regs`).
    pub regs: Option<Regs>,
}

/// Why an unwind stopped. Serialized with its addresses as `"0x…"` strings (a kernel address
/// does not fit JSON's exact integer range).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum StopReason {
    /// The unwind information marks the end of the kernel stack (ORC `end`, a zero back chain,
    /// the final frame record, the user-mode `pt_regs` at the top of the task stack).
    EndOfStack,
    /// The next frame is in user mode.
    UserMode {
        #[serde(serialize_with = "ser_hex")]
        pc: u64,
    },
    /// No unwind rule covers this program counter and no fallback applied.
    NoUnwindInfo {
        #[serde(serialize_with = "ser_hex")]
        pc: u64,
    },
    /// A read of stack memory failed.
    Memory {
        #[serde(serialize_with = "ser_hex")]
        addr: u64,
        why: String,
    },
    /// The caller's stack pointer did not move up on the same stack, or a frame repeated.
    Loop {
        #[serde(serialize_with = "ser_hex")]
        sp: u64,
    },
    /// The caller's program counter is not kernel text.
    BadAddress {
        #[serde(serialize_with = "ser_hex")]
        pc: u64,
    },
    /// [`MAX_FRAMES`] reached.
    MaxDepth,
    /// The unwind information at `pc` cannot be used (an unknown ORC type or register, a CFI
    /// rule the unwinder does not evaluate).
    Unsupported {
        #[serde(serialize_with = "ser_hex")]
        pc: u64,
        what: String,
    },
}

impl From<MemoryError> for StopReason {
    fn from(e: MemoryError) -> Self {
        StopReason::Memory {
            addr: e.addr,
            why: e.why,
        }
    }
}

impl StopReason {
    /// A stop that ends a complete trace.
    pub fn is_complete(&self) -> bool {
        matches!(self, StopReason::EndOfStack | StopReason::UserMode { .. })
    }
}

/// A trace: the frames innermost first, and why it ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unwound {
    pub frames: Vec<Frame>,
    pub stop: StopReason,
}

/// The result of one step. (Returned once per frame and moved straight into the trace: boxing
/// the register set would only add an allocation.)
#[allow(clippy::large_enum_variant)]
pub enum Step {
    /// The caller's frame: its registers and how it was found.
    Caller {
        regs: Regs,
        method: Method,
        reliable: bool,
        cfa: Option<u64>,
        /// The caller was interrupted (its pc is exact) and `regs` holds its full saved set.
        interrupted: bool,
    },
    /// No caller.
    Stop(StopReason),
}

/// One architecture's rule for going from a frame to its caller.
pub trait Unwinder {
    fn arch(&self) -> Arch;
    /// Whether `pc` is kernel text (the symbol table or the unwind tables cover it).
    fn is_text(&self, pc: u64) -> bool;
    /// From `frame`'s registers (`regs`; `interrupted` when its pc is exact) to its caller.
    fn step(&self, regs: &Regs, interrupted: bool, mem: &dyn StackMemory, stacks: &Stacks) -> Step;
}

/// A shared unwinder (one built once per kernel and handed to every trace).
impl<U: Unwinder + ?Sized> Unwinder for std::sync::Arc<U> {
    fn arch(&self) -> Arch {
        (**self).arch()
    }

    fn is_text(&self, pc: u64) -> bool {
        (**self).is_text(pc)
    }

    fn step(&self, regs: &Regs, interrupted: bool, mem: &dyn StackMemory, stacks: &Stacks) -> Step {
        (**self).step(regs, interrupted, mem, stacks)
    }
}

/// Unwinds from `start` (a full register set whose pc is exact) until a stop: bounded by
/// [`MAX_FRAMES`], stopping on a repeated (pc, sp) or a stack pointer that moves down on the
/// same stack.
pub fn unwind(
    unwinder: &dyn Unwinder,
    start: Regs,
    mem: &dyn StackMemory,
    stacks: &Stacks,
) -> Unwound {
    let arch = unwinder.arch();
    let mut frames: Vec<Frame> = Vec::new();
    let (Some(pc0), Some(sp0)) = (start.pc(arch), start.sp(arch)) else {
        return Unwound {
            frames,
            stop: StopReason::Unsupported {
                pc: start.pc(arch).unwrap_or(0),
                what: "no program counter or stack pointer in the starting registers".into(),
            },
        };
    };
    frames.push(Frame {
        pc: pc0,
        sp: sp0,
        cfa: None,
        interrupted: true,
        method: Method::Start,
        reliable: true,
        stack: stacks.classify(sp0),
        regs: Some(start.clone()),
    });
    let mut regs = start;
    let mut interrupted = true;
    loop {
        if frames.len() >= MAX_FRAMES {
            return Unwound {
                frames,
                stop: StopReason::MaxDepth,
            };
        }
        match unwinder.step(&regs, interrupted, mem, stacks) {
            Step::Stop(stop) => return Unwound { frames, stop },
            Step::Caller {
                regs: next,
                method,
                reliable,
                cfa,
                interrupted: next_interrupted,
            } => {
                let (Some(pc), Some(sp)) = (next.pc(arch), next.sp(arch)) else {
                    return Unwound {
                        frames,
                        stop: StopReason::Unsupported {
                            pc: regs.pc(arch).unwrap_or(0),
                            what: "the caller's program counter or stack pointer is unknown".into(),
                        },
                    };
                };
                let prev = frames.last().expect("the first frame is pushed above");
                let stack = stacks.classify(sp);
                // On one stack the stack pointer only moves up towards the caller; a switch of
                // stacks (IRQ → task) may go anywhere, but a frame never repeats.
                let same_stack = stacks.range_of(sp).is_some()
                    && stacks.range_of(sp) == stacks.range_of(prev.sp);
                if (same_stack && sp < prev.sp) || frames.iter().any(|f| f.pc == pc && f.sp == sp) {
                    return Unwound {
                        frames,
                        stop: StopReason::Loop { sp },
                    };
                }
                if !unwinder.is_text(pc) {
                    return Unwound {
                        frames,
                        stop: StopReason::BadAddress { pc },
                    };
                }
                frames.push(Frame {
                    pc,
                    sp,
                    cfa,
                    interrupted: next_interrupted,
                    method,
                    reliable,
                    stack,
                    regs: next_interrupted.then(|| next.clone()),
                });
                regs = next;
                interrupted = next_interrupted;
            }
        }
    }
}
