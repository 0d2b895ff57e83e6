//! Threads that read cold file regions into the page cache for the loops,
//! so that a loop's `sendfile` (or splice, or the TLS layer's read) never
//! waits on the disk: the public [`FileLoader`], its counters, and the
//! per-load ticket ([`Load`]) through which a loader tells the sender
//! waiting on it, on its loop, that its bytes are in ([`Waker`]). Uses
//! the ring buffer (the loaders are a Disruptor worker pool fed by every
//! loop), the zero-copy crate's page cache calls and the loop's shared
//! half (to wake a channel); knows nothing of channels.
//!
//! **Why.** A file send from bytes only on disk waits for the disk inside
//! the system call: 1.8 ms a cold MiB at the median and 8 ms at worst on
//! the project's Intel Xeon VM, during which every other connection of
//! that loop waits too. Netty has the same stall (its `DefaultFileRegion`
//! is `transferTo` on the event loop); nginx moves such reads to a thread
//! pool (`aio threads`). Here the channel asks, once per window of a file
//! it is about to send, whether the window is cached (`cachestat(2)`: one
//! system call that reads nothing; for windows from 256 KiB, also whether
//! its pages are read in and not still in flight from the disk for
//! another reader, `FileRegion::is_read_in`); only a cold window is
//! handed to a loader, and the channel stops writing (its other work, and
//! every other channel of the loop, go on) until the loader has read it
//! in. A loader meeting pages in flight waits for them on its own thread.
//!
//! **Keeping up with the disk.** A channel queues its next load as soon
//! as it sends from the last, so a long file is read a load ahead of the
//! socket. A loader waits for pages without copying them (`sendfile` into
//! `/dev/null`), and inside a long region it reads as a reader in order
//! would, on a file description of its own, so the kernel's sequential
//! readahead runs ahead of it (asking for each window first, and waiting,
//! left the disk idle between windows: 1.5 GiB/s against 2.0-2.2 on the
//! Intel Xeon VM). Measured by `zerocopy --only-cold-file`: a cold file
//! downloads at about the rate the loop's own `sendfile` reaches, while
//! a ping-pong neighbour on the same loop sees 0.04-0.11 of the p99 it
//! saw without a loader.
//!
//! **Order and wake-up.** A [`Load`] covers one window and the read-ahead
//! behind it. Its state sits under a mutex that the loop and one loader
//! each hold for a few instructions per window (never per message): the
//! loader moves `loaded_to` forward, and if the channel has said it waits
//! there, wakes it through the loop's inbox. Both sides decide under the
//! lock, so a wake-up cannot be lost between the channel's "not yet" and
//! the loader's "done". A woken channel whose token was reused by a newer
//! channel is not found (tokens carry a generation), so a late wake-up is
//! dropped.

use crate::event_loop::Shared;
use gyre_ringbuffer::{BlockingWait, Disruptor, MultiProducer, Stage};
use gyre_zerocopy::FileRegion;
use mio::Token;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// The default bytes a channel checks, and has loaded, at a time.
const DEFAULT_WINDOW: u64 = 4 << 20;

/// Loader threads that read file regions into the page cache before a
/// loop sends them: set one on a server's channels with
/// [`ChannelOptions::file_loader`](crate::ChannelOptions::file_loader),
/// and a channel sending a [`FileRegion`] whose next bytes are not in the
/// page cache hands them to a loader and sends them once they are in,
/// instead of waiting on the disk in its loop's `sendfile`. Cloning is a
/// reference-count bump; the threads stop when the last clone goes.
///
/// Each check is one `cachestat(2)` per window (4 MiB by default) of a
/// region, and for a window of 256 KiB or more that it finds cached, one
/// `mincore(2)` over a mapping made for the question (pages another
/// reader has in flight count as cached, and a send meeting them would
/// wait for the disk): about 20 µs per cached 4 MiB window on the Intel
/// Xeon VM, 1% of sending it. Where the kernel cannot say what is cached
/// (Linux before 6.5), files are sent as without a loader. While the
/// loaders' queue is full (more cold windows waiting than its capacity),
/// a window is sent without loading, and counted
/// ([`FileLoadCounts::refused`]).
///
/// ```
/// use gyre_reactor::{ChannelOptions, FileLoader};
///
/// // Two loader threads; each cold 4 MiB window is read in, and the
/// // 4 MiB behind it read ahead while the first goes out.
/// let loader = FileLoader::builder().threads(2).start()?;
/// let opts = ChannelOptions::default().file_loader(loader.clone());
/// assert!(opts.file_loader_set().is_some());
/// assert_eq!(loader.counts().windows_loaded, 0);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct FileLoader {
    inner: Arc<Inner>,
}

impl fmt::Debug for FileLoader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileLoader")
            .field("window", &self.inner.window)
            .field("read_ahead", &self.inner.read_ahead)
            .field("counts", &self.counts())
            .finish()
    }
}

struct Inner {
    /// Cloned once for each channel that meets a cold window (publishing
    /// takes `&mut`), under the lock only for the clone.
    producer: Mutex<MultiProducer<LoadJob, BlockingWait>>,
    window: u64,
    read_ahead: u64,
    counters: Arc<Counters>,
    disruptor: Option<Disruptor<LoadJob, BlockingWait>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(disruptor) = self.disruptor.take() {
            // The last clone may go on a loop thread, which must not wait
            // for a loader in the middle of a disk read.
            disruptor.shutdown_in_background();
        }
    }
}

/// What the loaders have done so far (a snapshot: see
/// [`FileLoader::counts`]).
///
/// ```
/// use gyre_reactor::FileLoader;
///
/// let loader = FileLoader::builder().threads(1).start()?;
/// let counts = loader.counts();
/// // Nothing sent yet: nothing loaded, nothing refused.
/// assert_eq!((counts.windows_loaded, counts.refused, counts.failed), (0, 0, 0));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileLoadCounts {
    /// Windows a channel found cold and a loader read in.
    pub windows_loaded: u64,
    /// Windows read ahead behind those.
    pub windows_read_ahead: u64,
    /// Bytes the loaders read, both kinds.
    pub bytes_loaded: u64,
    /// Cold windows sent without loading, the loaders' queue being full.
    pub refused: u64,
    /// Loads that failed (the file shrank, or the disk failed): the
    /// channel's own send then meets the error and reports it.
    pub failed: u64,
}

#[derive(Default)]
struct Counters {
    windows_loaded: AtomicU64,
    windows_read_ahead: AtomicU64,
    bytes_loaded: AtomicU64,
    refused: AtomicU64,
    failed: AtomicU64,
}

/// Settings for a [`FileLoader`]: [`FileLoader::builder`].
///
/// ```
/// use gyre_reactor::FileLoader;
/// let loader = FileLoader::builder()
///     .threads(4)
///     .window(8 << 20)
///     .read_ahead(16 << 20)
///     .queue(256)
///     .start()?;
/// # drop(loader);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct FileLoaderBuilder {
    threads: usize,
    window: u64,
    read_ahead: u64,
    queue: usize,
}

impl Default for FileLoaderBuilder {
    fn default() -> Self {
        FileLoaderBuilder {
            threads: 2,
            window: DEFAULT_WINDOW,
            read_ahead: DEFAULT_WINDOW,
            queue: 1024,
        }
    }
}

impl FileLoaderBuilder {
    /// Loader threads (2 by default: a disk serves a few reads at once,
    /// and each thread waits on one).
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    /// Bytes a channel checks and has loaded at a time (4 MiB by default;
    /// at least a page).
    pub fn window(mut self, bytes: u64) -> Self {
        self.window = bytes.max(4096);
        self
    }

    /// Bytes read in behind a cold window, while the window goes out (4 MiB
    /// by default; 0 reads none). A reader of a long cold file then finds
    /// its next window loaded, or loading, by the time it gets there.
    pub fn read_ahead(mut self, bytes: u64) -> Self {
        self.read_ahead = bytes;
        self
    }

    /// Cold windows that may wait for a loader at once, rounded up to a
    /// power of two (1024 by default): the loaders' ring. Past it, a
    /// window is sent without loading.
    pub fn queue(mut self, windows: usize) -> Self {
        self.queue = windows.max(2).next_power_of_two();
        self
    }

    /// Starts the loader threads (named `gyre-file-loader`).
    pub fn start(self) -> io::Result<FileLoader> {
        let counters = Arc::new(Counters::default());
        let graph = Disruptor::builder(self.queue, LoadJob::default)
            .wait_strategy(BlockingWait::new())
            .multi_producer()
            .map_err(io::Error::other)?;
        let workers = counters.clone();
        let graph = graph.then_owner(
            Stage::owner_pool_with_factory(self.threads, move |_| {
                let counters = workers.clone();
                move |job: &mut LoadJob, _seq: i64| run(job, &counters)
            })
            .name("gyre-file-loader"),
        );
        let (producer, disruptor) = graph.start().map_err(io::Error::other)?;
        Ok(FileLoader {
            inner: Arc::new(Inner {
                producer: Mutex::new(producer),
                window: self.window,
                read_ahead: self.read_ahead,
                counters,
                disruptor: Some(disruptor),
            }),
        })
    }
}

impl FileLoader {
    /// A builder with defaults that serve: 2 threads, 4 MiB windows, 4 MiB
    /// read ahead, 1024 windows queued at most.
    pub fn builder() -> FileLoaderBuilder {
        FileLoaderBuilder::default()
    }

    /// What the loaders have done so far.
    pub fn counts(&self) -> FileLoadCounts {
        let c = &self.inner.counters;
        FileLoadCounts {
            windows_loaded: c.windows_loaded.load(Ordering::Relaxed),
            windows_read_ahead: c.windows_read_ahead.load(Ordering::Relaxed),
            bytes_loaded: c.bytes_loaded.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
        }
    }

    /// Bytes a channel checks and has loaded at a time.
    pub(crate) fn window(&self) -> u64 {
        self.inner.window
    }

    /// A producer of the loaders' ring, for one channel.
    pub(crate) fn producer(&self) -> MultiProducer<LoadJob, BlockingWait> {
        lock(&self.inner.producer).clone()
    }

    /// Hands the window `skip` bytes into what is left of a region (and
    /// what lies `read_ahead` behind it, within the region) to a loader,
    /// which calls `wake` once it is in if the sender waits on it (`wait`:
    /// the sender stops now; otherwise the load runs ahead of it). `None`
    /// when the queue is full or the loaders are gone: the caller sends
    /// without loading.
    pub(crate) fn submit(
        &self,
        producer: &mut MultiProducer<LoadJob, BlockingWait>,
        rest: &FileRegion,
        skip: u64,
        wait: bool,
        wake: &Waker,
    ) -> Option<Arc<Load>> {
        let window = rest.window(skip, self.inner.window);
        let ahead = rest.window(skip + window.remaining(), self.inner.read_ahead);
        let load = Arc::new(Load {
            start: window.position(),
            state: Mutex::new(LoadState {
                loaded_to: window.position(),
                end: ahead.position() + ahead.remaining(),
                waiting: wait,
            }),
            wake: wake.clone(),
        });
        // Loaded in order (faster, the kernel reading ahead of the
        // loader) only where what the kernel reads past this load lands
        // well inside the region: there the channel goes by the next
        // load's word. Past a region's end it asks the page cache, and
        // readahead in flight there is found (`is_read_in`) only for
        // windows of 256 KiB or more: a fetch answer's next region may be
        // shorter, and would wait for it in its send.
        let end = skip + window.remaining() + ahead.remaining();
        let margin = 2 * (self.inner.window + self.inner.read_ahead);
        let in_order = rest.remaining().saturating_sub(end) >= margin;
        let published = producer.try_publish(|job| {
            job.in_order = in_order;
            job.load = Some(load.clone());
            job.ahead = (!ahead.is_done()).then_some(ahead);
            job.window = Some(window);
        });
        match published {
            Ok(_) => Some(load),
            Err(_) => {
                // A load ahead of the channel that did not fit is asked
                // for again when the channel gets there.
                if wait {
                    self.inner.counters.refused.fetch_add(1, Ordering::Relaxed);
                }
                None
            }
        }
    }
}

/// One slot of the loaders' ring: filled in place by a channel, emptied by
/// the loader that takes it.
#[derive(Default)]
pub(crate) struct LoadJob {
    window: Option<FileRegion>,
    ahead: Option<FileRegion>,
    load: Option<Arc<Load>>,
    /// Load as a reader in order ([`FileRegion::load_into_cache_in_order`]).
    in_order: bool,
}

/// A loader's work on one slot: the window, then (if anyone still waits
/// for this load) the read-ahead.
fn run(job: &mut LoadJob, counters: &Counters) {
    let (Some(window), Some(load)) = (job.window.take(), job.load.take()) else {
        return;
    };
    let ahead = job.ahead.take();
    let in_order = job.in_order;
    load_one(&window, in_order, counters);
    counters.windows_loaded.fetch_add(1, Ordering::Relaxed);
    load.reach(window.position() + window.remaining());
    let Some(ahead) = ahead else {
        return;
    };
    // Only this job holds the ticket: the channel closed, or went past
    // (or off) this file; nobody will send what it would read.
    if Arc::strong_count(&load) == 1 {
        return load.reach(u64::MAX);
    }
    load_one(&ahead, in_order, counters);
    counters.windows_read_ahead.fetch_add(1, Ordering::Relaxed);
    load.reach(u64::MAX);
}

fn load_one(region: &FileRegion, in_order: bool, counters: &Counters) {
    let loaded = if in_order {
        region.load_into_cache_in_order()
    } else {
        region.load_into_cache()
    };
    match loaded {
        Ok(()) => {
            counters
                .bytes_loaded
                .fetch_add(region.remaining(), Ordering::Relaxed);
        }
        Err(e) => {
            // The channel's send of these bytes meets the same error and
            // fails the channel with it; here it is only counted.
            counters.failed.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(error = %e, "a file loader could not read a window in");
        }
    }
}

/// One cold window and the read-ahead behind it, between the channel that
/// waits for it and the loader that reads it in.
pub(crate) struct Load {
    start: u64,
    state: Mutex<LoadState>,
    wake: Waker,
}

/// Who a load wakes once the bytes its sender waits for are in.
#[derive(Clone)]
pub(crate) enum Waker {
    /// A channel, through its loop's inbox: the channel writes on.
    Channel(Arc<Shared>, Token),
    /// A pipeline layer that sends files itself (the TLS layer, which
    /// reads and encrypts them), through a call that queues it an event.
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    Call(Arc<dyn Fn() + Send + Sync>),
}

impl Waker {
    fn wake(&self) {
        match self {
            Waker::Channel(lp, token) => lp.notify_channel(*token),
            Waker::Call(call) => call(),
        }
    }
}

struct LoadState {
    /// File offset up to which the bytes are read in (from `start`).
    loaded_to: u64,
    /// Where the load, read-ahead included, ends.
    end: u64,
    /// The channel waits for `loaded_to` to move.
    waiting: bool,
}

/// What a load says about a file offset a channel is about to send from.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Reached {
    /// Read in: `ready` bytes from the offset may go now, and the load
    /// (read-ahead included) ends `left` bytes on.
    Loaded { ready: u64, left: u64 },
    /// Still being read in: the channel is woken when it is.
    Wait,
    /// Not this load's: ask the page cache.
    Outside,
}

impl Load {
    /// Where `pos` stands in this load; a `Wait` asks for a wake-up.
    pub(crate) fn reached(&self, pos: u64) -> Reached {
        let mut state = lock(&self.state);
        if pos < self.start || pos >= state.end {
            Reached::Outside
        } else if pos < state.loaded_to {
            Reached::Loaded {
                ready: state.loaded_to.min(state.end) - pos,
                left: state.end - pos,
            }
        } else {
            state.waiting = true;
            Reached::Wait
        }
    }

    /// The loader has read in up to `to`: wakes the channel if it waits.
    fn reach(&self, to: u64) {
        let wake = {
            let mut state = lock(&self.state);
            state.loaded_to = state.loaded_to.max(to);
            std::mem::take(&mut state.waiting)
        };
        if wake {
            self.wake.wake();
        }
    }
}

/// The lock, through a poisoning: the state is plain numbers, whole
/// after any panic.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn load(start: u64, end: u64, waiting: bool) -> (Load, Arc<AtomicUsize>) {
        let woken = Arc::new(AtomicUsize::new(0));
        let count = woken.clone();
        let load = Load {
            start,
            state: Mutex::new(LoadState {
                loaded_to: start,
                end,
                waiting,
            }),
            wake: Waker::Call(Arc::new(move || {
                count.fetch_add(1, Ordering::SeqCst);
            })),
        };
        (load, woken)
    }

    #[test]
    fn a_load_says_what_is_in_and_wakes_a_waiting_sender_once_per_wait() {
        let (load, woken) = load(100, 300, false);
        assert_eq!(load.reached(99), Reached::Outside, "before it");
        assert_eq!(load.reached(300), Reached::Outside, "past it");
        // Nobody waits yet: moving on wakes nobody.
        load.reach(150);
        assert_eq!(woken.load(Ordering::SeqCst), 0);
        assert_eq!(
            load.reached(120),
            Reached::Loaded {
                ready: 30,
                left: 180
            }
        );
        // Past what is in: the sender waits, and the next step wakes it.
        assert_eq!(load.reached(150), Reached::Wait);
        load.reach(200);
        assert_eq!(woken.load(Ordering::SeqCst), 1);
        load.reach(250);
        assert_eq!(woken.load(Ordering::SeqCst), 1, "no wait, no wake-up");
        // The end (`u64::MAX`) caps what is ready at the load's end.
        load.reach(u64::MAX);
        assert_eq!(
            load.reached(260),
            Reached::Loaded {
                ready: 40,
                left: 40
            }
        );
    }

    /// A loader moving a load on a byte at a time while a sender reads it
    /// byte by byte, waiting whenever it catches up: every wait ends in a
    /// wake-up (a lost one would leave the sender waiting for good).
    #[test]
    fn no_wake_up_is_lost_between_a_sender_and_its_loader() {
        const END: u64 = 20_000;
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let tx = Mutex::new(tx);
        let load = Arc::new(Load {
            start: 0,
            state: Mutex::new(LoadState {
                loaded_to: 0,
                end: END,
                waiting: false,
            }),
            wake: Waker::Call(Arc::new(move || {
                let _ = lock(&tx).send(());
            })),
        });
        let loader = {
            let load = load.clone();
            std::thread::spawn(move || {
                for to in 1..=END {
                    load.reach(to);
                    if to % 64 == 0 {
                        std::thread::yield_now();
                    }
                }
            })
        };
        let (mut pos, mut waits) = (0, 0);
        while pos < END {
            match load.reached(pos) {
                Reached::Loaded { ready, .. } => pos += ready,
                Reached::Wait => {
                    waits += 1;
                    rx.recv_timeout(std::time::Duration::from_secs(10))
                        .unwrap_or_else(|_| panic!("a wake-up was lost at {pos}"));
                }
                Reached::Outside => panic!("left the load at {pos}"),
            }
        }
        loader.join().unwrap();
        assert_eq!(pos, END);
        // Each wait took exactly one wake-up: none are left over.
        assert!(rx.try_recv().is_err(), "a wake-up without a wait");
        eprintln!("{waits} waits");
    }

    #[test]
    fn a_load_made_for_a_waiting_sender_wakes_it_at_its_first_step() {
        let (load, woken) = load(0, 10, true);
        load.reach(5);
        assert_eq!(woken.load(Ordering::SeqCst), 1);
    }
}
