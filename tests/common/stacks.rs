//! The backtrace tests' three oracles, parsed from a fixture set's files into plain [`Frame`]s.
//!
//! * **The live kernel's own unwind**, `truth.txt`'s `---stacks---` section ([`live_stacks`]),
//!   written by the guest's init (`fixtures/make-initramfs.sh`) one or two seconds before the
//!   crash for a few tasks that sleep until it: the `sleep` tasks, the shell waiting for one,
//!   kthreadd, khungtaskd and, in the busy profile, the writer blocked in D state. Per task a
//!   header line `PID COMM`, then the task's `/proc/PID/stack` verbatim (fs/proc/base.c
//!   `proc_pid_stack`: `[<0>] %pB` per entry of `stack_trace_save_tsk`, which keeps only the
//!   entries the unwinder calls reliable), or `! unreadable`:
//!
//!   ```text
//!   126 touch
//!   [<0>] percpu_rwsem_wait+0x116/0x140
//!   [<0>] __percpu_down_read+0x64/0x120
//!   ```
//!
//! * **The console**, `console.log`'s `Call Trace:` blocks ([`console_traces`]): x86
//!   (arch/x86/kernel/dumpstack.c `show_trace_log_lvl`) prints ` func+0xOFF/0xSIZE [module]`
//!   per entry, `? ` before the ones it could not prove (a stale return address found while
//!   scanning the stack), inside ` <IRQ>` / ` </IRQ>`, ` <TASK>` / ` </TASK>` (and `NMI`,
//!   `SOFTIRQ`, exception stack) brackets, with register dumps (`RIP: 0033:...`) between entries;
//!   arm64 (arch/arm64/kernel/stacktrace.c `dump_backtrace`) prints `Call trace:` and the
//!   entries without brackets or `? `. The kernel-mode `RIP: 0010:func+0x20/0x30 [module]`
//!   (arm64: `pc : func+...`) printed before an oops' trace is kept apart ([`ConsoleTrace::rip`]):
//!   it is the faulting function, which the trace itself does not list.
//!
//! * **drgn**, `drgn/stacks.txt` ([`drgn_stacks`]), `prog.stack_trace(task)` of every task as
//!   `fixtures/peer-drgn.py` writes it (its stacks.txt block documents the layout): `cpu` lines,
//!   then per task a `task` header and one line per frame, inline frames before the physical
//!   frame of the same PC.
//!
//!   truth.txt is cut out of the serial console, so a kernel message (`[  115.167374] hrtimer:
//!   ...`) may stand between two lines of the section; it is skipped.
//!
//! Names: the live stack and the console print kallsyms names (`watchdog.cold`,
//! `__percpu_rwsem_trylock.part.0`); drgn gives the DWARF name of each (possibly inlined)
//! function and, separately, the ELF symbol, which is the kallsyms name. Compare live or console
//! names with [`Frame::symbol_name`] of drgn's physical frames. The sizes differ too: kallsyms'
//! size runs to the next symbol (alignment padding included), the ELF symbol's is exact.

use std::path::Path;

/// One entry of a stack, whichever oracle printed it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Frame {
    /// The function: the kallsyms name for the live stack and the console (a raw address
    /// when the kernel had no symbol); for drgn the DWARF name of the (possibly inlined)
    /// function, else its symbol, else `?`.
    pub function: String,
    /// The symbol the address lies in, when the oracle printed one (`func+0xOFF/0xSIZE`).
    pub symbol: Option<String>,
    pub offset: Option<u64>,
    pub size: Option<u64>,
    /// The loadable module holding the address (`[fixture_oops]`), `None` for vmlinux.
    pub module: Option<String>,
    /// False only for the console's `? ` entries.
    pub reliable: bool,
    /// drgn only: an inlined function's frame (the physical frame of the same PC follows).
    pub inline: bool,
    /// drgn only: the frame's registers are those saved by an interrupt or exception.
    pub interrupted: bool,
    /// drgn only (the live stack prints `[<0>]` to everyone since 4.x, kept as `None`).
    pub pc: Option<u64>,
    pub sp: Option<u64>,
    /// Console only: the bracket the entry was printed in (`TASK`, `IRQ`, `NMI`, ...), empty
    /// outside brackets (arm64).
    pub context: String,
}

impl Frame {
    /// The kallsyms-comparable name: the symbol when known, else the function.
    pub fn symbol_name(&self) -> &str {
        self.symbol.as_deref().unwrap_or(&self.function)
    }
}

/// `func+0xOFF/0xSIZE`, optionally followed by ` [module]` or ` [module build-id]` (the
/// printk `%pB` form, lib/vsprintf.c via kernel/kallsyms.c `sprint_backtrace`). `None` for
/// anything else (a raw address, a user-mode `0x47b7a0`).
fn parse_symbol_form(s: &str) -> Option<Frame> {
    let s = s.trim();
    let (form, module) = match s.split_once(' ') {
        Some((form, rest)) => {
            let m = rest.trim().strip_prefix('[')?.strip_suffix(']')?;
            (form, Some(m.split_whitespace().next()?.to_string()))
        }
        None => (s, None),
    };
    let (name, nums) = form.rsplit_once('+')?;
    let (off, size) = nums.split_once('/')?;
    if name.is_empty() {
        return None;
    }
    Some(Frame {
        function: name.to_string(),
        symbol: Some(name.to_string()),
        offset: Some(hex(off)?),
        size: Some(hex(size)?),
        module,
        reliable: true,
        ..Frame::default()
    })
}

fn hex(s: &str) -> Option<u64> {
    u64::from_str_radix(s.strip_prefix("0x")?, 16).ok()
}

/// A task's `/proc/PID/stack` as the live kernel printed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveStack {
    pub pid: i64,
    pub comm: String,
    pub frames: Vec<Frame>,
    /// The guest could not read the file (`! unreadable`).
    pub unreadable: bool,
}

impl LiveStack {
    pub fn functions(&self) -> Vec<&str> {
        self.frames.iter().map(|f| f.function.as_str()).collect()
    }
}

/// The lines of a `---name---` section of truth.txt, `None` when the section is absent.
fn truth_section<'a>(truth: &'a str, name: &str) -> Option<Vec<&'a str>> {
    let head = format!("---{name}---");
    let mut lines = truth.lines().skip_while(|l| l.trim_end() != head);
    lines.next()?;
    Some(
        lines
            .take_while(|l| !(l.starts_with("---") && l.trim_end().ends_with("---") && l.len() > 6))
            .collect(),
    )
}

/// The `---stacks---` section of a truth.txt; `None` when the set predates it.
pub fn live_stacks(truth: &str) -> Option<Result<Vec<LiveStack>, String>> {
    let lines = truth_section(truth, "stacks")?;
    let mut out: Vec<LiveStack> = Vec::new();
    for (i, raw) in lines.iter().enumerate() {
        let line = raw.trim_end_matches('\r');
        if console_message(line) != line {
            // a kernel message the serial console printed amid the truth (aarch64-6.1:
            // `[  115.167374] hrtimer: interrupt took 72149104 ns`), not part of the section
            continue;
        }
        if let Some(rest) = line.strip_prefix("[<") {
            let Some((addr, form)) = rest.split_once(">]") else {
                return Some(Err(format!("---stacks--- line {}: {line:?}", i + 1)));
            };
            let Some(task) = out.last_mut() else {
                return Some(Err(format!("---stacks--- frame before any task: {line:?}")));
            };
            let mut frame = parse_symbol_form(form).unwrap_or_else(|| Frame {
                function: form.trim().to_string(),
                reliable: true,
                ..Frame::default()
            });
            frame.pc = u64::from_str_radix(addr, 16).ok().filter(|&a| a != 0);
            task.frames.push(frame);
        } else if line.starts_with('!') {
            match out.last_mut() {
                Some(task) => task.unreadable = true,
                None => return Some(Err(format!("---stacks--- {line:?} before any task"))),
            }
        } else if !line.is_empty() {
            let parsed = line
                .split_once(' ')
                .and_then(|(pid, comm)| Some((pid.parse().ok()?, comm)));
            let Some((pid, comm)) = parsed else {
                return Some(Err(format!("---stacks--- bad task header {line:?}")));
            };
            out.push(LiveStack {
                pid,
                comm: comm.to_string(),
                frames: Vec::new(),
                unreadable: false,
            });
        }
    }
    Some(Ok(out))
}

/// One `Call Trace:` block of the console, with what the kernel printed about it before.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConsoleTrace {
    /// 1-based line of `Call Trace:` in console.log.
    pub line: usize,
    /// The report lines since the previous trace that say why this one was printed
    /// (`Kernel panic - not syncing: ...`, `BUG: ...`, `Oops: ...`, `INFO: task ...`,
    /// `sysrq: ...`, `WARNING: ...`, `Internal error: ...`, `Unable to handle ...`), in order.
    pub causes: Vec<String>,
    /// From `CPU: 1 PID: 38 Comm: khungtaskd ...` or the hung-task report's
    /// `task:touch state:D ... pid:126 ...`, when printed since the previous trace.
    pub cpu: Option<u32>,
    pub pid: Option<i64>,
    pub comm: Option<String>,
    /// The kernel-mode faulting location printed before the trace (x86 `RIP: 0010:...`, arm64
    /// `pc : ...`), in an oops.
    pub rip: Option<Frame>,
    pub frames: Vec<Frame>,
}

impl ConsoleTrace {
    /// Whether the panic itself printed this trace (a `Kernel panic` line came first).
    pub fn is_panic(&self) -> bool {
        self.causes.iter().any(|c| c.starts_with("Kernel panic"))
    }

    /// The reliable entries' function names, the faulting function first when there is one.
    pub fn reliable_functions(&self) -> Vec<&str> {
        let rip = self.rip.iter().map(|f| f.function.as_str());
        rip.chain(
            self.frames
                .iter()
                .filter(|f| f.reliable)
                .map(|f| f.function.as_str()),
        )
        .collect()
    }
}

const CAUSES: &[&str] = &[
    "Kernel panic - not syncing",
    "BUG:",
    "Oops:",
    "INFO: task ",
    "sysrq: ",
    "WARNING:",
    "Internal error:",
    "Unable to handle kernel",
];

/// A console line without its `\r` and printk timestamp (`[   46.549461] `).
fn console_message(line: &str) -> &str {
    let line = line.trim_end_matches(['\r', '\n']);
    if let Some(rest) = line.strip_prefix('[')
        && let Some((stamp, msg)) = rest.split_once("] ")
        && stamp.trim().chars().all(|c| c.is_ascii_digit() || c == '.')
    {
        return msg;
    }
    line
}

/// The value after `key` among whitespace-separated tokens (`PID: 38` or `pid:126`).
fn token_after<'a>(msg: &'a str, key: &str) -> Option<&'a str> {
    let mut toks = msg.split_whitespace();
    while let Some(t) = toks.next() {
        if let Some(v) = t.strip_prefix(key) {
            return if v.is_empty() { toks.next() } else { Some(v) };
        }
    }
    None
}

/// Every `Call Trace:` / `Call trace:` block of a console.log, in order.
pub fn console_traces(console: &str) -> Vec<ConsoleTrace> {
    let mut out = Vec::new();
    let mut pending = ConsoleTrace::default();
    let lines: Vec<&str> = console.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let msg = console_message(lines[i]);
        i += 1;
        if CAUSES.iter().any(|c| msg.starts_with(c)) {
            pending.causes.push(msg.to_string());
        } else if msg.starts_with("CPU: ") && msg.contains(" PID: ") {
            pending.cpu = token_after(msg, "CPU:").and_then(|v| v.parse().ok());
            pending.pid = token_after(msg, "PID:").and_then(|v| v.parse().ok());
            pending.comm = token_after(msg, "Comm:").map(str::to_string);
        } else if msg.starts_with("task:") && msg.contains(" pid:") {
            pending.comm = token_after(msg, "task:").map(str::to_string);
            pending.pid = token_after(msg, "pid:").and_then(|v| v.parse().ok());
        } else if let Some(loc) = msg
            .strip_prefix("RIP: 0010:")
            .or_else(|| msg.strip_prefix("pc : "))
        {
            if let Some(f) = parse_symbol_form(loc) {
                pending.rip = Some(f);
            }
        } else if msg == "Call Trace:" || msg == "Call trace:" {
            let mut trace = std::mem::take(&mut pending);
            trace.line = i;
            let mut brackets: Vec<String> = Vec::new();
            while i < lines.len() {
                let msg = console_message(lines[i]);
                let Some(entry) = msg.strip_prefix(' ') else {
                    if brackets.is_empty() {
                        break; // the first line after the trace: the main loop reads it
                    }
                    i += 1; // a register dump inside a bracket (an exception frame, user RIP)
                    continue;
                };
                i += 1;
                let entry = entry.trim();
                if let Some(name) = entry.strip_prefix("</").and_then(|e| e.strip_suffix('>')) {
                    if brackets.last().map(String::as_str) == Some(name) {
                        brackets.pop();
                    }
                } else if let Some(name) = entry.strip_prefix('<').and_then(|e| e.strip_suffix('>'))
                {
                    brackets.push(name.to_string());
                } else {
                    let (reliable, form) = match entry.strip_prefix("? ") {
                        Some(rest) => (false, rest),
                        None => (true, entry),
                    };
                    let mut f = parse_symbol_form(form).unwrap_or_else(|| Frame {
                        function: form.to_string(),
                        ..Frame::default()
                    });
                    f.reliable = reliable;
                    f.context = brackets.last().cloned().unwrap_or_default();
                    trace.frames.push(f);
                }
            }
            out.push(trace);
        }
    }
    out
}

/// A `cpu` line of drgn/stacks.txt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrgnCpu {
    pub cpu: u32,
    pub curr: Option<u64>,
    pub idle: Option<u64>,
    pub panic: bool,
    /// Where drgn takes the registers of the task running there: `prstatus` or `crash_notes`.
    pub regs: String,
}

/// A task of drgn/stacks.txt with drgn's trace of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrgnTask {
    pub addr: u64,
    pub pid: i64,
    pub comm: String,
    /// The CPU whose current task this is.
    pub cpu: Option<u32>,
    /// Unwound from that CPU's registers (else from the task's saved switch frame).
    pub running: bool,
    pub frames: Vec<Frame>,
    /// drgn's error, when the trace (or its rest) could not be read.
    pub error: Option<String>,
}

impl DrgnTask {
    /// The kallsyms-comparable names of the physical frames, innermost first.
    pub fn physical_symbols(&self) -> Vec<&str> {
        self.frames
            .iter()
            .filter(|f| !f.inline)
            .map(Frame::symbol_name)
            .collect()
    }

    /// Every frame's function name, inline frames included: drgn's `stack_trace()` sequence.
    pub fn functions(&self) -> Vec<&str> {
        self.frames.iter().map(|f| f.function.as_str()).collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DrgnStacks {
    /// Where the frames' symbols come from, in lookup order (`kallsyms`, `module_kallsyms`,
    /// `elf`): the `symbols` line. With `kallsyms` first they are the kernel's own names.
    pub symbols: Vec<String>,
    pub cpus: Vec<DrgnCpu>,
    pub tasks: Vec<DrgnTask>,
}

impl DrgnStacks {
    /// The task with this pid (pid 0 is one idle task per CPU: use the address instead).
    pub fn by_pid(&self, pid: i64) -> Option<&DrgnTask> {
        self.tasks.iter().find(|t| t.pid == pid)
    }
}

fn opt_hex(s: &str) -> Result<Option<u64>, String> {
    if s == "-" {
        return Ok(None);
    }
    hex(s).map(Some).ok_or_else(|| format!("not hex: {s:?}"))
}

fn drgn_frame(line: &str) -> Result<Frame, String> {
    let t: Vec<&str> = line.split_whitespace().collect();
    let [_index, pc, sp, kind, name, symform, module, flags] = t[..] else {
        return Err(format!("a frame has 8 fields: {line:?}"));
    };
    let sym = if symform == "-" {
        None
    } else {
        Some(parse_symbol_form(symform).ok_or_else(|| format!("bad symbol {symform:?}"))?)
    };
    Ok(Frame {
        function: name.to_string(),
        symbol: sym.as_ref().and_then(|s| s.symbol.clone()),
        offset: sym.as_ref().and_then(|s| s.offset),
        size: sym.as_ref().and_then(|s| s.size),
        module: (module != "-").then(|| module.to_string()),
        reliable: true,
        inline: match kind {
            "inline" => true,
            "phys" => false,
            _ => return Err(format!("frame kind {kind:?}")),
        },
        interrupted: flags == "interrupted",
        pc: opt_hex(pc)?,
        sp: opt_hex(sp)?,
        context: String::new(),
    })
}

/// Parses drgn/stacks.txt (layout in `fixtures/peer-drgn.py`).
pub fn drgn_stacks(text: &str) -> Result<DrgnStacks, String> {
    let mut out = DrgnStacks::default();
    for (n, line) in text.lines().enumerate() {
        let err = |e: String| format!("drgn/stacks.txt line {}: {e}", n + 1);
        let t: Vec<&str> = line.split_whitespace().collect();
        match t.first().copied() {
            None => {}
            Some("symbols") if t.len() == 2 => {
                out.symbols = t[1].split(',').map(str::to_string).collect();
            }
            Some("cpu") => {
                let [
                    _,
                    cpu,
                    "curr",
                    curr,
                    "idle",
                    idle,
                    "panic",
                    panic,
                    "regs",
                    regs,
                ] = t[..]
                else {
                    return Err(err(format!("bad cpu line {line:?}")));
                };
                out.cpus.push(DrgnCpu {
                    cpu: cpu.parse().map_err(|_| err(format!("cpu {cpu:?}")))?,
                    curr: opt_hex(curr).map_err(err)?,
                    idle: opt_hex(idle).map_err(err)?,
                    panic: panic == "yes",
                    regs: regs.to_string(),
                });
            }
            Some("task") => {
                // `task ADDR pid PID comm COMM cpu CPU running yes|no`; COMM may hold spaces
                let n = t.len();
                if n < 10
                    || t[2] != "pid"
                    || t[4] != "comm"
                    || t[n - 4] != "cpu"
                    || t[n - 2] != "running"
                {
                    return Err(err(format!("bad task line {line:?}")));
                }
                out.tasks.push(DrgnTask {
                    addr: hex(t[1]).ok_or_else(|| err(format!("address {:?}", t[1])))?,
                    pid: t[3].parse().map_err(|_| err(format!("pid {:?}", t[3])))?,
                    comm: t[5..n - 4].join(" "),
                    cpu: t[n - 3].parse().ok(),
                    running: t[n - 1] == "yes",
                    frames: Vec::new(),
                    error: None,
                });
            }
            Some(_) => {
                let task = out
                    .tasks
                    .last_mut()
                    .ok_or_else(|| err("a frame before any task".into()))?;
                if let Some(e) = line.strip_prefix("error: ") {
                    task.error = Some(e.to_string());
                } else {
                    task.frames.push(drgn_frame(line).map_err(err)?);
                }
            }
        }
    }
    Ok(out)
}

/// Where `needle` stops being a subsequence of `hay` (`None`: every element of `needle` is
/// found in `hay`, in order, gaps allowed).
pub fn subsequence_mismatch(needle: &[&str], hay: &[&str]) -> Option<usize> {
    let mut rest = hay.iter();
    for (i, n) in needle.iter().enumerate() {
        if !rest.any(|h| h == n) {
            return Some(i);
        }
    }
    None
}

/// The three oracles of one set: `None` for an oracle the set lacks (an older recipe or
/// peer-drgn.py), reported through [`super::fixtures::skip`].
pub struct SetStacks {
    pub live: Option<Vec<LiveStack>>,
    pub console: Vec<ConsoleTrace>,
    pub drgn: Option<DrgnStacks>,
}

pub fn read_set(dir: &Path) -> SetStacks {
    let read =
        |f: &str| std::fs::read(dir.join(f)).map(|b| String::from_utf8_lossy(&b).into_owned());
    let truth = read("truth.txt").unwrap_or_default();
    let live = match live_stacks(&truth) {
        Some(r) => Some(r.unwrap_or_else(|e| panic!("{}: {e}", dir.display()))),
        None => {
            super::fixtures::skip(format_args!(
                "{}/truth.txt has no ---stacks--- section (built by an older recipe: rebuild the set)",
                dir.display()
            ));
            None
        }
    };
    let console = console_traces(&read("console.log").unwrap_or_default());
    let drgn = super::fixtures::drgn_oracle(dir, "stacks.txt")
        .map(|t| drgn_stacks(&t).unwrap_or_else(|e| panic!("{}: {e}", dir.display())));
    SetStacks {
        live,
        console,
        drgn,
    }
}
