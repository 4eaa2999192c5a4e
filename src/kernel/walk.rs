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
        let mut out = Vec::new();
        let mut cur = self.read_ptr(head.add(next_off))?;
        while cur != head {
            if cur.0 == 0 {
                return Err(KernelError::Corrupt(format!(
                    "NULL next pointer in the list at {head} after {} nodes",
                    out.len()
                )));
            }
            if !seen.insert(cur) {
                return Err(KernelError::Corrupt(format!(
                    "cycle in the list at {head}: node {cur} seen twice"
                )));
            }
            if out.len() >= cap {
                return Err(KernelError::Corrupt(format!(
                    "list at {head} has more than {cap} nodes"
                )));
            }
            out.push(cur);
            cur = self.read_ptr(cur.add(next_off))?;
        }
        Ok(out)
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
        let ty = self.find_type(type_name)?;
        let off = self.object(VirtAddr(0), ty).member(member)?.address().0;
        Ok(self
            .list_nodes(head, cap)?
            .into_iter()
            .map(|n| self.object(VirtAddr(n.0.wrapping_sub(off)), ty))
            .collect())
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
        let ty = self.find_type(type_name)?;
        let off = self.object(VirtAddr(0), ty).member(member)?.address().0;
        Ok(self
            .hlist_nodes(head, cap)?
            .into_iter()
            .map(|n| self.object(VirtAddr(n.0.wrapping_sub(off)), ty))
            .collect())
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
        let ty = self.find_type(type_name)?;
        let off = self.object(VirtAddr(0), ty).member(member)?.address().0;
        Ok(self
            .rb_nodes(root, cap)?
            .into_iter()
            .map(|n| self.object(VirtAddr(n.0.wrapping_sub(off)), ty))
            .collect())
    }
}
