//! A channel's side of sending files through a [`FileLoader`]: before the
//! loop sends from the file region at the queue's front, how much of it is
//! known to be in the page cache; a cold window goes to a loader and the
//! channel stops writing until the loader wakes it. Both transports ask
//! here (their file sends are the one `send_front_file`), and take what a
//! send did as a [`FileStep`]. Plain state the channel holds: uses the
//! loader and its ticket, and the loop's shared half (for the wake-up).
//!
//! [`FileLoader`]: crate::FileLoader

use crate::event_loop::{LoopLocal, Shared};
use crate::file_loader::{FileLoader, Load, LoadJob, Reached};
use gyre_ringbuffer::{BlockingWait, MultiProducer};
use gyre_zerocopy::FileRegion;
use mio::Token;
use std::sync::Arc;

/// What one send from the file region at the queue's front did.
pub(super) enum FileStep {
    /// Sent (or failed the channel): go on.
    Went,
    /// The socket took nothing: go on once it has room.
    SocketFull,
    /// A loader is reading the next bytes in: go on when it wakes the
    /// channel.
    Loading,
}

/// The state of the front file region's loading.
#[derive(Default)]
pub(super) struct ColdFiles {
    /// This channel's producer of the loaders' ring, from its first cold
    /// window on.
    producer: Option<MultiProducer<LoadJob, BlockingWait>>,
    /// The loop that wakes this channel, from its first write on.
    wake: Option<Arc<Shared>>,
    /// Bytes from the front region's position known to be cached.
    warm: u64,
    /// The front region's last load, while it may still cover what comes.
    load: Option<Arc<Load>>,
    /// The load queued behind it, ahead of the socket.
    next: Option<Arc<Load>>,
    /// The channel stopped writing for `load`: the loop's next look at
    /// the channel (the loader's wake-up) writes on.
    waiting: bool,
}

impl ColdFiles {
    /// Notes the loop this channel's loads wake (once, before its first
    /// write, where a loader is set).
    pub(super) fn attach(&mut self, lp: &LoopLocal, loader: Option<&FileLoader>) {
        if self.wake.is_none() && loader.is_some() {
            self.wake = Some(lp.shared());
        }
    }

    /// How many bytes of the front file region may be read for sending
    /// now: those known cached, or any number (`u64::MAX`) without a
    /// loader. `None` while a loader reads the next ones in: stop writing,
    /// the loader wakes the channel.
    ///
    /// A long cold file is loaded a step ahead of the socket: as soon as
    /// the channel sends from a load, the next one is queued, so the disk
    /// reads on while the socket takes what is in. With that, and loads
    /// in order (`file_loader`), a cold 256 MiB download went at
    /// 0.94-1.02x the loop's own `sendfile` on the Intel Xeon VM; loading
    /// each window only once the socket reached it, and by reading it
    /// into a buffer, went at 0.62x.
    pub(super) fn ready(
        &mut self,
        loader: Option<&FileLoader>,
        front: Option<&FileRegion>,
        token: Token,
    ) -> Option<u64> {
        let (Some(loader), Some(region)) = (loader, front) else {
            return Some(u64::MAX);
        };
        let cold = self;
        let wake = cold.wake.as_ref().expect("attached before writing");
        // The current load, then (once past it) the one queued after it.
        while cold.warm == 0 {
            let Some(load) = &cold.load else {
                break;
            };
            match load.reached(region.position()) {
                Reached::Loaded { ready, left } => {
                    cold.warm = ready;
                    if cold.next.is_none() && region.remaining() > left {
                        let producer = cold.producer.get_or_insert_with(|| loader.producer());
                        cold.next = loader.submit(producer, region, left, false, wake, token);
                    }
                }
                Reached::Wait => {
                    cold.waiting = true;
                    return None;
                }
                Reached::Outside => cold.load = cold.next.take(),
            }
        }
        if cold.warm == 0 {
            let window = region.window(0, loader.window());
            cold.warm = window.remaining();
            // Unknown (a kernel before 6.5) counts as cached: sent as
            // without a loader.
            if window.is_cached() == Some(false) {
                let producer = cold.producer.get_or_insert_with(|| loader.producer());
                if let Some(load) = loader.submit(producer, region, 0, true, wake, token) {
                    cold.warm = 0;
                    cold.load = Some(load);
                    cold.waiting = true;
                    return None;
                }
            }
        }
        Some(cold.warm)
    }

    /// `n` bytes of the front file region went out; `done` when it is
    /// finished (what was known of it goes with it).
    pub(super) fn sent(&mut self, n: usize, done: bool) {
        if done {
            self.warm = 0;
            self.load = None;
            self.next = None;
        } else {
            self.warm = self.warm.saturating_sub(n as u64);
        }
    }

    /// Whether the channel stopped writing for a load: the loop is looking
    /// at it again (a loader's wake-up among the reasons), so it writes on.
    pub(super) fn take_wait(&mut self) -> bool {
        std::mem::take(&mut self.waiting)
    }
}
