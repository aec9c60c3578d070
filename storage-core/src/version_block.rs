//! Version numbers handed out from a block reserved in one step.
//!
//! A backend whose version tokens come from a persisted counter (a
//! DuckDB row, a Redis string) would otherwise write that counter on
//! every write. Instead it reserves [`VersionBlock::SIZE`] numbers at a
//! time — one counter update of `+ SIZE` — and hands them out from
//! memory. The counter stays a high-water mark: every number issued is at
//! or below it, and a reservation only ever raises it, so no number is
//! issued twice, not even after a restart or by two processes sharing
//! the counter (each gets blocks of its own). Numbers left in a block
//! that is dropped are never used; tokens are compared for equality
//! only, so gaps and interleaving between processes are harmless.
//!
//! The type is only the arithmetic; reserving (and, where the counter is
//! written inside a transaction, forgetting a block whose transaction
//! rolled back) is the backend's.

/// A run of consecutive version numbers `next ..= last`, reserved from a
/// counter and not handed out yet.
///
/// ```
/// use storage_core::VersionBlock;
/// let mut block = VersionBlock::EMPTY;
/// assert_eq!(block.take(1), None, "nothing reserved yet");
/// // The backend raised its counter by `reservation(1)` and read back 1024.
/// let size = VersionBlock::reservation(1);
/// block.refill(1024, size);
/// assert_eq!(block.take(1), Some(1)); // one version: 1
/// assert_eq!(block.take(3), Some(4)); // three versions: 2, 3, 4
/// assert_eq!(block.remaining(), 1020);
/// assert_eq!(block.take(1021), None, "a larger take needs a new block");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionBlock {
    /// The next number to hand out (meaningless when `left` is 0).
    next: u64,
    /// Numbers left, `next ..= next + left - 1`.
    left: u64,
}

impl Default for VersionBlock {
    fn default() -> Self {
        VersionBlock::EMPTY
    }
}

impl VersionBlock {
    /// Numbers reserved per counter update.
    pub const SIZE: u64 = 1024;

    /// No block: the next take needs a reservation.
    pub const EMPTY: VersionBlock = VersionBlock { next: 1, left: 0 };

    /// How many numbers to reserve for a take of `n`: a whole block, or
    /// more when one take needs more.
    pub fn reservation(n: u64) -> u64 {
        n.max(VersionBlock::SIZE)
    }

    /// Numbers left.
    pub fn remaining(&self) -> u64 {
        self.left
    }

    /// Takes `n` (at least 1) consecutive numbers and returns the last
    /// (they are `last - n + 1 ..= last`); `None`, taking nothing, when
    /// fewer than `n` are left.
    pub fn take(&mut self, n: u64) -> Option<u64> {
        let n = n.max(1);
        if self.left < n {
            return None;
        }
        let last = self.next + (n - 1);
        // Wraps only past u64::MAX, when nothing is left to hand out.
        self.next = last.wrapping_add(1);
        self.left -= n;
        Some(last)
    }

    /// Replaces the block with the `size` numbers ending at `last`: the
    /// counter was raised by `size` and now reads `last`. A `size` larger
    /// than `last` (a counter that was not ours) keeps only `1 ..= last`.
    pub fn refill(&mut self, last: u64, size: u64) {
        let size = size.min(last);
        *self = VersionBlock {
            next: last - size + 1,
            left: size,
        };
    }

    /// Drops what is left (its numbers are never used).
    pub fn clear(&mut self) {
        *self = VersionBlock::EMPTY;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_consecutive_numbers_up_to_the_end_of_the_block() {
        let mut b = VersionBlock::EMPTY;
        assert_eq!(b.remaining(), 0);
        b.refill(2048, VersionBlock::SIZE);
        assert_eq!(b.take(1), Some(1025));
        assert_eq!(b.take(0), Some(1026), "a take of 0 takes one");
        assert_eq!(b.take(1022), Some(2048));
        assert_eq!(b.take(1), None);
        assert_eq!(b.remaining(), 0);
    }

    #[test]
    fn a_refused_take_takes_nothing() {
        let mut b = VersionBlock::EMPTY;
        b.refill(10, 10);
        assert_eq!(b.take(11), None);
        assert_eq!(b.take(10), Some(10));
    }

    #[test]
    fn reservations_cover_large_takes() {
        assert_eq!(VersionBlock::reservation(1), VersionBlock::SIZE);
        assert_eq!(VersionBlock::reservation(5000), 5000);
        let mut b = VersionBlock::EMPTY;
        b.refill(u64::MAX, VersionBlock::reservation(5000));
        assert_eq!(b.take(5000), Some(u64::MAX));
        assert_eq!(b.take(1), None, "no overflow past the end");
    }

    #[test]
    fn a_block_never_starts_at_zero() {
        let mut b = VersionBlock::EMPTY;
        b.refill(3, 1024);
        assert_eq!(b.take(3), Some(3));
        b.clear();
        assert_eq!(b, VersionBlock::EMPTY);
    }
}
