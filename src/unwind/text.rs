//! Address ranges of kernel text (the image's `_stext`..`_etext`, each module's text): the test
//! an unwinder applies to every recovered return address before it trusts it.

/// A set of `[start, end)` ranges, kept sorted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TextRanges {
    ranges: Vec<(u64, u64)>,
}

impl TextRanges {
    /// The ranges given, empty ones dropped.
    pub fn new(ranges: impl IntoIterator<Item = (u64, u64)>) -> TextRanges {
        let mut ranges: Vec<_> = ranges.into_iter().filter(|(s, e)| s < e).collect();
        ranges.sort_unstable();
        TextRanges { ranges }
    }

    pub fn push(&mut self, start: u64, end: u64) {
        if start < end {
            let at = self.ranges.partition_point(|r| *r < (start, end));
            self.ranges.insert(at, (start, end));
        }
    }

    pub fn contains(&self, addr: u64) -> bool {
        // Ranges may overlap (a module inside a larger vmalloc'd range given twice): look at
        // every range starting at or below `addr`, nearest first; there are only a few.
        let i = self.ranges.partition_point(|&(s, _)| s <= addr);
        self.ranges[..i].iter().rev().any(|&(_, e)| addr < e)
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.ranges.iter().copied()
    }
}
