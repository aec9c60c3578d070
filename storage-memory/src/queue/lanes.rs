//! An ordered index that is cheap when keys arrive almost in order.
//!
//! A queue files messages by `(visible_at, sequence)` and `(sent_at,
//! sequence)`. Both keys are mostly pushed in increasing order: every send
//! stamps `now + delay` and every receive `now + visibility`, and the
//! store clock does not run backwards, so each distinct delay or
//! visibility makes one increasing run. [`Lanes`] keeps up to [`LANES`]
//! such runs as sorted deques and files any key that fits none of them
//! (a clock set back, a receive racing another one within a millisecond,
//! an import) in an ordered set. The minimum is the least of the lane
//! fronts and the set's first key: O(1) for lanes, O(log n) for the set,
//! independent of how many messages a lane holds.
//!
//! Entries are never removed in place: the queue decides whether an entry
//! still describes its message (`live`), entries that do not are dropped
//! when they come up as a minimum that is due (a stale entry that is not
//! due costs nothing where it is), and the whole index is compacted
//! once it holds more than twice the live messages (plus slack), which
//! keeps memory proportional to the queue and costs O(1) amortised per
//! push.

use std::collections::{BTreeSet, VecDeque};

/// Sorted runs kept as deques before keys go to the ordered set.
const LANES: usize = 4;
/// Stale entries tolerated beyond the live count before a compaction.
const SLACK: usize = 64;

/// A min-ordered multiset of `E` with lazy deletion (see the module docs).
#[derive(Debug)]
pub(super) struct Lanes<E> {
    lanes: [VecDeque<E>; LANES],
    /// Keys that fit no lane, in order.
    rest: BTreeSet<E>,
    /// Entries held in `lanes` and `rest`.
    len: usize,
}

impl<E> Default for Lanes<E> {
    fn default() -> Self {
        Lanes {
            lanes: Default::default(),
            rest: BTreeSet::new(),
            len: 0,
        }
    }
}

/// Where the current minimum sits.
#[derive(Debug, Clone, Copy)]
enum At {
    Lane(usize),
    Rest,
}

impl<E: Ord + Copy> Lanes<E> {
    /// Entries held, stale ones included.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.len
    }

    /// Files `e`. `live_count` is how many entries should be live and
    /// `live` tells them apart; they drive the compaction.
    pub(super) fn push(&mut self, e: E, live_count: usize, live: impl FnMut(&E) -> bool) {
        if self.len > live_count.saturating_mul(2).saturating_add(SLACK) {
            self.retain(live);
        }
        self.len += 1;
        // The first lane `e` extends (or an empty one).
        let fit = self
            .lanes
            .iter_mut()
            .find(|lane| lane.back().is_none_or(|back| *back <= e));
        match fit {
            Some(lane) => lane.push_back(e),
            None => {
                if !self.rest.insert(e) {
                    // An equal entry is already filed: one is enough.
                    self.len -= 1;
                }
            }
        }
    }

    /// The least live entry, dropping stale ones met on the way.
    pub(super) fn first(&mut self, mut live: impl FnMut(&E) -> bool) -> Option<E> {
        loop {
            let (at, e) = self.min()?;
            if live(&e) {
                return Some(e);
            }
            self.take(at);
        }
    }

    /// Removes and returns the least live entry if it is `due`. Due
    /// entries that are stale are dropped on the way; the liveness of an
    /// entry that is not due is not checked.
    pub(super) fn pop_first_if(
        &mut self,
        mut live: impl FnMut(&E) -> bool,
        mut due: impl FnMut(&E) -> bool,
    ) -> Option<E> {
        loop {
            let (at, e) = self.min()?;
            if !due(&e) {
                return None;
            }
            self.take(at);
            if live(&e) {
                return Some(e);
            }
        }
    }

    /// Keeps only the entries `live` accepts (order is kept).
    pub(super) fn retain(&mut self, mut live: impl FnMut(&E) -> bool) {
        for lane in &mut self.lanes {
            lane.retain(&mut live);
        }
        self.rest.retain(|e| live(e));
        self.len = self.lanes.iter().map(VecDeque::len).sum::<usize>() + self.rest.len();
    }

    /// Drops everything.
    pub(super) fn clear(&mut self) {
        *self = Lanes::default();
    }

    fn min(&self) -> Option<(At, E)> {
        let mut min = self.rest.first().map(|&e| (At::Rest, e));
        for (i, lane) in self.lanes.iter().enumerate() {
            if let Some(&e) = lane.front() {
                if min.is_none_or(|(_, m)| e < m) {
                    min = Some((At::Lane(i), e));
                }
            }
        }
        min
    }

    fn take(&mut self, at: At) {
        match at {
            At::Lane(i) => {
                self.lanes[i].pop_front();
            }
            At::Rest => {
                self.rest.pop_first();
            }
        }
        self.len -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whatever the push order, entries come out sorted; runs stay in
    /// lanes and the rest goes to the set.
    #[test]
    fn pops_in_order_from_lanes_and_the_set() {
        let mut l = Lanes::default();
        // Two increasing runs interleaved take two lanes: the first gets 0
        // and 100..120, the second 2..40.
        for (a, b) in (0..20u64).zip(100..120u64) {
            l.push(a * 2, 0, |_| true);
            l.push(b, 0, |_| true);
        }
        l.push(50, 0, |_| true); // the first lane it extends (38 <= 50 < 119)
        l.push(7, 0, |_| true); // fits no run: a third lane
        l.push(3, 0, |_| true); // a fourth
        l.push(1, 0, |_| true); // fits no lane: the set
        assert_eq!(
            l.lanes.iter().map(VecDeque::len).collect::<Vec<_>>(),
            [21, 20, 1, 1]
        );
        assert_eq!(l.rest.len(), 1);
        let mut out = Vec::new();
        while let Some(e) = l.pop_first_if(|_| true, |_| true) {
            out.push(e);
        }
        let mut want: Vec<u64> = (0..20).map(|a| a * 2).chain(100..120).collect();
        want.extend([50, 7, 3, 1]);
        want.sort_unstable();
        assert_eq!(out, want);
        assert_eq!(l.len(), 0);
    }

    /// Stale entries are skipped, `due` stops the pop without removing
    /// the live minimum, and compaction bounds the index.
    #[test]
    fn stale_entries_are_skipped_and_compacted() {
        let mut l = Lanes::default();
        for e in 0..10u64 {
            l.push(e, 10, |_| true);
        }
        let live = |e: &u64| e % 2 == 1;
        assert_eq!(l.pop_first_if(live, |_| false), None); // 0: not due, kept
        assert_eq!(l.len(), 10);
        assert_eq!(l.first(live), Some(1)); // 0 dropped
        assert_eq!(l.pop_first_if(live, |e| *e < 5), Some(1));
        assert_eq!(l.pop_first_if(live, |e| *e < 5), Some(3));
        assert_eq!(l.pop_first_if(live, |e| *e < 5), None); // 4 dropped, 5 not due
        assert_eq!(l.len(), 5); // 5..10

        // One live entry: pushes beyond 2 * 1 + SLACK compact.
        for e in 10..(10 + 2 * SLACK as u64) {
            l.push(e, 1, |e| *e == 9);
        }
        assert!(l.len() <= 2 + SLACK + 1, "len {}", l.len());
        assert_eq!(l.first(|e| *e == 9), Some(9));
    }
}
