//! Reads [`Meminfo`] from the kernel's memory counters through [`KernelAccess`].
//!
//! Each line is computed the way `meminfo_proc_show()` (fs/proc/meminfo.c) computes it, from the
//! same kernel variables, so the file is what `cat /proc/meminfo` would have printed at the
//! moment of the crash:
//!
//! - `global_zone_page_state()` / `global_node_page_state()` read the global atomics
//!   `vm_zone_stat[]` / `vm_node_stat[]` (`vm_stat[]` before 4.8) only, clamped at zero; the
//!   per-CPU deltas not yet folded in are ignored, by the live file as here. An item's index and
//!   which of the two arrays holds it come from the debug info's enumerators (`NR_FILE_PAGES`
//!   in `enum node_stat_item`, …), because items moved between them across versions
//!   (`NR_KERNEL_STACK_KB` and `NR_PAGETABLE` became node items in 5.9 and 5.11).
//! - `MemTotal` is `_totalram_pages` (`totalram_pages` before 5.0); `MemAvailable` is
//!   `si_mem_available()` (mm/page_alloc.c, mm/show_mem.c in 6.x): free pages minus
//!   `totalreserve_pages`, plus the file LRU and the reclaimable slab each less the smaller of
//!   half of it and the sum of every zone's low watermark (`_watermark[WMARK_LOW]` plus
//!   `watermark_boost`).
//! - `Buffers` is `nr_blockdev_pages()`: the page-cache pages of every block-device inode on
//!   `blockdev_superblock->s_inodes` (`all_bdevs` before 5.9's rework); `Cached` is
//!   `NR_FILE_PAGES` less the swap cache and the buffers.
//! - `SwapTotal`/`SwapFree` are `si_swapinfo()`: `total_swap_pages` and `nr_swap_pages` plus the
//!   pages of swap areas being switched off; `SwapCached` is `NR_SWAPCACHE` (5.14+).
//! - `Committed_AS` is `percpu_counter_sum_positive(&vm_committed_as)` (5.8+), summed here over
//!   every possible CPU: a panic takes the other CPUs out of the online mask without folding
//!   their counters, and a CPU that went offline earlier had its share folded back to zero.
//! - `CommitLimit` is `vm_commit_limit()`; the huge-page lines are `hugetlb_report_meminfo()`
//!   over `hstates[0 .. hugetlb_max_hstate]`; `DirectMap*` is x86's or s390x's
//!   `direct_pages_count[]`.
//! - `VmallocTotal` is `VMALLOC_END - VMALLOC_START`: from VMCOREINFO where the architecture
//!   exports them (arm64 since 6.0), else x86_64's `VMALLOC_SIZE_TB` (32 TiB with 4-level
//!   paging, 12800 TiB with 5-level) minus one byte, as its `VMALLOC_END` is inclusive. An arm64
//!   kernel before 6.0 (5.10) keeps the range in `pgtable.h` macros only, whose formula changed
//!   between releases: the line is left out, with the reason.
//!
//! Which lines exist follows the kernel's configuration, probed: `Zswap` with
//! `zswap_stored_pages`, `HardwareCorrupted` with `num_poisoned_pages`, the THP lines with
//! `transparent_hugepage_flags`, `CmaTotal` with `cma_areas`, `SecPageTables`,
//! `ShadowCallStack`, `Unaccepted`, `Balloon` and `KReclaimable` with their enumerators. A line
//! the kernel prints but the dump cannot determine (unreadable memory, an allocator this plugin
//! does not walk) is left out of the file and listed with its reason.

use std::collections::BTreeMap;

use super::record::{LeftOut, Line, Meminfo, ORDER, format_of};
use crate::kernel::{AResult, AccessError, KernelAccess, KernelAccessExt};

/// A line's value in kB (or a count), or why it cannot be given.
type V = Result<u64, String>;

pub struct Collected {
    pub meminfo: Meminfo,
    pub errors: Vec<AccessError>,
}

/// `VMALLOC_SIZE_TB_L4` and `VMALLOC_SIZE_TB_L5` (arch/x86/include/asm/pgtable_64_types.h).
const X86_VMALLOC_TB: [u64; 2] = [32, 12800];

struct Reader<'a, K: KernelAccess> {
    k: &'a K,
    errors: Vec<AccessError>,
    page_size: u64,
    zone_stat: Option<K::Obj>,
    node_stat: Option<K::Obj>,
}

impl<'a, K: KernelAccess> Reader<'a, K> {
    /// Keeps the error for the manifest and turns it into a reason.
    fn fail(&mut self, what: &str, e: AccessError) -> String {
        let reason = format!("{what}: {e}");
        self.errors.push(e);
        reason
    }

    fn kb(&self, pages: u64) -> u64 {
        pages.saturating_mul(self.page_size) / 1024
    }

    /// A global integer, an `atomic_t`/`atomic_long_t` read through its `counter`. `None`:
    /// this kernel has no such variable.
    fn global(&mut self, name: &str) -> Option<Result<i64, String>> {
        // the symbol table answers "not in this kernel" at once; the debug info, for a name it
        // lacks, only after indexing everything
        if !self.has_symbol(name) {
            return None;
        }
        let r: AResult<Option<i64>> = (|| {
            let Some(v) = self.k.var(name)? else {
                return Ok(None);
            };
            counter_or_int(self.k, &v).map(Some)
        })();
        match r {
            Ok(v) => v.map(Ok),
            Err(e) => Some(Err(self.fail(name, e))),
        }
    }

    /// A global that must be there for a line: its absence is a reason too.
    fn need(&mut self, name: &str) -> Result<i64, String> {
        self.global(name)
            .unwrap_or_else(|| Err(format!("this kernel has no {name}")))
    }

    fn has_symbol(&mut self, name: &str) -> bool {
        match self.k.symbol(name) {
            Ok(s) => s.is_some(),
            Err(e) => {
                self.errors.push(e);
                false
            }
        }
    }

    /// `global_node_page_state()` or `global_zone_page_state()` of an item, in pages, clamped
    /// at zero like the kernel's readers. `None`: neither enum has the item on this kernel.
    fn stat(&mut self, item: &str) -> Option<V> {
        for (enum_name, node) in [("node_stat_item", true), ("zone_stat_item", false)] {
            let idx = match self.k.enumerator_in(enum_name, item) {
                Ok(Some(i)) => i,
                Ok(None) => continue,
                Err(e) => return Some(Err(self.fail(item, e))),
            };
            let arr = if node {
                self.node_stat.clone()
            } else {
                self.zone_stat.clone()
            };
            let Some(arr) = arr else {
                return Some(Err(format!(
                    "{item} is a {enum_name} but the kernel's counter array is missing"
                )));
            };
            let r: AResult<i64> = (|| {
                let len = self.k.array_len(&arr)?.unwrap_or(0);
                if idx < 0 || idx as u64 >= len {
                    return Err(AccessError::new(
                        "corrupt",
                        format!("{item} = {idx} is outside the {len}-entry counter array"),
                    ));
                }
                let e = self.k.index(&arr, idx as u64)?;
                counter_or_int(self.k, &e)
            })();
            return Some(match r {
                Ok(v) => Ok(v.max(0) as u64),
                Err(e) => Err(self.fail(item, e)),
            });
        }
        None
    }

    /// A counter the line needs: absent means a reason.
    fn stat_need(&mut self, item: &str) -> V {
        self.stat(item)
            .unwrap_or_else(|| Err(format!("this kernel has no {item} counter")))
    }

    /// The first item name this kernel has (renamed counters: new name first).
    fn stat_any(&mut self, items: &[&str]) -> V {
        for i in items {
            if let Some(v) = self.stat(i) {
                return v;
            }
        }
        Err(format!("this kernel has none of {}", items.join(", ")))
    }
}

/// The value of an `atomic_t`/`atomic_long_t` (its `counter`) or of a plain integer: which one
/// a variable is changed across versions (`totalram_pages` became `_totalram_pages.counter`).
fn counter_or_int<K: KernelAccess>(k: &K, v: &K::Obj) -> AResult<i64> {
    match k.member(v, "counter") {
        Ok(Some(c)) => k.int(&c),
        Ok(None) => k.int(v),
        // a member asked of a scalar
        Err(e) if e.code == "wrong-type" => k.int(v),
        Err(e) => Err(e),
    }
}

fn add(a: &V, b: &V) -> V {
    Ok(a.clone()?.saturating_add(b.clone()?))
}

/// Reads every line this kernel prints.
pub fn collect<K: KernelAccess>(k: &K) -> Collected {
    let zone_stat = k
        .var("vm_zone_stat")
        .ok()
        .flatten()
        .or_else(|| k.var("vm_stat").ok().flatten());
    let node_stat = k.var("vm_node_stat").ok().flatten();
    let mut r = Reader {
        k,
        errors: Vec::new(),
        page_size: k.page_size().max(1024),
        zone_stat,
        node_stat,
    };
    let mut v: BTreeMap<&'static str, V> = BTreeMap::new();
    let mut notes = Vec::new();
    let kbv = |r: &Reader<'_, K>, x: &V| -> V { x.clone().map(|p| r.kb(p)) };

    // si_meminfo()
    let totalram: V = match r.global("_totalram_pages") {
        Some(t) => t.map(|t| t as u64),
        None => r.need("totalram_pages").map(|t| t as u64),
    };
    let freeram = r.stat_need("NR_FREE_PAGES");
    let lru: Vec<V> = [
        "NR_INACTIVE_ANON",
        "NR_ACTIVE_ANON",
        "NR_INACTIVE_FILE",
        "NR_ACTIVE_FILE",
        "NR_UNEVICTABLE",
    ]
    .iter()
    .map(|i| r.stat_need(i))
    .collect();
    let (inactive_anon, active_anon, inactive_file, active_file, unevictable) =
        (&lru[0], &lru[1], &lru[2], &lru[3], &lru[4]);
    let sreclaimable = r.stat_any(&["NR_SLAB_RECLAIMABLE_B", "NR_SLAB_RECLAIMABLE"]);
    let sunreclaim = r.stat_any(&["NR_SLAB_UNRECLAIMABLE_B", "NR_SLAB_UNRECLAIMABLE"]);
    let misc_reclaimable = r.stat("NR_KERNEL_MISC_RECLAIMABLE");
    let bufferram = buffers(&mut r);
    let swap = swapinfo(&mut r);
    let swapcache: V = match r.stat("NR_SWAPCACHE") {
        Some(s) => s,
        None => match &swap {
            Ok((total, _)) if *total == 0 => Ok(0),
            Ok(_) => Err(
                "before 5.14 the swap cache is counted per swap address space \
                          (swapper_spaces), which this plugin does not walk"
                    .into(),
            ),
            Err(e) => Err(e.clone()),
        },
    };
    let file_pages = r.stat_need("NR_FILE_PAGES");

    v.insert("MemTotal", kbv(&r, &totalram));
    v.insert("MemFree", kbv(&r, &freeram));
    let available = mem_available(
        &mut r,
        &freeram,
        active_file,
        inactive_file,
        &sreclaimable,
        misc_reclaimable.clone().unwrap_or(Ok(0)),
    );
    v.insert("MemAvailable", kbv(&r, &available));
    v.insert("Buffers", kbv(&r, &bufferram));
    let cached: V = (|| {
        let c = file_pages.clone()? as i64 - swapcache.clone()? as i64 - bufferram.clone()? as i64;
        Ok(c.max(0) as u64)
    })();
    v.insert("Cached", kbv(&r, &cached));
    v.insert("SwapCached", kbv(&r, &swapcache));
    v.insert("Active", kbv(&r, &add(active_anon, active_file)));
    v.insert("Inactive", kbv(&r, &add(inactive_anon, inactive_file)));
    v.insert("Active(anon)", kbv(&r, active_anon));
    v.insert("Inactive(anon)", kbv(&r, inactive_anon));
    v.insert("Active(file)", kbv(&r, active_file));
    v.insert("Inactive(file)", kbv(&r, inactive_file));
    v.insert("Unevictable", kbv(&r, unevictable));
    let mlock = r.stat_need("NR_MLOCK");
    v.insert("Mlocked", kbv(&r, &mlock));
    v.insert("SwapTotal", kbv(&r, &swap.clone().map(|s| s.0)));
    v.insert("SwapFree", kbv(&r, &swap.clone().map(|s| s.1)));
    if r.has_symbol("zswap_stored_pages") {
        let zs = zswap_kb(&mut r);
        v.insert("Zswap", zs);
        let stored = r.need("zswap_stored_pages").map(|p| p.max(0) as u64);
        v.insert("Zswapped", kbv(&r, &stored));
    }
    for (key, items) in [
        ("Dirty", &["NR_FILE_DIRTY"][..]),
        ("Writeback", &["NR_WRITEBACK"]),
        ("AnonPages", &["NR_ANON_MAPPED", "NR_ANON_PAGES"]),
        ("Mapped", &["NR_FILE_MAPPED"]),
        ("Shmem", &["NR_SHMEM"]),
    ] {
        let s = r.stat_any(items);
        v.insert(key, kbv(&r, &s));
    }
    if let Some(misc) = &misc_reclaimable {
        v.insert("KReclaimable", kbv(&r, &add(&sreclaimable, misc)));
    }
    v.insert("Slab", kbv(&r, &add(&sreclaimable, &sunreclaim)));
    v.insert("SReclaimable", kbv(&r, &sreclaimable));
    v.insert("SUnreclaim", kbv(&r, &sunreclaim));
    // already in kB
    v.insert("KernelStack", r.stat_need("NR_KERNEL_STACK_KB"));
    if let Some(scs) = r.stat("NR_KERNEL_SCS_KB") {
        v.insert("ShadowCallStack", scs);
    }
    let pt = r.stat_need("NR_PAGETABLE");
    v.insert("PageTables", kbv(&r, &pt));
    if let Some(sec) = r.stat("NR_SECONDARY_PAGETABLE") {
        v.insert("SecPageTables", kbv(&r, &sec));
    }
    // counters the kernel dropped print a constant 0 from then on
    for (key, item) in [
        ("NFS_Unstable", "NR_UNSTABLE_NFS"),
        ("Bounce", "NR_BOUNCE"),
        ("WritebackTmp", "NR_WRITEBACK_TEMP"),
    ] {
        let s = r.stat(item).unwrap_or(Ok(0));
        v.insert(key, kbv(&r, &s));
    }
    let huge = hugetlb(&mut r);
    let commit_limit = commit_limit(&mut r, &totalram, &huge);
    v.insert("CommitLimit", kbv(&r, &commit_limit));
    let committed = committed_as(&mut r, &mut notes);
    v.insert("Committed_AS", kbv(&r, &committed));
    v.insert("VmallocTotal", vmalloc_total_kb(&mut r));
    let vmalloc_used: V = match r.global("nr_vmalloc_pages") {
        Some(p) => p.map(|p| p.max(0) as u64),
        None => r.stat("NR_VMALLOC").unwrap_or_else(|| {
            Err("this kernel has neither nr_vmalloc_pages nor NR_VMALLOC".into())
        }),
    };
    v.insert("VmallocUsed", kbv(&r, &vmalloc_used));
    // get_vmalloc_info() is gone since 4.3: the kernel prints 0
    v.insert("VmallocChunk", Ok(0));
    let percpu: V = (|| {
        let pop = r.need("pcpu_nr_populated")?;
        let units = r.need("pcpu_nr_units")?;
        Ok((pop.max(0) as u64).saturating_mul(units.max(0) as u64))
    })();
    v.insert("Percpu", kbv(&r, &percpu));
    if let Some(done) = r.global("early_memtest_done") {
        match done {
            Ok(0) => {}
            Ok(_) => {
                let bad = r.need("early_memtest_bad_size").map(|b| {
                    let kb = b as u64 >> 10;
                    if b != 0 && kb == 0 { 1 } else { kb }
                });
                v.insert("EarlyMemtestBad", bad);
            }
            Err(e) => {
                v.insert("EarlyMemtestBad", Err(e));
            }
        }
    }
    if let Some(p) = r.global("num_poisoned_pages") {
        v.insert("HardwareCorrupted", kbv(&r, &p.map(|p| p.max(0) as u64)));
    }
    if r.has_symbol("transparent_hugepage_flags") {
        for (key, item) in [
            ("AnonHugePages", "NR_ANON_THPS"),
            ("ShmemHugePages", "NR_SHMEM_THPS"),
            ("ShmemPmdMapped", "NR_SHMEM_PMDMAPPED"),
            ("FileHugePages", "NR_FILE_THPS"),
            ("FilePmdMapped", "NR_FILE_PMDMAPPED"),
        ] {
            if let Some(s) = r.stat(item) {
                v.insert(key, kbv(&r, &s));
            }
        }
    }
    // `totalcma_pages` exists in every build; `cma_areas` only with CONFIG_CMA
    if r.has_symbol("cma_areas")
        && let Some(t) = r.global("totalcma_pages")
    {
        v.insert("CmaTotal", kbv(&r, &t.map(|t| t.max(0) as u64)));
        let free = r.stat_need("NR_FREE_CMA_PAGES");
        v.insert("CmaFree", kbv(&r, &free));
    }
    if let Some(u) = r.stat("NR_UNACCEPTED") {
        v.insert("Unaccepted", kbv(&r, &u));
    }
    if let Some(b) = r.stat("NR_BALLOON_PAGES") {
        v.insert("Balloon", kbv(&r, &b));
    }
    if let Some(h) = &huge {
        match h {
            Ok(h) => {
                if let Some(d) = &h.default {
                    v.insert("HugePages_Total", Ok(d.total));
                    v.insert("HugePages_Free", Ok(d.free));
                    v.insert("HugePages_Rsvd", Ok(d.rsvd));
                    v.insert("HugePages_Surp", Ok(d.surp));
                    v.insert("Hugepagesize", Ok(d.size_kb));
                }
                v.insert("Hugetlb", Ok(h.total_kb));
            }
            Err(e) => {
                let first = ORDER.iter().position(|k| *k == "HugePages_Total");
                let last = ORDER.iter().position(|k| *k == "Hugetlb");
                for key in &ORDER[first.unwrap_or(0)..=last.unwrap_or(0)] {
                    v.insert(key, Err(e.clone()));
                }
            }
        }
    }
    direct_map(&mut r, &mut v);

    let mut m = Meminfo {
        page_size: r.page_size,
        notes,
        ..Default::default()
    };
    for key in ORDER {
        match v.remove(key) {
            Some(Ok(value)) => m.lines.push(Line {
                key,
                value,
                unit: format_of(key).unit,
            }),
            Some(Err(reason)) => m.left_out.push(LeftOut { key, reason }),
            None => {}
        }
    }
    let mut errors = r.errors;
    errors.dedup_by(|a, b| a.to_string() == b.to_string());
    Collected { meminfo: m, errors }
}

/// `si_mem_available()`, in pages.
fn mem_available<K: KernelAccess>(
    r: &mut Reader<'_, K>,
    free: &V,
    active_file: &V,
    inactive_file: &V,
    sreclaimable: &V,
    misc: V,
) -> V {
    let wmark_low = wmark_low_sum(r)?;
    let reserve = r.need("totalreserve_pages")?.max(0);
    let mut available = free.clone()? as i64 - reserve;
    let mut pagecache = add(active_file, inactive_file)? as i64;
    pagecache -= (pagecache / 2).min(wmark_low);
    available += pagecache;
    let reclaimable = add(sreclaimable, &misc)? as i64;
    available += reclaimable - (reclaimable / 2).min(wmark_low);
    Ok(available.max(0) as u64)
}

/// The sum of every zone's low watermark (`low_wmark_pages()`), over every node's
/// `node_zones[]` (`node_data[]` on NUMA kernels, `contig_page_data` otherwise).
fn wmark_low_sum<K: KernelAccess>(r: &mut Reader<'_, K>) -> Result<i64, String> {
    let k = r.k;
    let res: AResult<Result<i64, String>> = (|| {
        let Some(low) = k.enumerator("WMARK_LOW")? else {
            return Ok(Err("this kernel has no WMARK_LOW".into()));
        };
        let mut pgdats = Vec::new();
        if let Some(nd) = k.var("node_data")? {
            let n = k.array_len(&nd)?.unwrap_or(0).min(1 << 12);
            for i in 0..n {
                if let Some(p) = k.deref(&k.index(&nd, i)?)? {
                    pgdats.push(p);
                }
            }
        } else if let Some(c) = k.var("contig_page_data")? {
            pgdats.push(c);
        } else {
            return Ok(Err(
                "this kernel has neither node_data nor contig_page_data".into(),
            ));
        }
        let mut sum = 0i64;
        for pg in &pgdats {
            let Some(zones) = k.member(pg, "node_zones")? else {
                return Ok(Err("pglist_data has no node_zones".into()));
            };
            let nz = k.array_len(&zones)?.unwrap_or(0).min(16);
            for z in 0..nz {
                let zone = k.index(&zones, z)?;
                // `_watermark` since 5.0 (watermark boosting), `watermark` before
                let Some((w, _)) = k.member_any(&zone, &["_watermark", "watermark"])? else {
                    return Ok(Err("struct zone has no watermark array".into()));
                };
                sum = sum.saturating_add(k.int(&k.index(&w, low as u64)?)?);
                sum = sum.saturating_add(k.int_at(&zone, "watermark_boost")?.unwrap_or(0));
            }
        }
        Ok(Ok(sum))
    })();
    match res {
        Ok(v) => v,
        Err(e) => Err(r.fail("zone watermarks", e)),
    }
}

/// `nr_blockdev_pages()`, in pages.
fn buffers<K: KernelAccess>(r: &mut Reader<'_, K>) -> V {
    let k = r.k;
    let res: AResult<V> = (|| {
        let mut total = 0u64;
        if let Some(sb) = k.var("blockdev_superblock")? {
            let Some(sb) = k.deref(&sb)? else {
                return Ok(Err("blockdev_superblock is NULL".into()));
            };
            let Some(head) = k.member(&sb, "s_inodes")? else {
                return Ok(Err("super_block has no s_inodes".into()));
            };
            for inode in k.list(&head, "struct inode", "i_sb_list")? {
                if let Some(mapping) = k.deref_at(&inode, "i_mapping")? {
                    total += k.int_at(&mapping, "nrpages")?.unwrap_or(0).max(0) as u64;
                }
            }
        } else if let Some(head) = k.var("all_bdevs")? {
            for bdev in k.list(&head, "struct block_device", "bd_list")? {
                if let Some(inode) = k.deref_at(&bdev, "bd_inode")?
                    && let Some(mapping) = k.deref_at(&inode, "i_mapping")?
                {
                    total += k.int_at(&mapping, "nrpages")?.unwrap_or(0).max(0) as u64;
                }
            }
        } else {
            return Ok(Err(
                "this kernel has neither blockdev_superblock nor all_bdevs".into(),
            ));
        }
        Ok(Ok(total))
    })();
    match res {
        Ok(v) => v,
        Err(e) => Err(r.fail("block device page cache", e)),
    }
}

/// `si_swapinfo()`: (total, free) in pages. A kernel without swap support prints zeros.
fn swapinfo<K: KernelAccess>(r: &mut Reader<'_, K>) -> Result<(u64, u64), String> {
    let Some(total) = r.global("total_swap_pages") else {
        return Ok((0, 0));
    };
    let total = total?.max(0) as u64;
    let free = r.need("nr_swap_pages")?.max(0) as u64;
    // pages of areas being switched off (SWP_USED without SWP_WRITEOK) count as both
    let k = r.k;
    let res: AResult<Result<u64, String>> = (|| {
        let n = k.var_int("nr_swapfiles")?.unwrap_or(0).clamp(0, 64) as u64;
        if n == 0 {
            return Ok(Ok(0));
        }
        let (Some(used), Some(writeok)) = (k.enumerator("SWP_USED")?, k.enumerator("SWP_WRITEOK")?)
        else {
            return Ok(Ok(0));
        };
        let Some(arr) = k.var("swap_info")? else {
            return Ok(Ok(0));
        };
        let mut extra = 0u64;
        for i in 0..n.min(k.array_len(&arr)?.unwrap_or(0)) {
            let Some(si) = k.deref(&k.index(&arr, i)?)? else {
                continue;
            };
            let flags = k.int_at(&si, "flags")?.unwrap_or(0);
            if flags & used != 0 && flags & writeok == 0 {
                extra += k.int_at(&si, "inuse_pages")?.unwrap_or(0).max(0) as u64;
            }
        }
        Ok(Ok(extra))
    })();
    let extra = match res {
        Ok(v) => v?,
        Err(e) => return Err(r.fail("swap areas", e)),
    };
    Ok((total + extra, free + extra))
}

/// `Zswap`, in kB: `zswap_pool_total_size` (bytes) where the kernel keeps it; 6.11+ asks each
/// pool's allocator instead, which this plugin can answer only when there is no pool.
fn zswap_kb<K: KernelAccess>(r: &mut Reader<'_, K>) -> V {
    if let Some(b) = r.global("zswap_pool_total_size") {
        return b.map(|b| b as u64 >> 10);
    }
    let k = r.k;
    let res: AResult<V> = (|| {
        let Some(head) = k.var("zswap_pools")? else {
            return Ok(Err(
                "this kernel has neither zswap_pool_total_size nor zswap_pools".into(),
            ));
        };
        if k.list(&head, "struct zswap_pool", "list")?.is_empty() {
            Ok(Ok(0))
        } else {
            Ok(Err(
                "the zswap pools' sizes are kept by their zpool allocators \
                    (zsmalloc, zbud, z3fold), which this plugin does not walk"
                    .into(),
            ))
        }
    })();
    match res {
        Ok(v) => v,
        Err(e) => Err(r.fail("zswap_pools", e)),
    }
}

/// The default huge-page size's counters.
struct DefaultHstate {
    total: u64,
    free: u64,
    rsvd: u64,
    surp: u64,
    size_kb: u64,
}

struct Huge {
    default: Option<DefaultHstate>,
    /// `Hugetlb`: every size's pages, in kB.
    total_kb: u64,
    /// `hugetlb_total_pages()`: every size's pages, in base pages.
    total_pages: u64,
}

/// `hugetlb_report_meminfo()`; `None` without `CONFIG_HUGETLB_PAGE` (no `hstates`) or without
/// a registered huge-page size.
fn hugetlb<K: KernelAccess>(r: &mut Reader<'_, K>) -> Option<Result<Huge, String>> {
    let k = r.k;
    let page_size = r.page_size;
    let res: AResult<Option<Result<Huge, String>>> = (|| {
        let Some(hstates) = k.var("hstates")? else {
            return Ok(None);
        };
        let n = k.var_int("hugetlb_max_hstate")?.unwrap_or(0).max(0) as u64;
        // hugetlb_init() registers the default size unless the machine has no huge pages
        // (`hugepages_supported()`: s390x without EDAT1, as under QEMU TCG), and then
        // hugetlb_report_meminfo() prints no line at all
        if n == 0 {
            return Ok(None);
        }
        let n = n.min(k.array_len(&hstates)?.unwrap_or(0));
        let default_idx = k.var_int("default_hstate_idx")?.unwrap_or(0).max(0) as u64;
        let mut out = Huge {
            default: None,
            total_kb: 0,
            total_pages: 0,
        };
        for i in 0..n {
            let h = k.index(&hstates, i)?;
            let order = k.int_at(&h, "order")?.unwrap_or(0).clamp(0, 40) as u32;
            let count = k.int_at(&h, "nr_huge_pages")?.unwrap_or(0).max(0) as u64;
            let size = page_size << order;
            out.total_kb = out
                .total_kb
                .saturating_add(size.saturating_mul(count) / 1024);
            out.total_pages = out.total_pages.saturating_add(count << order);
            if i == default_idx {
                let get =
                    |m: &str| -> AResult<u64> { Ok(k.int_at(&h, m)?.unwrap_or(0).max(0) as u64) };
                out.default = Some(DefaultHstate {
                    total: count,
                    free: get("free_huge_pages")?,
                    rsvd: get("resv_huge_pages")?,
                    surp: get("surplus_huge_pages")?,
                    size_kb: size / 1024,
                });
            }
        }
        Ok(Some(Ok(out)))
    })();
    match res {
        Ok(v) => v,
        Err(e) => Some(Err(r.fail("hstates", e))),
    }
}

/// `vm_commit_limit()`, in pages.
fn commit_limit<K: KernelAccess>(
    r: &mut Reader<'_, K>,
    totalram: &V,
    huge: &Option<Result<Huge, String>>,
) -> V {
    let kbytes = r.global("sysctl_overcommit_kbytes").unwrap_or(Ok(0))?;
    let swap = match r.global("total_swap_pages") {
        Some(s) => s?.max(0) as u64,
        None => 0,
    };
    let allowed = if kbytes > 0 {
        kbytes as u64 * 1024 / r.page_size
    } else {
        let ratio = r.need("sysctl_overcommit_ratio")?.max(0) as u64;
        let huge_pages = match huge {
            Some(Ok(h)) => h.total_pages,
            Some(Err(e)) => return Err(e.clone()),
            None => 0,
        };
        totalram.clone()?.saturating_sub(huge_pages) * ratio / 100
    };
    Ok(allowed + swap)
}

/// `percpu_counter_sum_positive(&vm_committed_as)`, in pages.
fn committed_as<K: KernelAccess>(r: &mut Reader<'_, K>, notes: &mut Vec<String>) -> V {
    let k = r.k;
    let res: AResult<V> = (|| {
        let Some(c) = k.var("vm_committed_as")? else {
            return Ok(Err("this kernel has no vm_committed_as".into()));
        };
        let mut sum = k.int_at(&c, "count")?.unwrap_or(0);
        // uniprocessor kernels have no per-CPU part
        if let Some(per) = k.deref_at(&c, "counters")? {
            let Some(cpus) = k.cpumask("__cpu_possible_mask")? else {
                return Ok(Err("the possible-CPU mask is missing".into()));
            };
            for cpu in &cpus {
                sum = sum.saturating_add(k.int(&k.per_cpu(&per, *cpu)?)?);
            }
            notes.push(format!(
                "Committed_AS sums vm_committed_as over the {} possible CPUs: the panic took \
                 the others out of the online mask without folding their counts",
                cpus.len()
            ));
        }
        Ok(Ok(sum.max(0) as u64))
    })();
    match res {
        Ok(v) => v,
        Err(e) => Err(r.fail("vm_committed_as", e)),
    }
}

/// `VMALLOC_TOTAL >> 10`: from VMCOREINFO (arm64), x86_64's layout, or s390x's variables.
fn vmalloc_total_kb<K: KernelAccess>(r: &mut Reader<'_, K>) -> V {
    let k = r.k;
    if let (Some(start), Some(end)) = (
        k.vmcoreinfo_u64("NUMBER(VMALLOC_START)"),
        k.vmcoreinfo_u64("NUMBER(VMALLOC_END)"),
    ) {
        return Ok(end.wrapping_sub(start) >> 10);
    }
    if r.has_symbol("vmalloc_base") {
        let l5 = match k.vmcoreinfo_u64("NUMBER(pgtable_l5_enabled)") {
            Some(v) => v != 0,
            None => match r.global("__pgtable_l5_enabled") {
                Some(v) => v? != 0,
                None => false,
            },
        };
        let tb = X86_VMALLOC_TB[usize::from(l5)];
        return Ok(((tb << 40) - 1) >> 10);
    }
    // s390x sets the bounds at boot in variables of those names (arch/s390/boot/startup.c)
    if let (Some(start), Some(end)) = (r.global("VMALLOC_START"), r.global("VMALLOC_END")) {
        return Ok((end? as u64).wrapping_sub(start? as u64) >> 10);
    }
    Err(
        "neither VMCOREINFO's VMALLOC_START/VMALLOC_END, x86_64's vmalloc_base nor s390x's \
         VMALLOC_START/VMALLOC_END variables"
            .into(),
    )
}

/// `arch_report_meminfo()`: x86's `DirectMap4k`, `DirectMap2M`, and `DirectMap1G` when the
/// kernel maps memory with 1 GiB pages (`direct_gbpages`); s390x's `DirectMap4k`, `DirectMap1M`
/// and `DirectMap2G` (arch/s390/mm/pageattr.c: `direct_pages_count[]`, `atomic_long_t`s indexed
/// by `PG_DIRECT_MAP_4K`/`_1M`/`_2G`).
fn direct_map<K: KernelAccess>(r: &mut Reader<'_, K>, v: &mut BTreeMap<&'static str, V>) {
    let k = r.k;
    let res: AResult<Option<Vec<(&'static str, V)>>> = (|| {
        let Some(counts) = k.var("direct_pages_count")? else {
            return Ok(None);
        };
        // x86's `enum pg_level` first, asked by its type (an indexed lookup): the s390x
        // enumerators belong to an anonymous enum, and a search for an enumerator a kernel does
        // not have walks all of its DWARF (0.6 s on x86_64 6.1)
        let x86 = (
            k.enumerator_in("pg_level", "PG_LEVEL_4K")?,
            k.enumerator_in("pg_level", "PG_LEVEL_2M")?,
            k.enumerator_in("pg_level", "PG_LEVEL_1G")?,
        );
        let (Some(l4k), Some(l2m), Some(l1g)) = x86 else {
            let (Some(l4k), Some(l1m), Some(l2g)) = (
                k.enumerator("PG_DIRECT_MAP_4K")?,
                k.enumerator("PG_DIRECT_MAP_1M")?,
                k.enumerator("PG_DIRECT_MAP_2G")?,
            ) else {
                return Ok(None);
            };
            let at = |i: i64| -> AResult<u64> {
                Ok(counter_or_int(k, &k.index(&counts, i as u64)?)?.max(0) as u64)
            };
            return Ok(Some(vec![
                ("DirectMap4k", Ok(at(l4k)? << 2)),
                ("DirectMap1M", Ok(at(l1m)? << 10)),
                ("DirectMap2G", Ok(at(l2g)? << 21)),
            ]));
        };
        let at =
            |i: i64| -> AResult<u64> { Ok(k.int(&k.index(&counts, i as u64)?)?.max(0) as u64) };
        let mut out = vec![
            ("DirectMap4k", Ok(at(l4k)? << 2)),
            ("DirectMap2M", Ok(at(l2m)? << 11)),
        ];
        if k.var_int("direct_gbpages")?.unwrap_or(0) != 0 {
            out.push(("DirectMap1G", Ok(at(l1g)? << 20)));
        }
        Ok(Some(out))
    })();
    match res {
        Ok(Some(lines)) => v.extend(lines),
        Ok(None) => {}
        Err(e) => {
            let reason = r.fail("direct_pages_count", e);
            v.insert("DirectMap4k", Err(reason.clone()));
            v.insert("DirectMap2M", Err(reason));
        }
    }
}
