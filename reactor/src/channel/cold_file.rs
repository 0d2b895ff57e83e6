//! A channel's side of sending files through a [`FileLoader`]: before the
//! loop sends from the file region at the queue's front, how much of it is
//! known to be in the page cache; a cold window goes to a loader and the
//! channel stops writing until the loader wakes it. Both transports ask
//! here (their file sends are the one `send_front_file`). Uses the
//! loader's ticket and the loop's shared half (for the wake-up).
//!
//! [`FileLoader`]: crate::FileLoader

use super::Channel;
use crate::event_loop::{LoopLocal, Shared};
use crate::file_loader::{Load, LoadJob, Reached};
use crate::outbound::Outbound;
use gyre_ringbuffer::{BlockingWait, MultiProducer};
use std::sync::Arc;

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

impl Channel {
    /// Notes the loop this channel's loads wake (once, before its first
    /// write, where a loader is set).
    pub(super) fn attach_file_loads(&mut self, lp: &LoopLocal) {
        if self.cold.wake.is_none() && self.opts.file_loader.is_some() {
            self.cold.wake = Some(lp.shared());
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
    pub(super) fn front_file_ready(&mut self) -> Option<u64> {
        let Some(loader) = self.opts.file_loader.as_ref() else {
            return Some(u64::MAX);
        };
        let Some(Outbound::File(region)) = self.out.front() else {
            return Some(u64::MAX);
        };
        let cold = &mut self.cold;
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
                        cold.next = loader.submit(producer, region, left, false, wake, self.token);
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
                if let Some(load) = loader.submit(producer, region, 0, true, wake, self.token) {
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
    pub(super) fn front_file_sent(&mut self, n: usize, done: bool) {
        if done {
            self.cold.warm = 0;
            self.cold.load = None;
            self.cold.next = None;
        } else {
            self.cold.warm = self.cold.warm.saturating_sub(n as u64);
        }
    }

    /// Whether the channel stopped writing for a load: the loop is looking
    /// at it again (a loader's wake-up among the reasons), so it writes on.
    pub(super) fn take_file_wait(&mut self) -> bool {
        std::mem::take(&mut self.cold.waiting)
    }
}
