//! `SharedFile`: an open file, with its path, that many regions share.

use crate::error::Error;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// An open, read-only file that any number of [`FileRegion`]s and
/// [`MmapRegion`]s can share; cloning it is a reference-count bump, and the
/// file closes when the last clone goes.
///
/// It keeps the path it was opened by, so errors can name the file.
///
/// ```
/// use gyre_zerocopy::SharedFile;
/// # let dir = std::env::temp_dir().join(format!("gyre-doc-shared-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// # let path = dir.join("hello.txt");
/// std::fs::write(&path, b"hello")?;
/// let file = SharedFile::open(&path)?;
/// assert_eq!(file.len()?, 5);
/// assert_eq!(file.path(), path);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// [`FileRegion`]: crate::FileRegion
/// [`MmapRegion`]: crate::MmapRegion
#[derive(Clone, Debug)]
pub struct SharedFile {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    file: File,
    path: PathBuf,
}

impl SharedFile {
    /// Opens `path` for reading.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| Error::io("open", path, e))?;
        Ok(Self::from_file(file, path))
    }

    /// Wraps a file that is already open; `path` is only used to name it in
    /// errors.
    pub fn from_file(file: File, path: impl Into<PathBuf>) -> Self {
        SharedFile {
            inner: Arc::new(Inner {
                file,
                path: path.into(),
            }),
        }
    }

    /// The path the file was opened by.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The open file.
    pub fn file(&self) -> &File {
        &self.inner.file
    }

    /// The file's length now (it may change under us: another process can
    /// append to or truncate it).
    #[allow(clippy::len_without_is_empty)] // a file's length is a query, not a size
    pub fn len(&self) -> Result<u64, Error> {
        self.inner
            .file
            .metadata()
            .map(|m| m.len())
            .map_err(|e| Error::io("fstat", &self.inner.path, e))
    }
}

impl SharedFile {
    /// Checks that `offset .. offset + len` lies within the file as it is
    /// now; returns the file's length.
    pub(crate) fn check_range(&self, offset: u64, len: u64) -> Result<u64, Error> {
        let file_len = self.len()?;
        if offset.checked_add(len).is_none_or(|end| end > file_len) {
            return Err(Error::PastEnd {
                path: self.path().to_owned(),
                offset,
                len,
                file_len,
            });
        }
        Ok(file_len)
    }
}

impl AsFd for SharedFile {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.file.as_fd()
    }
}
