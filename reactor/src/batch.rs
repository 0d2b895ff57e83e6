//! How a batch of cross-thread commands (from a channel's handle mailbox)
//! runs: writes in order, flushes coalesced into one. Plain function over
//! the handle's `Command`; the channel task calls it.

use crate::handle::Command;

/// The most commands one mailbox batch runs before the loop turns to its
/// other channels and its sockets: threads writing through a handle faster
/// than the loop drains it must not keep the loop in one mailbox for good.
pub(crate) const BATCH_BUDGET: usize = 1024;

/// Runs one mailbox batch (`pop` until empty, or [`BATCH_BUDGET`]
/// commands) through `run`, with its flushes coalesced: writes go down as
/// they come, and the flushes they asked for become one, done before a
/// close and at the end of the batch. A busy handle (many threads writing
/// and flushing one message each) then costs one syscall per batch, not
/// one per message. Returns whether it stopped at the budget with
/// commands perhaps left: the channel must be scheduled again.
pub(crate) fn run_batch<W>(
    mut pop: impl FnMut() -> Option<Command<W>>,
    mut run: impl FnMut(Command<W>),
) -> bool {
    let mut owed = false;
    let mut budget = BATCH_BUDGET;
    let mut pop = || {
        budget = budget.checked_sub(1)?;
        pop()
    };
    while let Some(cmd) = pop() {
        match cmd {
            Command::WriteAndFlush(m) => {
                run(Command::Write(m));
                owed = true;
            }
            Command::Flush => owed = true,
            Command::Write(m) => run(Command::Write(m)),
            Command::Close => {
                if std::mem::take(&mut owed) {
                    run(Command::Flush);
                }
                run(Command::Close);
            }
            // Flushes itself: the flushes owed so far are in it.
            Command::FlushThen(notice) => {
                owed = false;
                run(Command::FlushThen(notice));
            }
            // In its place among the writes; a flush owed stays owed.
            Command::UserEvent(event) => run(Command::UserEvent(event)),
        }
    }
    if owed {
        run(Command::Flush);
    }
    budget == 0
}

#[cfg(test)]
mod tests {
    use super::{run_batch, BATCH_BUDGET};
    use crate::handle::Command;

    /// What a batch of commands becomes: the write's letter, `F` for a
    /// flush, `C` for a close.
    fn run(cmds: Vec<Command<char>>) -> String {
        let mut out = String::new();
        let mut cmds = cmds.into_iter();
        let _ = run_batch(
            || cmds.next(),
            |cmd| match cmd {
                Command::Write(c) => out.push(c),
                Command::Flush => out.push('F'),
                Command::Close => out.push('C'),
                Command::FlushThen(_) => out.push('N'),
                Command::UserEvent(_) => out.push('U'),
                Command::WriteAndFlush(_) => unreachable!("split into write and flush"),
            },
        );
        out
    }

    #[test]
    fn flushes_become_one_before_a_close_and_one_at_the_end() {
        use Command::*;
        assert_eq!(
            run(vec![
                WriteAndFlush('a'),
                WriteAndFlush('b'),
                WriteAndFlush('c')
            ]),
            "abcF"
        );
        assert_eq!(run(vec![WriteAndFlush('a'), Close, Write('b')]), "aFCb");
        assert_eq!(
            run(vec![Write('a'), Write('b')]),
            "ab",
            "no flush asked, none done"
        );
        assert_eq!(run(vec![Write('a'), Flush, Write('b')]), "abF");
        assert_eq!(run(vec![Close]), "C");
        let event = || UserEvent(crate::UserEvent::InputClosed);
        assert_eq!(
            run(vec![WriteAndFlush('a'), event(), Write('b')]),
            "aUbF",
            "an event keeps its place; the flush owed before it is still done"
        );
    }

    #[test]
    fn a_batch_stops_at_its_budget_flushing_what_it_ran() {
        let mut queue: std::collections::VecDeque<Command<u32>> = (0..BATCH_BUDGET as u32 + 10)
            .map(Command::WriteAndFlush)
            .collect();
        let (mut writes, mut flushes) = (0, 0);
        let more = run_batch(
            || queue.pop_front(),
            |cmd| match cmd {
                Command::Write(_) => writes += 1,
                Command::Flush => flushes += 1,
                _ => unreachable!(),
            },
        );
        assert!(more, "stopped at the budget");
        assert_eq!((writes, flushes), (BATCH_BUDGET, 1));
        assert_eq!(queue.len(), 10, "the rest waits for the next turn");
        let more = run_batch(|| queue.pop_front(), |_| {});
        assert!(!more);
    }
}
