//! The crate's error: which file, which operation, and what the system said.

use std::io;
use std::path::{Path, PathBuf};

/// An error sending or mapping a file.
///
/// Every variant names the file, so a server that logs it can say which
/// one; [`Error::io_error`] gives the system error where there is one.
///
/// ```
/// use gyre_zerocopy::{Error, FileRegion, SharedFile};
///
/// let path = std::env::temp_dir().join(format!("gyre-error-doc-{}", std::process::id()));
/// std::fs::write(&path, b"ten bytes!")?;
/// let file = SharedFile::open(&path)?;
/// // A region past the end is refused, naming the file.
/// match FileRegion::new(file, 5, 100) {
///     Err(e @ Error::PastEnd { .. }) => {
///         assert_eq!(e.path(), path.as_path());
///         assert!(e.to_string().contains("past the end"));
///     }
///     other => panic!("{other:?}"),
/// }
/// std::fs::remove_file(&path)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A system call failed.
    #[error("{op} on {}: {source}", path.display())]
    Io {
        /// What was being done: `open`, `fstat`, `sendfile`, `mmap`.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: io::Error,
    },
    /// A region reaches past the end of its file.
    #[error(
        "region at offset {offset} of {len} bytes lies past the end of {} ({file_len} bytes)",
        path.display()
    )]
    PastEnd {
        /// The file.
        path: PathBuf,
        /// Where the region starts.
        offset: u64,
        /// How long the region is.
        len: u64,
        /// How long the file is.
        file_len: u64,
    },
    /// The file shrank while a region of it was being sent: the transfer
    /// cannot complete, and the peer has received a short body.
    #[error(
        "{} was truncated to {file_len} bytes with {remaining} bytes from offset {position} still to send",
        path.display()
    )]
    Truncated {
        /// The file.
        path: PathBuf,
        /// The file offset the transfer had reached.
        position: u64,
        /// Bytes of the region not sent.
        remaining: u64,
        /// How long the file is now.
        file_len: u64,
    },
}

impl Error {
    pub(crate) fn io(op: &'static str, path: &Path, source: io::Error) -> Self {
        Error::Io {
            op,
            path: path.to_owned(),
            source,
        }
    }

    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            Error::Io { path, .. }
            | Error::PastEnd { path, .. }
            | Error::Truncated { path, .. } => path,
        }
    }

    /// The system error, if a system call failed.
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        let kind = match &e {
            Error::Io { source, .. } => source.kind(),
            Error::PastEnd { .. } => io::ErrorKind::InvalidInput,
            Error::Truncated { .. } => io::ErrorKind::UnexpectedEof,
        };
        io::Error::new(kind, e)
    }
}
