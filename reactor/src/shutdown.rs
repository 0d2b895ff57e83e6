//! A loop's graceful shutdown as plain data: the quiet period, the
//! deadline, and which phase it is in. The loop asks it, once per turn,
//! what to do next; it knows nothing of channels.
//!
//! First the loop keeps serving until it has seen no input (reads,
//! accepts, tasks, handle commands) for the quiet period, so work already
//! under way can finish and answer. Then it closes every channel the
//! graceful way (stop reading, deliver what is queued, close) and stops
//! when none is left. The deadline cuts both phases short.

use std::time::{Duration, Instant};

/// What a shutting-down loop does next.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Keep serving (or keep closing).
    Serve,
    /// The quiet period has passed: ask every channel to close.
    CloseAll,
    /// Stop the loop.
    Stop,
}

pub(crate) struct Shutdown {
    quiet: Duration,
    deadline: Instant,
    last_activity: Instant,
    /// The quiet period has passed and every channel was asked to close.
    closing: bool,
}

impl Shutdown {
    pub(crate) fn new(now: Instant, quiet: Duration, timeout: Duration) -> Shutdown {
        Shutdown {
            quiet,
            deadline: now + timeout,
            last_activity: now,
            closing: false,
        }
    }

    /// The next step at `now`, given whether this turn had input and how
    /// many channels are still open.
    pub(crate) fn step(&mut self, now: Instant, busy: bool, channels: usize) -> Step {
        if busy {
            self.last_activity = now;
        }
        if now >= self.deadline {
            return Step::Stop;
        }
        if !self.closing {
            if now.saturating_duration_since(self.last_activity) < self.quiet {
                return Step::Serve;
            }
            self.closing = true;
            return Step::CloseAll;
        }
        if channels == 0 {
            Step::Stop
        } else {
            Step::Serve
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_then_close_then_stop_when_empty_and_the_deadline_cuts_short() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut s = Shutdown::new(t0, ms(100), ms(1000));
        assert_eq!(s.step(t0 + ms(50), true, 3), Step::Serve);
        assert_eq!(
            s.step(t0 + ms(140), false, 3),
            Step::Serve,
            "input restarts the quiet period"
        );
        assert_eq!(s.step(t0 + ms(150), false, 3), Step::CloseAll);
        assert_eq!(
            s.step(t0 + ms(160), false, 1),
            Step::Serve,
            "closing, one left"
        );
        assert_eq!(s.step(t0 + ms(170), false, 0), Step::Stop);
        let mut s = Shutdown::new(t0, ms(100), ms(300));
        assert_eq!(
            s.step(t0 + ms(300), true, 5),
            Step::Stop,
            "the deadline wins"
        );
    }
}
