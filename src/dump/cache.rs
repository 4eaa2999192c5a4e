//! A small, bounded, thread-safe cache of decompressed pages.
//!
//! Kernel data structures cluster (a task list walk touches the same slab pages again and again),
//! so keeping a few hundred decompressed pages saves most repeated decompression. The cache is
//! split into shards by PFN so that threads reading different pages rarely contend for one lock;
//! each shard evicts in insertion order (FIFO), which is as good as LRU for this access pattern and
//! needs no bookkeeping on a hit.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

const SHARDS: usize = 16;
/// Total budget: about 2 MiB of 4 KiB pages whatever the page size.
const BUDGET_BYTES: usize = 2 << 20;

#[derive(Debug, Default)]
struct Shard {
    map: HashMap<u64, Arc<[u8]>>,
    order: VecDeque<u64>,
}

#[derive(Debug)]
pub struct PageCache {
    shards: Vec<Mutex<Shard>>,
    per_shard: usize,
}

impl PageCache {
    pub fn new(page_size: usize) -> PageCache {
        let pages = (BUDGET_BYTES / page_size.max(1)).max(SHARDS);
        PageCache {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            per_shard: pages / SHARDS,
        }
    }

    fn shard(&self, pfn: u64) -> Option<std::sync::MutexGuard<'_, Shard>> {
        // A poisoned shard only means another thread panicked mid-insert; the map is still valid.
        let m = self.shards.get((pfn as usize) % SHARDS)?;
        Some(m.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn get(&self, pfn: u64) -> Option<Arc<[u8]>> {
        self.shard(pfn)?.map.get(&pfn).cloned()
    }

    pub fn insert(&self, pfn: u64, page: Arc<[u8]>) {
        let Some(mut s) = self.shard(pfn) else {
            return;
        };
        if s.map.insert(pfn, page).is_none() {
            s.order.push_back(pfn);
        }
        while s.order.len() > self.per_shard {
            if let Some(old) = s.order.pop_front() {
                s.map.remove(&old);
            }
        }
    }
}
