//! The records the modules plugin reads once from the kernel's `modules` list and renders three
//! times: `/proc/modules`, `lsmod`, and JSON.

use serde::Serialize;

/// `enum module_state` (include/linux/module.h), by enumerator name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ModuleState {
    /// `MODULE_STATE_LIVE`: initialised and in normal use.
    Live,
    /// `MODULE_STATE_COMING`: being loaded (its init function had not returned).
    Loading,
    /// `MODULE_STATE_GOING`: being unloaded.
    Unloading,
    /// `MODULE_STATE_UNFORMED`: still being set up; `/proc/modules` skips it.
    Unformed,
    /// A value none of the enumerators has (a corrupt structure).
    Unknown(i64),
}

impl ModuleState {
    /// The word `m_show()` prints: everything neither going nor coming is `Live`.
    pub fn proc_word(self) -> &'static str {
        match self {
            ModuleState::Unloading => "Unloading",
            ModuleState::Loading => "Loading",
            _ => "Live",
        }
    }
}

/// Which layout the module's memory sizes were read from (one per kernel era).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// 6.4+: `mem[MOD_TEXT ..]`, an array of `struct module_memory`.
    Mem,
    /// 4.5 – 6.3: `core_layout` and `init_layout` (`struct module_layout`), plus `data_layout`
    /// where the architecture keeps data apart (`CONFIG_ARCH_WANTS_MODULES_DATA_IN_VMALLOC`).
    CoreLayout,
    /// Before 4.5: `core_size`, `init_size`, `module_core`.
    CoreSize,
}

/// One loaded module.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Module {
    /// `struct module`'s address.
    #[serde(serialize_with = "crate::addr::ser_hex")]
    pub address: u64,
    /// `name`, raw bytes (escaped in text and JSON).
    #[serde(serialize_with = "ser_bytes")]
    pub name: Vec<u8>,
    pub state: ModuleState,
    /// What `/proc/modules` prints: every memory region, core and init.
    pub size: u64,
    /// What `/sys/module/<name>/coresize` holds and `lsmod` prints: the core regions only
    /// (equal to `size` once the module is live, as the kernel frees the init regions then).
    pub core_size: u64,
    /// `module_refcount()`: `refcnt - MODULE_REF_BASE`; `None` on a kernel built without
    /// `CONFIG_MODULE_UNLOAD` (which prints `-`).
    pub refcount: Option<i64>,
    /// The modules using this one (`source_list`), in list order.
    #[serde(serialize_with = "ser_bytes_vec")]
    pub users: Vec<Vec<u8>>,
    /// `init && !exit`: the module can never be unloaded (`[permanent]`).
    pub permanent: bool,
    /// The core text base (`mem[MOD_TEXT].base`, `core_layout.base`, `module_core`).
    #[serde(serialize_with = "crate::addr::ser_hex")]
    pub base: u64,
    /// `taints`, the module's own taint bits.
    pub taints: u64,
    /// The letters `module_flags()` prints for them (`OE`): the kernel's `taint_flags[]`
    /// entries marked `module`, in table order.
    pub taint_letters: String,
    #[serde(serialize_with = "ser_opt_bytes")]
    pub version: Option<Vec<u8>>,
    #[serde(serialize_with = "ser_opt_bytes")]
    pub srcversion: Option<Vec<u8>>,
}

/// A module that could not be read whole: left out of the text files, listed in the JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Unreadable {
    #[serde(serialize_with = "crate::addr::ser_hex")]
    pub address: u64,
    #[serde(serialize_with = "ser_opt_bytes")]
    pub name: Option<Vec<u8>>,
    pub code: String,
    pub error: String,
}

/// `modules.json`, and the source of both text files.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Modules {
    /// In `modules` list order (newest first), which is `/proc/modules`' order.
    pub modules: Vec<Module>,
    /// Whether the kernel was built with `CONFIG_MODULE_UNLOAD` (reference counts and users).
    pub unload: bool,
    pub layout: Option<Layout>,
    /// `kernel` (the dump's `taint_flags[]`) or `documented` (the built-in table).
    pub taint_table: &'static str,
    /// Modules whose `struct module` was unreadable.
    pub unreadable: Vec<Unreadable>,
    /// Set when the list walk stopped early (an unreadable or corrupt node, the walk cap): the
    /// modules above are then those reachable on both sides of the break.
    pub list_error: Option<String>,
}

fn ser_bytes<S: serde::Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&text_name(b))
}

fn ser_opt_bytes<S: serde::Serializer>(b: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    match b {
        Some(b) => s.serialize_some(&text_name(b)),
        None => s.serialize_none(),
    }
}

fn ser_bytes_vec<S: serde::Serializer>(v: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(|b| text_name(b)))
}

/// A name from the dump as one whitespace-free token: printable ASCII is kept, a backslash is
/// doubled, every other byte (space, newline, comma, non-ASCII) becomes `\xNN`. The kernel only
/// loads modules whose names are plain (`[A-Za-z0-9_-]`), so a real name passes unchanged; a
/// corrupt one cannot split a line or add a field.
pub fn text_name(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len());
    for &c in b {
        match c {
            b'\\' => out.push_str("\\\\"),
            b',' => out.push_str("\\x2c"),
            0x21..=0x7e => out.push(char::from(c)),
            _ => out.push_str(&format!("\\x{c:02x}")),
        }
    }
    out
}
