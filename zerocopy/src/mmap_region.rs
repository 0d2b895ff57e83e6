//! `MmapRegion`: a read-only memory map of part of a file, as a slice and
//! as `Bytes`.

use crate::error::Error;
use crate::shared_file::SharedFile;
use bytes::Bytes;
use memmap2::MmapOptions;
use std::ops::{Deref, RangeBounds};
use std::path::Path;

/// A read-only map of (part of) a file.
///
/// It reads as a `&[u8]` and hands out [`Bytes`] that point into the map
/// without copying; the map stays until the region and every `Bytes` cut
/// from it are dropped. Meant for index files and readers that want
/// random access to slices.
///
/// # Truncation
///
/// Touching a page of a mapped file that has since been truncated away
/// raises `SIGBUS`, which kills the process. That is why the constructors
/// are `unsafe`: the caller promises nobody shrinks the file while any
/// part of the map is alive. Files the program owns and only appends to
/// (a log's index, say) keep that promise.
///
/// ```
/// use gyre_zerocopy::MmapRegion;
/// # let dir = std::env::temp_dir().join(format!("gyre-doc-mmap-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// # let path = dir.join("index");
/// std::fs::write(&path, b"0123456789")?;
///
/// // SAFETY: nothing truncates this file while the map lives.
/// let region = unsafe { MmapRegion::open_range(&path, 2, 6)? };
/// assert_eq!(&region[..], b"234567");
/// let tail = region.slice(4..);
/// drop(region); // the map lives on in `tail`
/// assert_eq!(&tail[..], b"67");
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct MmapRegion {
    bytes: Bytes,
    offset: u64,
}

impl MmapRegion {
    /// Maps `offset .. offset + len` of `file`; an error if that reaches
    /// past the file's end.
    ///
    /// # Safety
    ///
    /// The file must not be truncated below `offset + len` while the region
    /// or any `Bytes` taken from it is alive (see [Truncation](#truncation)).
    pub unsafe fn map(file: &SharedFile, offset: u64, len: u64) -> Result<Self, Error> {
        let file_len = file.check_range(offset, len)?;
        if len == 0 {
            // mmap refuses empty maps; an empty region needs none.
            return Ok(MmapRegion {
                bytes: Bytes::new(),
                offset,
            });
        }
        let len_usize = usize::try_from(len).map_err(|_| Error::PastEnd {
            path: file.path().to_owned(),
            offset,
            len,
            file_len,
        })?;
        // SAFETY: the caller promises the file is not truncated under the
        // map, which is memmap2's requirement; the map is read-only, so we
        // never write through it, and memmap2 page-aligns the offset.
        let map = unsafe {
            MmapOptions::new()
                .offset(offset)
                .len(len_usize)
                .map(file.file())
        }
        .map_err(|e| Error::io("mmap", file.path(), e))?;
        Ok(MmapRegion {
            bytes: Bytes::from_owner(map),
            offset,
        })
    }

    /// Maps all of `file`.
    ///
    /// # Safety
    ///
    /// As for [`map`](MmapRegion::map): the file must not shrink while the
    /// map is alive.
    pub unsafe fn whole(file: &SharedFile) -> Result<Self, Error> {
        let len = file.len()?;
        // SAFETY: the caller's promise covers the whole file.
        unsafe { Self::map(file, 0, len) }
    }

    /// Opens `path` and maps `offset .. offset + len` of it.
    ///
    /// # Safety
    ///
    /// As for [`map`](MmapRegion::map).
    pub unsafe fn open_range(path: impl AsRef<Path>, offset: u64, len: u64) -> Result<Self, Error> {
        let file = SharedFile::open(path)?;
        // SAFETY: passed on from the caller.
        unsafe { Self::map(&file, offset, len) }
    }

    /// Opens `path` and maps all of it.
    ///
    /// # Safety
    ///
    /// As for [`map`](MmapRegion::map).
    pub unsafe fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        let file = SharedFile::open(path)?;
        // SAFETY: passed on from the caller.
        unsafe { Self::whole(&file) }
    }

    /// Where the region starts in its file.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The mapped bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes
    }

    /// All of the region as `Bytes`, sharing the map.
    pub fn to_bytes(&self) -> Bytes {
        self.bytes.clone()
    }

    /// Part of the region as `Bytes`, sharing the map (no copy). Panics if
    /// the range is out of bounds, like slicing.
    pub fn slice(&self, range: impl RangeBounds<usize>) -> Bytes {
        self.bytes.slice(range)
    }
}

impl Deref for MmapRegion {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

impl AsRef<[u8]> for MmapRegion {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}
