//! Files to sockets without copies.
//!
//! - [`FileRegion`]: part of a file sent with `sendfile(2)`, resumable after
//!   a partial write on a non-blocking socket, and strict about files that
//!   end early (an error, never a hang or a short body passed off as whole);
//!   it says whether its bytes are in the page cache
//!   ([`FileRegion::is_cached`]; read in, not in flight from the disk:
//!   [`FileRegion::is_read_in`]) and loads them there from a thread that
//!   may wait ([`FileRegion::load_into_cache`], or as a reader in order,
//!   [`FileRegion::load_into_cache_in_order`]), a window at a time
//!   ([`FileRegion::window`]), so a loop never sends from the disk.
//! - [`MmapRegion`]: a read-only map of part of a file, read as `&[u8]` or
//!   cut into [`Bytes`](bytes::Bytes) that keep the map alive.
//! - [`Splice`]: one direction of a socket -> pipe -> socket proxy with
//!   `splice(2)`, so proxied bytes never enter user space.
//! - [`send_vectored`] and [`GatheredWrite`]: several buffers in one
//!   `sendmsg`, never concatenated.
//! - [`Cork`]: a TCP socket corked for the length of a long send, so that
//!   a file leaves it in whole segments.
//!
//! The crate is a leaf: it knows nothing of the reactor, so the regions
//! work under any socket. `gyre-reactor` puts file regions in its channels'
//! outbound queues.
//!
//! ```
//! use gyre_zerocopy::{FileRegion, SharedFile};
//! # let dir = std::env::temp_dir().join(format!("gyre-doc-lib-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir)?;
//! # let path = dir.join("data");
//! std::fs::write(&path, vec![7u8; 1000])?;
//! let file = SharedFile::open(&path)?;
//! // Two regions of one open file.
//! let head = FileRegion::new(file.clone(), 0, 100)?;
//! let rest = FileRegion::new(file, 100, 900)?;
//! assert_eq!(head.len() + rest.len(), 1000);
//! // A region past the end is refused up front.
//! assert!(FileRegion::open_range(&path, 900, 101).is_err());
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Linux only: `sendfile`, `splice` and `MSG_MORE` are Linux's.

mod cork;
mod error;
mod file_region;
mod gather;
mod mmap_region;
mod pacing;
mod page_cache;
mod read_in;
mod region_pipe;
mod shared_file;
mod splice;

pub use cork::Cork;
pub use error::Error;
pub use file_region::FileRegion;
pub use gather::{send_vectored, GatheredWrite, SendFlags, MAX_IOVECS};
pub use mmap_region::MmapRegion;
pub use pacing::{leave_pacing, unpace_local};
pub use region_pipe::RegionPipe;
pub use shared_file::SharedFile;
pub use splice::{Pipe, Pumped, Splice};

/// The crate's README example, compiled and run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeExample;
