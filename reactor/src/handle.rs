//! `ChannelHandle`: write to, flush and close a channel from any thread.

use crate::error::ChannelClosed;
use crate::event_loop::Shared;
use crate::mailbox::Mailbox;
use mio::Token;
use std::fmt;
use std::sync::Arc;

/// A cross-thread command, run on the channel's loop in the order queued.
#[doc(hidden)]
pub enum Command<W> {
    Write(W),
    WriteAndFlush(W),
    Flush,
    Close,
}

/// A `Send + Clone` handle to a channel.
///
/// Every operation is queued to the loop that owns the channel and runs
/// there, in order per handle, through the same outbound handlers a write
/// from the pipeline would take (from the layer that made the handle, or the
/// whole pipeline for a handle from [`Bootstrap::connect`]). Queuing takes no
/// lock and wakes the loop at most once per batch.
///
/// Once the channel has closed every operation returns [`ChannelClosed`]
/// with the message given back; `Ok` means "queued", as the channel may
/// still close before the loop gets to it.
///
/// [`Bootstrap::connect`]: crate::Bootstrap::connect
pub struct ChannelHandle<W> {
    mailbox: Arc<Mailbox<Command<W>>>,
    token: Token,
    lp: Arc<Shared>,
}

impl<W> Clone for ChannelHandle<W> {
    fn clone(&self) -> Self {
        ChannelHandle {
            mailbox: self.mailbox.clone(),
            token: self.token,
            lp: self.lp.clone(),
        }
    }
}

impl<W> fmt::Debug for ChannelHandle<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelHandle")
            .field("token", &self.token.0)
            .field("closed", &self.mailbox.is_closed())
            .finish()
    }
}

impl<W> ChannelHandle<W> {
    pub(crate) fn new(mailbox: Arc<Mailbox<Command<W>>>, token: Token, lp: Arc<Shared>) -> Self {
        ChannelHandle { mailbox, token, lp }
    }

    fn send(&self, cmd: Command<W>) -> Result<(), Command<W>> {
        match self.mailbox.push(cmd) {
            Ok(true) => {
                self.lp.notify_channel(self.token);
                Ok(())
            }
            Ok(false) => Ok(()),
            Err(cmd) => Err(cmd),
        }
    }

    /// Queues `msg`; it is sent at the next flush.
    pub fn write(&self, msg: W) -> Result<(), ChannelClosed<W>> {
        self.send(Command::Write(msg)).map_err(take_msg)
    }

    /// Queues `msg` and a flush.
    pub fn write_and_flush(&self, msg: W) -> Result<(), ChannelClosed<W>> {
        self.send(Command::WriteAndFlush(msg)).map_err(take_msg)
    }

    /// Queues a flush.
    pub fn flush(&self) -> Result<(), ChannelClosed<W>> {
        self.send(Command::Flush).map_err(take_msg)
    }

    /// Queues a close: the channel delivers what was queued before it, then
    /// closes.
    pub fn close(&self) -> Result<(), ChannelClosed<W>> {
        self.send(Command::Close).map_err(take_msg)
    }

    /// Whether the channel is still open, as far as this thread can tell.
    pub fn is_open(&self) -> bool {
        !self.mailbox.is_closed()
    }
}

fn take_msg<W>(cmd: Command<W>) -> ChannelClosed<W> {
    match cmd {
        Command::Write(m) | Command::WriteAndFlush(m) => ChannelClosed(Some(m)),
        Command::Flush | Command::Close => ChannelClosed(None),
    }
}
