//! Arrival order for one connection's answers: plain data that takes
//! answers as they come (numbered by their requests' arrival) and lets
//! them go in number order, holding the early ones. Used by the offload
//! layer's reorderer on the loop's thread; knows nothing else.

use std::collections::VecDeque;

/// Answers numbered 0, 1, 2, ... taken in any order and released in
/// number order. An answer may be empty (`None`: a request answered with
/// nothing), which releases nothing but lets the ones after it go.
#[derive(Debug)]
pub struct ArrivalOrder<W> {
    /// The number of the next answer to release.
    next: u64,
    /// Answers that came early, by `number - next`; `Some(None)` is an
    /// empty answer that came.
    held: VecDeque<Option<Option<W>>>,
}

impl<W> Default for ArrivalOrder<W> {
    fn default() -> Self {
        ArrivalOrder {
            next: 0,
            held: VecDeque::new(),
        }
    }
}

impl<W> ArrivalOrder<W> {
    /// Takes answer `number` and passes every answer now in order, this
    /// one included if its turn has come, to `release`.
    ///
    /// Each number is taken once (a reply answers once, and only the
    /// offload layer numbers requests), so `number >= next` always.
    pub fn take(&mut self, number: u64, answer: Option<W>, mut release: impl FnMut(W)) {
        debug_assert!(number >= self.next, "answer {number} came twice");
        let at = (number - self.next) as usize;
        if at >= self.held.len() {
            self.held.resize_with(at + 1, || None);
        }
        self.held[at] = Some(answer);
        while let Some(Some(_)) = self.held.front() {
            self.next += 1;
            if let Some(Some(Some(answer))) = self.held.pop_front() {
                release(answer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take(order: &mut ArrivalOrder<u64>, number: u64, answer: Option<u64>) -> Vec<u64> {
        let mut out = Vec::new();
        order.take(number, answer, |a| out.push(a));
        out
    }

    #[test]
    fn early_answers_wait_for_the_ones_before_them() {
        let mut order = ArrivalOrder::default();
        assert_eq!(take(&mut order, 2, Some(20)), Vec::<u64>::new());
        assert_eq!(take(&mut order, 1, Some(10)), Vec::<u64>::new());
        assert_eq!(take(&mut order, 0, Some(0)), vec![0, 10, 20]);
        assert_eq!(take(&mut order, 3, Some(30)), vec![30]);
    }

    #[test]
    fn an_empty_answer_releases_nothing_but_lets_the_next_go() {
        let mut order = ArrivalOrder::default();
        assert_eq!(take(&mut order, 1, Some(10)), Vec::<u64>::new());
        assert_eq!(take(&mut order, 0, None), vec![10]);
        assert_eq!(take(&mut order, 3, Some(30)), Vec::<u64>::new());
        assert_eq!(take(&mut order, 2, None), vec![30]);
    }
}
