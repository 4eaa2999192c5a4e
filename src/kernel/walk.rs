//! Walkers for the kernel's intrusive containers: `list_head`, `hlist_head`, `rb_root`.
//!
//! A dump may catch a list mid-update or hold corrupt pointers, so every walk takes an iteration
//! cap and keeps the set of nodes it has visited: a node seen twice (other than the list head
//! closing the circle) is reported as [`KernelError::Corrupt`], never looped over.
//!
//! Member offsets (`list_head.next`, `rb_node.rb_left`, …) come from the debuginfo when it
//! describes them; the layouts have been stable since Linux 2.6, which the fallbacks encode.

use std::collections::HashSet;

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
