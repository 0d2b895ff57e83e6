//! A sender's side of sending files through a [`FileLoader`]: before a
//! loop sends from the file region at hand, how much of it is known to be
//! in the page cache; a cold window goes to a loader and the sender stops
//! until the loader wakes it. Channels ask here for the region at their
//! queue's front (both transports' file sends are the one
//! `send_front_file`, which says what a send did as a [`FileStep`]), and
//! the TLS layer for the region it reads and encrypts. Plain state its
//! sender holds: uses the loader, its ticket and its waker.
//!
//! [`FileLoader`]: crate::FileLoader

use crate::file_loader::{FileLoader, Load, LoadJob, Reached, Waker};
use gyre_ringbuffer::{BlockingWait, MultiProducer};
use gyre_zerocopy::FileRegion;
use std::sync::Arc;

/// Windows from this length on are asked whether they are read in, not
/// only cached: pages another sender's load (or the kernel's readahead)
/// has in flight count as cached, and the send would wait for them. For
/// shorter ones the question costs more than the wait it spares: 1.5 µs
/// more per window (the mapping and `mincore`) on the Intel Xeon VM,
/// against at most the read of 256 KiB already in flight.
const READ_IN_ASKED_FROM: u64 = 256 * 1024;

/// Whether `window` has pages not yet in memory for a send: not cached,
/// or (from [`READ_IN_ASKED_FROM`] on) cached but still in flight from
/// the disk. Not known (a kernel before 6.5) is not cold.
fn is_cold(window: &FileRegion) -> bool {
    let known = if window.remaining() >= READ_IN_ASKED_FROM {
        window.is_read_in()
    } else {
        window.is_cached()
    };
    known == Some(false)
}

/// What one send from the file region at the queue's front did.
pub(crate) enum FileStep {
    /// Sent (or failed the channel): go on.
    Went,
    /// The socket took nothing: go on once it has room.
    SocketFull,
    /// A loader is reading the next bytes in: go on when it wakes the
    /// channel.
    Loading,
}

/// The state of the loading of the file region a sender is sending.
#[derive(Default)]
pub(crate) struct ColdFiles {
    /// This sender's producer of the loaders' ring, from its first cold
    /// window on.
    producer: Option<MultiProducer<LoadJob, BlockingWait>>,
    /// Who a load wakes: set before the first file is sent.
    wake: Option<Waker>,
    /// Bytes from the front region's position known to be cached.
    warm: u64,
    /// The front region's last load, while it may still cover what comes.
    load: Option<Arc<Load>>,
    /// The load queued behind it, ahead of the socket.
    next: Option<Arc<Load>>,
    /// The sender stopped for `load`: its next look (the loader's wake-up)
    /// sends on.
    waiting: bool,
}

impl ColdFiles {
    /// Whether the sender has yet to say who its loads wake.
    pub(crate) fn needs_waker(&self) -> bool {
        self.wake.is_none()
    }

    /// Who this sender's loads wake.
    pub(crate) fn set_waker(&mut self, wake: Waker) {
        self.wake = Some(wake);
    }

    /// How many bytes of `front`, the file region the sender is at, may
    /// be read for sending now: those known cached, or any number
    /// (`u64::MAX`) without a loader or a region. `None` while a loader
    /// reads the next ones in: the sender stops, and the loader wakes it.
    ///
    /// A long cold file is loaded a step ahead of the socket: as soon as
    /// the channel sends from a load, the next one is queued, so the disk
    /// reads on while the socket takes what is in. With that, and loads
    /// in order (`file_loader`), a cold 256 MiB download went at
    /// 0.94-1.02x the loop's own `sendfile` on the Intel Xeon VM; loading
    /// each window only once the socket reached it, and by reading it
    /// into a buffer, went at 0.62x.
    pub(crate) fn ready(
        &mut self,
        loader: Option<&FileLoader>,
        front: Option<&FileRegion>,
    ) -> Option<u64> {
        let (Some(loader), Some(region)) = (loader, front) else {
            return Some(u64::MAX);
        };
        let wake = self
            .wake
            .as_ref()
            .expect("a waker is set before the first file");
        // The current load, then (once past it) the one queued after it.
        while self.warm == 0 {
            let Some(load) = &self.load else {
                break;
            };
            match load.reached(region.position()) {
                Reached::Loaded { ready, left } => {
                    self.warm = ready;
                    if self.next.is_none() && region.remaining() > left {
                        let producer = self.producer.get_or_insert_with(|| loader.producer());
                        self.next = loader.submit(producer, region, left, false, wake);
                    }
                }
                Reached::Wait => {
                    self.waiting = true;
                    return None;
                }
                Reached::Outside => self.load = self.next.take(),
            }
        }
        if self.warm == 0 {
            let window = region.window(0, loader.window());
            self.warm = window.remaining();
            // Unknown (a kernel before 6.5) counts as cached: sent as
            // without a loader.
            if is_cold(&window) {
                let producer = self.producer.get_or_insert_with(|| loader.producer());
                if let Some(load) = loader.submit(producer, region, 0, true, wake) {
                    self.warm = 0;
                    self.load = Some(load);
                    self.waiting = true;
                    return None;
                }
            }
        }
        Some(self.warm)
    }

    /// `n` bytes of the front file region went out; `done` when it is
    /// finished (what was known of it goes with it).
    pub(crate) fn sent(&mut self, n: usize, done: bool) {
        if done {
            self.warm = 0;
            self.load = None;
            self.next = None;
        } else {
            self.warm = self.warm.saturating_sub(n as u64);
        }
    }

    /// Whether the sender has stopped for a load and not yet looked
    /// again (the TLS layer asks; a channel is woken by its loop).
    #[cfg(feature = "tls")]
    pub(crate) fn is_waiting(&self) -> bool {
        self.waiting
    }

    /// Whether the sender stopped for a load: it is looking again (a
    /// loader's wake-up among the reasons), so it sends on.
    pub(crate) fn take_wait(&mut self) -> bool {
        std::mem::take(&mut self.waiting)
    }
}
