//! How a batch of cross-thread commands (from a channel's handle mailbox)
//! runs: writes in order, flushes coalesced into one. Plain function over
//! the handle's `Command`; the channel task calls it.

use crate::handle::Command;

/// Runs one mailbox batch (`pop` until empty) through `run`, with its
/// flushes coalesced: writes go down as they come, and the flushes they
/// asked for become one, done before a close and at the end of the batch.
/// A busy handle (many threads writing and flushing one message each) then
/// costs one syscall per batch, not one per message; nothing waits longer,
/// as the batch is drained in one go.
pub(crate) fn run_batch<W>(
    mut pop: impl FnMut() -> Option<Command<W>>,
    mut run: impl FnMut(Command<W>),
) {
    let mut owed = false;
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
        }
    }
    if owed {
        run(Command::Flush);
    }
}

#[cfg(test)]
mod tests {
    use super::run_batch;
    use crate::handle::Command;

    /// What a batch of commands becomes: the write's letter, `F` for a
    /// flush, `C` for a close.
    fn run(cmds: Vec<Command<char>>) -> String {
        let mut out = String::new();
        let mut cmds = cmds.into_iter();
        run_batch(
            || cmds.next(),
            |cmd| match cmd {
                Command::Write(c) => out.push(c),
                Command::Flush => out.push('F'),
                Command::Close => out.push('C'),
                Command::FlushThen(_) => out.push('N'),
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
    }
}
