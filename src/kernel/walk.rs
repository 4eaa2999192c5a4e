//! Walkers for the kernel's intrusive containers: `list_head`, `hlist_head`, `rb_root`, and the
//! XArray (`struct xarray`, which also backs the IDR).
//!
//! A dump may catch a list mid-update or hold corrupt pointers, so every walk takes an iteration
//! cap and keeps the set of nodes it has visited: a node seen twice (other than the list head
//! closing the circle) is reported as [`KernelError::Corrupt`], never looped over.
//!
//! Member offsets (`list_head.next`, `rb_node.rb_left`, …) come from the debuginfo when it
//! describes them; the layouts have been stable since Linux 2.6, which the fallbacks encode.
//!
//! ## The XArray (include/linux/xarray.h, Linux 4.20+)
//!
//! `struct xarray` holds one pointer, `xa_head`. An entry's two low bits say what it is: `00` a
//! pointer stored by the user, `x1` a value entry (an integer, never a pointer), `10` an
//! *internal* entry. Internal entries above 4096 are tree nodes (`xa_is_node()`): the node
//! (`struct xa_node`) is at the entry minus 2 (`xa_to_node()`). The small internal entries are
//! bookkeeping, never user data: sibling entries (`xa_mk_internal(0..62)`), the retry entry
//! (`xa_mk_internal(256)`) and the zero entry (`xa_mk_internal(257)`, what an IDR holds for an
//! id allocated with a NULL pointer). A node's `shift` says how many index bits each of its
//! `slots[XA_CHUNK_SIZE]` covers (a multiple of `XA_CHUNK_SHIFT`, 6 unless `CONFIG_BASE_SMALL`,
//! where it is 4; the slot count is read from the debuginfo), so slot `i` of a node covering
//! indices from `base` holds index `base + (i << shift)`, and a leaf node has shift 0. A head
//! that is a plain pointer is the single entry at index 0.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::addr::VirtAddr;
use crate::kernel::{Kernel, KernelError, Object};

/// The default iteration cap: more nodes than any sane kernel list holds.
pub const DEFAULT_WALK_CAP: usize = 1 << 20;

impl Kernel {
    fn member_offset_or(&self, ty: &str, member: &str, fallback: u64) -> u64 {
        self.offset_of(ty, member).unwrap_or(fallback)
    }

    /// The nodes of a circular `list_head` list, excluding the head itself, in `next` order.
    /// `head` is the address of the `struct list_head` that anchors the list.
    pub fn list_nodes(&self, head: VirtAddr, cap: usize) -> Result<Vec<VirtAddr>, KernelError> {
        let next_off = self.member_offset_or("struct list_head", "next", 0);
        let mut seen = HashSet::new();
        let (nodes, err) = self.walk_links(head, next_off, cap, &mut seen);
        match err {
            Some(e) => Err(e),
            None => Ok(nodes),
        }
    }

    /// Like [`Kernel::list_nodes`], but a broken link does not lose the rest of the list.
    ///
    /// Filtered dumps and dumps taken mid-update break lists: one node's page may be excluded
    /// (makedumpfile misclassifying a slab page on a kernel newer than it knows), or a pointer
    /// may be wild. Because the list is circular, the nodes past the break are still reachable
    /// backwards from the head through `prev`. So when the forward walk fails, this walks
    /// backwards until it meets a node already seen, the head, or a second failure, and returns
    /// every readable node it found in list order (the forward part, then the backward part
    /// reversed), with the error that broke the forward walk. The node whose links could not be
    /// read is left out (the error names it). A timeout is never salvaged around.
    pub fn list_nodes_salvaged(
        &self,
        head: VirtAddr,
        cap: usize,
    ) -> (Vec<VirtAddr>, Option<KernelError>) {
        let next_off = self.member_offset_or("struct list_head", "next", 0);
        let prev_off = self.member_offset_or("struct list_head", "prev", 8);
        let mut seen = HashSet::new();
        let (mut nodes, err) = self.walk_links(head, next_off, cap, &mut seen);
        let Some(err) = err else {
            return (nodes, None);
        };
        if matches!(err, KernelError::TimedOut) {
            return (nodes, Some(err));
        }
        let room = cap.saturating_sub(nodes.len());
        let mut back_seen = seen.clone();
        let (mut back, _) = self.walk_links(head, prev_off, room, &mut back_seen);
        // the backward walk stops with a "cycle" error when it reaches the forward part: only
        // the nodes before that point are new
        back.retain(|n| !seen.contains(n));
        back.reverse();
        nodes.extend(back);
        (nodes, Some(err))
    }

    /// Follows the link at `link_off` from `head` until it returns to `head`, collecting nodes.
    /// Stops at the first problem (unreadable link, NULL, a node seen before, the cap) and
    /// returns what it collected with that problem.
    fn walk_links(
        &self,
        head: VirtAddr,
        link_off: u64,
        cap: usize,
        seen: &mut HashSet<VirtAddr>,
    ) -> (Vec<VirtAddr>, Option<KernelError>) {
        let mut out = Vec::new();
        let mut cur = match self.read_ptr(head.add(link_off)) {
            Ok(p) => p,
            Err(e) => return (out, Some(e)),
        };
        while cur != head {
            if cur.0 == 0 {
                let e = KernelError::Corrupt(format!(
                    "NULL link in the list at {head} after {} nodes",
                    out.len()
                ));
                return (out, Some(e));
            }
            if !seen.insert(cur) {
                let e = KernelError::Corrupt(format!(
                    "cycle in the list at {head}: node {cur} seen twice"
                ));
                return (out, Some(e));
            }
            if out.len() >= cap {
                let e = KernelError::Corrupt(format!("list at {head} has more than {cap} nodes"));
                return (out, Some(e));
            }
            // a node whose own link cannot be read is where the list breaks, not an entry
            // (its memory is not in the dump); the error names its address
            let next = match self.read_ptr(cur.add(link_off)) {
                Ok(p) => p,
                Err(e) => return (out, Some(e)),
            };
            out.push(cur);
            cur = next;
        }
        (out, None)
    }

    /// `container_of` for each node: the `type_name` objects whose `member` is at those nodes.
    fn entries_of(
        &self,
        nodes: Vec<VirtAddr>,
        type_name: &str,
        member: &str,
    ) -> Result<Vec<Object<'_>>, KernelError> {
        let ty = self.find_type(type_name)?;
        let off = self.object(VirtAddr(0), ty).member(member)?.address().0;
        Ok(nodes
            .into_iter()
            .map(|n| self.object(VirtAddr(n.0.wrapping_sub(off)), ty))
            .collect())
    }

    /// `list_for_each_entry`: the `type_name` objects whose `member` (a `list_head`, possibly
    /// a dotted path) is linked into the list anchored at `head`.
    pub fn list_entries(
        &self,
        head: VirtAddr,
        type_name: &str,
        member: &str,
        cap: usize,
    ) -> Result<Vec<Object<'_>>, KernelError> {
        let nodes = self.list_nodes(head, cap)?;
        self.entries_of(nodes, type_name, member)
    }

    /// [`Kernel::list_entries`] over [`Kernel::list_nodes_salvaged`]: the entries found on
    /// both sides of a broken link, and the error that broke it.
    pub fn list_entries_salvaged(
        &self,
        head: VirtAddr,
        type_name: &str,
        member: &str,
        cap: usize,
    ) -> Result<(Vec<Object<'_>>, Option<KernelError>), KernelError> {
        let (nodes, err) = self.list_nodes_salvaged(head, cap);
        Ok((self.entries_of(nodes, type_name, member)?, err))
    }

    /// The nodes of an `hlist_head` list (NULL-terminated), in order.
    pub fn hlist_nodes(&self, head: VirtAddr, cap: usize) -> Result<Vec<VirtAddr>, KernelError> {
        let first_off = self.member_offset_or("struct hlist_head", "first", 0);
        let next_off = self.member_offset_or("struct hlist_node", "next", 0);
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        let mut cur = self.read_ptr(head.add(first_off))?;
        while cur.0 != 0 {
            if !seen.insert(cur) {
                return Err(KernelError::Corrupt(format!(
                    "cycle in the hlist at {head}: node {cur} seen twice"
                )));
            }
            if out.len() >= cap {
                return Err(KernelError::Corrupt(format!(
                    "hlist at {head} has more than {cap} nodes"
                )));
            }
            out.push(cur);
            cur = self.read_ptr(cur.add(next_off))?;
        }
        Ok(out)
    }

    /// `hlist_for_each_entry`.
    pub fn hlist_entries(
        &self,
        head: VirtAddr,
        type_name: &str,
        member: &str,
        cap: usize,
    ) -> Result<Vec<Object<'_>>, KernelError> {
        let nodes = self.hlist_nodes(head, cap)?;
        self.entries_of(nodes, type_name, member)
    }

    /// The nodes of a red-black tree in key order (in-order traversal). `root` is the address of
    /// a `struct rb_root` (for an `rb_root_cached`, pass the address of its `rb_root` member).
    pub fn rb_nodes(&self, root: VirtAddr, cap: usize) -> Result<Vec<VirtAddr>, KernelError> {
        let node_off = self.member_offset_or("struct rb_root", "rb_node", 0);
        let right_off = self.member_offset_or("struct rb_node", "rb_right", 8);
        let left_off = self.member_offset_or("struct rb_node", "rb_left", 16);
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        let mut stack: Vec<VirtAddr> = Vec::new();
        let mut cur = self.read_ptr(root.add(node_off))?;
        loop {
            while cur.0 != 0 {
                if !seen.insert(cur) {
                    return Err(KernelError::Corrupt(format!(
                        "cycle in the rb-tree at {root}: node {cur} seen twice"
                    )));
                }
                if seen.len() > cap {
                    return Err(KernelError::Corrupt(format!(
                        "rb-tree at {root} has more than {cap} nodes"
                    )));
                }
                stack.push(cur);
                cur = self.read_ptr(cur.add(left_off))?;
            }
            let Some(n) = stack.pop() else { break };
            out.push(n);
            cur = self.read_ptr(n.add(right_off))?;
        }
        Ok(out)
    }

    /// `rbtree_postorder`-free entry walk: the `type_name` objects whose `member` (an
    /// `rb_node`) is in the tree, in key order.
    pub fn rb_entries(
        &self,
        root: VirtAddr,
        type_name: &str,
        member: &str,
        cap: usize,
    ) -> Result<Vec<Object<'_>>, KernelError> {
        let nodes = self.rb_nodes(root, cap)?;
        self.entries_of(nodes, type_name, member)
    }
}

/// What [`Kernel::list_ring`] found of a circular `list_head` list.
#[derive(Debug, Default)]
pub struct ListRing {
    /// The nodes whose links could be read (the head excluded), in list order as far as the
    /// links tell it: from the head forwards, across a break when the node after it names the
    /// same unreadable node as its `prev`; segments the links cannot place follow, each in its
    /// own order, the one starting at the lowest address first.
    pub nodes: Vec<VirtAddr>,
    /// Nodes the list points at whose links could not be read, each with why (its page is not
    /// in the dump, it is not mapped). Sorted by address.
    pub broken: Vec<(VirtAddr, KernelError)>,
    /// Other problems: the head unreadable, NULL links, a cycle that avoids the head, the cap.
    pub errors: Vec<KernelError>,
}

/// A node's `next` and `prev`.
type Links = (VirtAddr, VirtAddr);

impl Kernel {
    /// Every node of the circular list anchored at `head` that can be reached, however many
    /// breaks it has.
    ///
    /// [`Kernel::list_nodes_salvaged`] reaches the nodes before the first break (forwards from
    /// the head) and after the last (backwards); the nodes between two breaks are reachable only
    /// from inside. `seeds` are nodes known, from another structure, to be on this list: from
    /// each one not reached yet the walk goes forwards and backwards until it meets the head, a
    /// node already reached, or a break. Links are read only from pages the dump holds
    /// ([`Kernel::check_dumped`]), so a filtered page is a break, never a list of zeros. The
    /// number of nodes is capped by `cap`; every node is visited once. Fails only on the
    /// deadline ([`KernelError::TimedOut`]); everything else is reported in the result.
    pub fn list_ring(
        &self,
        head: VirtAddr,
        seeds: &[VirtAddr],
        cap: usize,
    ) -> Result<ListRing, KernelError> {
        let next_off = self.member_offset_or("struct list_head", "next", 0);
        let prev_off = self.member_offset_or("struct list_head", "prev", 8);
        let mut r = RingWalk {
            k: self,
            head,
            next_off,
            prev_off,
            cap,
            links: HashMap::new(),
            broken: BTreeMap::new(),
            errors: Vec::new(),
        };
        match r.read_links(head) {
            Ok(hl) => {
                if !r.walk(head, hl.0, true)? {
                    r.walk(head, hl.1, false)?;
                }
            }
            Err(e) => fatal_or(e, |e| r.errors.push(e))?,
        }
        for &s in seeds {
            if s == head || r.links.contains_key(&s) || r.broken.contains_key(&s) {
                continue;
            }
            if r.links.len() >= cap {
                break;
            }
            match r.read_links(s) {
                Ok(l) => {
                    r.links.insert(s, l);
                    r.walk(s, l.0, true)?;
                    r.walk(s, l.1, false)?;
                }
                Err(e) => fatal_or(e, |e| {
                    r.broken.insert(s, e);
                })?,
            }
        }
        let head_next = r.read_links(head).ok().map(|l| l.0);
        let nodes = ring_order(head, head_next, &r.links);
        Ok(ListRing {
            nodes,
            broken: r.broken.into_iter().collect(),
            errors: r.errors,
        })
    }
}

/// `Err` for a timeout (which stops every walk), else hands the error to `keep`.
pub(crate) fn fatal_or(e: KernelError, keep: impl FnOnce(KernelError)) -> Result<(), KernelError> {
    if matches!(e, KernelError::TimedOut) {
        return Err(e);
    }
    keep(e);
    Ok(())
}

struct RingWalk<'k> {
    k: &'k Kernel,
    head: VirtAddr,
    next_off: u64,
    prev_off: u64,
    cap: usize,
    links: HashMap<VirtAddr, Links>,
    broken: BTreeMap<VirtAddr, KernelError>,
    errors: Vec<KernelError>,
}

impl RingWalk<'_> {
    fn read_links(&self, node: VirtAddr) -> Result<Links, KernelError> {
        let lo = self.next_off.min(self.prev_off);
        let hi = self.next_off.max(self.prev_off) + 8;
        self.k.check_dumped(node.add(lo), hi - lo)?;
        Ok((
            self.k.read_ptr(node.add(self.next_off))?,
            self.k.read_ptr(node.add(self.prev_off))?,
        ))
    }

    /// Follows `next` (or `prev`) from `first`, the link read from `from`. True when the walk
    /// came back to the head.
    fn walk(
        &mut self,
        from: VirtAddr,
        first: VirtAddr,
        forward: bool,
    ) -> Result<bool, KernelError> {
        let mut cur = first;
        let mut prev = from;
        loop {
            if cur == self.head {
                return Ok(true);
            }
            if self.links.contains_key(&cur) || self.broken.contains_key(&cur) {
                // forwards from the head, meeting a node already walked is a cycle that misses
                // the head (backwards, it is where the forward walk stopped)
                if from == self.head && forward && self.links.contains_key(&cur) {
                    self.errors.push(KernelError::Corrupt(format!(
                        "cycle in the list at {}: {prev} links back to {cur}",
                        self.head
                    )));
                }
                return Ok(false);
            }
            if cur.0 == 0 {
                self.errors.push(KernelError::Corrupt(format!(
                    "NULL {} link at {prev} in the list at {}",
                    if forward { "next" } else { "prev" },
                    self.head
                )));
                return Ok(false);
            }
            if self.links.len() >= self.cap {
                self.errors.push(KernelError::Corrupt(format!(
                    "list at {} has more than {} nodes",
                    self.head, self.cap
                )));
                return Ok(false);
            }
            match self.read_links(cur) {
                Ok(l) => {
                    self.links.insert(cur, l);
                    prev = cur;
                    cur = if forward { l.0 } else { l.1 };
                }
                Err(e) => {
                    fatal_or(e, |e| {
                        self.broken.insert(cur, e);
                    })?;
                    return Ok(false);
                }
            }
        }
    }
}

/// Puts the nodes in list order: forwards from the head; at an unreadable node, on to the
/// readable node whose `prev` names it; then the segments nothing links to, lowest address
/// first. Each node is placed once, so corrupt links cannot loop.
fn ring_order(
    head: VirtAddr,
    head_next: Option<VirtAddr>,
    links: &HashMap<VirtAddr, Links>,
) -> Vec<VirtAddr> {
    // the readable node after each unreadable one, when a node's `prev` names it
    let mut after_gap: HashMap<VirtAddr, VirtAddr> = HashMap::new();
    let mut sorted: Vec<VirtAddr> = links.keys().copied().collect();
    sorted.sort_unstable();
    for &n in &sorted {
        let p = links[&n].1;
        if !links.contains_key(&p) && p != head {
            after_gap.entry(p).or_insert(n);
        }
    }
    let mut placed: HashSet<VirtAddr> = HashSet::with_capacity(links.len());
    let mut out = Vec::with_capacity(links.len());
    let follow = |start: VirtAddr, out: &mut Vec<VirtAddr>, placed: &mut HashSet<VirtAddr>| {
        let mut cur = start;
        loop {
            if cur == head || placed.contains(&cur) {
                return;
            }
            match links.get(&cur) {
                Some(&(next, _)) => {
                    placed.insert(cur);
                    out.push(cur);
                    cur = next;
                }
                None => match after_gap.get(&cur) {
                    Some(&n) => cur = n,
                    None => return,
                },
            }
        }
    };
    if let Some(n) = head_next {
        follow(n, &mut out, &mut placed);
    }
    // A segment starts at a node whose predecessor (its `prev`, or across one unreadable node
    // the readable node whose `next` names that one) is not waiting to be placed.
    let mut before_gap: HashMap<VirtAddr, VirtAddr> = HashMap::new();
    for &n in &sorted {
        let nx = links[&n].0;
        if !links.contains_key(&nx) {
            before_gap.entry(nx).or_insert(n);
        }
    }
    loop {
        let pending = |n: &VirtAddr| !placed.contains(n);
        let Some(&first) = sorted.iter().find(|n| pending(n)) else {
            break;
        };
        let start = sorted
            .iter()
            .filter(|n| pending(n))
            .find(|n| {
                let p = links[*n].1;
                let pred = if links.contains_key(&p) {
                    Some(p)
                } else {
                    before_gap.get(&p).copied()
                };
                pred.is_none_or(|p| !pending(&p))
            })
            .copied()
            .unwrap_or(first);
        follow(start, &mut out, &mut placed);
    }
    out
}

/// XArray entries: see the module documentation.
const XA_INTERNAL_NODE_MIN: u64 = 4096;

/// What [`Kernel::xarray_entries`] found.
#[derive(Debug, Default)]
pub struct XArrayEntries {
    /// `(index, entry)` for every pointer entry, in index order.
    pub entries: Vec<(u64, VirtAddr)>,
    /// Nodes that could not be read or contradict the tree's shape; their indices are missing.
    pub errors: Vec<KernelError>,
}

impl Kernel {
    /// The user entries of an XArray: `(index, entry)` for every pointer entry, in index order.
    /// `xa_head` is the address of the `xa_head` member. Value entries and the internal
    /// bookkeeping entries are skipped. A node that cannot be read loses only its own indices:
    /// the error is recorded and the walk goes on. Depth is bounded by the shift (each level
    /// must lower it), nodes are visited once, at most `cap` entries are returned. Fails only on
    /// the deadline.
    pub fn xarray_entries(
        &self,
        xa_head: VirtAddr,
        cap: usize,
    ) -> Result<XArrayEntries, KernelError> {
        let mut out = Vec::new();
        let mut errors = Vec::new();
        let done = |entries, errors| Ok(XArrayEntries { entries, errors });
        let head = match self.read_ptr_dumped(xa_head) {
            Ok(h) => h.0,
            Err(e) => {
                fatal_or(e, |e| errors.push(e))?;
                return done(out, errors);
            }
        };
        let shift_off = self.member_offset_or("struct xa_node", "shift", 0);
        let slots_off = self.member_offset_or("struct xa_node", "slots", 40);
        let nslots = self
            .object_of(VirtAddr(0), "struct xa_node")
            .and_then(|o| o.member("slots")?.array_len())
            .ok()
            .flatten()
            .filter(|n| n.is_power_of_two() && *n <= 256)
            .unwrap_or(64);
        let chunk_shift = u64::from(nslots.trailing_zeros());
        if !is_xa_node(head) {
            if is_xa_pointer(head) {
                out.push((0, VirtAddr(head)));
            }
            return done(out, errors);
        }
        // (node entry, first index it covers, the shift it must have; None at the root)
        let mut stack: Vec<(u64, u64, Option<u64>)> = vec![(head, 0, None)];
        let mut seen = HashSet::new();
        while let Some((entry, base, want)) = stack.pop() {
            let node = VirtAddr(entry - 2);
            if !seen.insert(node) {
                errors.push(KernelError::Corrupt(format!(
                    "XArray at {xa_head}: node {node} reached twice"
                )));
                continue;
            }
            let read = self
                .check_dumped(node.add(shift_off), 1)
                .and_then(|_| self.read_uint(node.add(shift_off), 1))
                .and_then(|shift| {
                    self.check_dumped(node.add(slots_off), nslots * 8)?;
                    Ok((
                        shift,
                        self.read_bytes(node.add(slots_off), (nslots * 8) as usize)?,
                    ))
                });
            let (shift, slots) = match read {
                Ok(v) => v,
                Err(e) => {
                    fatal_or(e, |e| errors.push(e))?;
                    continue;
                }
            };
            if shift % chunk_shift != 0 || shift >= 64 || want.is_some_and(|w| w != shift) {
                errors.push(KernelError::Corrupt(format!(
                    "XArray at {xa_head}: node {node} has shift {shift}"
                )));
                continue;
            }
            let endian = self.space().endian();
            // pushed in reverse so that the stack pops them in index order
            for i in (0..nslots).rev() {
                let at = (i * 8) as usize;
                let Some(e) = endian.uint(&slots[at..at + 8], 8) else {
                    continue;
                };
                let index = base.wrapping_add(i << shift);
                if is_xa_node(e) {
                    if shift == 0 {
                        errors.push(KernelError::Corrupt(format!(
                            "XArray at {xa_head}: leaf node {node} points at a node"
                        )));
                    } else {
                        stack.push((e, index, Some(shift - chunk_shift)));
                    }
                } else if is_xa_pointer(e) {
                    if out.len() >= cap {
                        errors.push(KernelError::Corrupt(format!(
                            "XArray at {xa_head} has more than {cap} entries"
                        )));
                        return done(out, errors);
                    }
                    out.push((index, VirtAddr(e)));
                }
            }
        }
        out.sort_unstable_by_key(|&(i, _)| i);
        done(out, errors)
    }
}

/// `xa_is_node()`: an internal entry (low bits `10`) above 4096.
fn is_xa_node(entry: u64) -> bool {
    entry & 3 == 2 && entry > XA_INTERNAL_NODE_MIN
}

/// A pointer entry stored by the XArray's user: non-NULL with low bits `00`.
fn is_xa_pointer(entry: u64) -> bool {
    entry != 0 && entry & 3 == 0
}
