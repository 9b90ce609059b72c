//! A time-ordering buffer for pairing events: live rings are drained CPU by CPU, so a thread's
//! exit (on the CPU it migrated to) can arrive before its entry. Pairers hold marks here until
//! nothing older can still arrive, then see them in time order.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

/// How far behind the newest event a mark is held (1 s: more than a drain round of the rings).
pub const WINDOW_NS: u64 = 1_000_000_000;

/// At most this many marks are held; past it the oldest is released early (bounded memory).
pub const MAX_HELD: usize = 1 << 20;

/// Marks held until they are [`WINDOW_NS`] older than the newest one seen.
#[derive(Debug, Clone)]
pub struct Reorder<T> {
    heap: BinaryHeap<Reverse<Held<T>>>,
    newest: u64,
    sequence: u64,
}

impl<T> Default for Reorder<T> {
    fn default() -> Self {
        Reorder {
            heap: BinaryHeap::new(),
            newest: 0,
            sequence: 0,
        }
    }
}

#[derive(Debug, Clone)]
struct Held<T> {
    time: u64,
    sequence: u64,
    item: T,
}

impl<T> PartialEq for Held<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.time, self.sequence) == (other.time, other.sequence)
    }
}
impl<T> Eq for Held<T> {}
impl<T> PartialOrd for Held<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Held<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        // Equal times keep their arrival order.
        (self.time, self.sequence).cmp(&(other.time, other.sequence))
    }
}

impl<T> Reorder<T> {
    /// Holds `item`, which happened at `time`.
    pub fn push(&mut self, time: u64, item: T) {
        self.newest = self.newest.max(time);
        self.sequence += 1;
        self.heap.push(Reverse(Held {
            time,
            sequence: self.sequence,
            item,
        }));
    }

    /// The oldest mark, if it can no longer be preceded by one still to arrive.
    pub fn pop_ready(&mut self) -> Option<(u64, T)> {
        let ready = self.heap.peek().is_some_and(|Reverse(oldest)| {
            oldest.time.saturating_add(WINDOW_NS) <= self.newest || self.heap.len() > MAX_HELD
        });
        if ready { self.pop() } else { None }
    }

    /// The oldest mark, ready or not (flushing at the end).
    pub fn pop(&mut self) -> Option<(u64, T)> {
        self.heap.pop().map(|Reverse(h)| (h.time, h.item))
    }

    /// Forgets every held mark.
    pub fn clear(&mut self) {
        self.heap.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_in_time_order_after_the_window() {
        let mut r = Reorder::default();
        r.push(100, "exit");
        r.push(50, "enter");
        assert_eq!(r.pop_ready(), None, "both are within the window");
        r.push(50 + WINDOW_NS, "later");
        assert_eq!(r.pop_ready(), Some((50, "enter")));
        assert_eq!(r.pop_ready(), None, "100 is still within the window");
        assert_eq!(r.pop(), Some((100, "exit")));
        assert_eq!(r.pop(), Some((50 + WINDOW_NS, "later")));
        assert_eq!(r.pop(), None);
    }

    #[test]
    fn equal_times_keep_arrival_order() {
        let mut r = Reorder::default();
        r.push(7, 1);
        r.push(7, 2);
        r.push(7, 3);
        assert_eq!(
            (r.pop(), r.pop(), r.pop()),
            (Some((7, 1)), Some((7, 2)), Some((7, 3)))
        );
    }
}
