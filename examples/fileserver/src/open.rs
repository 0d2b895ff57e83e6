//! Opening the file a request names without making the loop wait on the
//! disk. The loop opens beneath the root's descriptor with `openat2(2)`
//! and `RESOLVE_CACHED`, which succeeds only if every part of the path is
//! in the kernel's lookup cache (so nothing is read: the case of every
//! file served recently), and with `RESOLVE_BENEATH`, which refuses any
//! path that would leave the root. Anything else (a path the kernel would
//! have to look up on disk, a symlink it would have to judge, a kernel
//! before 5.12) goes to an opener thread, which resolves and opens the
//! file as the server always did (`resolve`, `canonicalize` and all) and
//! sends the answer back to the connection's loop as a user event. The
//! opener threads are a worker pool on a `gyre-ringbuffer` ring that every
//! loop feeds. Where the server has precompressed files and the request
//! takes one of their encodings, the sibling (`app.js.br`) is opened after
//! the file, by the same rules, and sent in its place. Uses the path rules
//! (`resolve`), the encodings, the caching setting and the statuses.

use crate::encoding::{Accepted, Encoding};
use crate::expires::Expires;
use crate::resolve::{io_status, relative, resolve};
use crate::status::Status;
use gyre_reactor::{ChannelHandle, Outbound, UserEvent};
use gyre_ringbuffer::{BlockingWait, Disruptor, MultiProducer, Stage};
use gyre_zerocopy::SharedFile;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A file opened for a response.
pub struct Opened {
    /// The open file.
    pub file: SharedFile,
    /// Its length when opened.
    pub len: u64,
    /// Its modification time when opened, in whole seconds since the
    /// epoch (0 for one before it): its `Last-Modified` and half its
    /// `ETag`.
    pub modified: u64,
    /// The path as requested, under the root (its `index.html` for a
    /// folder): what the content type is taken from.
    pub name: PathBuf,
    /// The precompressed sibling opened in the file's place, if any:
    /// `file`, `len` and `modified` are then the sibling's.
    pub encoding: Option<Encoding>,
}

/// What the loop could do with a request's path at once.
pub enum OpenNow {
    /// Opened, or refused with this status.
    Done(Result<Opened, Status>),
    /// Only an opener thread can say: the path relative to the root, and
    /// the encodings whose siblings it should look for.
    Later(PathBuf, Accepted),
}

/// The folder a server serves, and the threads that open what its loops
/// cannot open without waiting on the disk: made once per server, shared
/// by every connection's [`HttpHandler`](crate::HttpHandler).
///
/// ```
/// use gyre_fileserver::ServedFiles;
/// use std::sync::Arc;
/// # let made = std::env::temp_dir().join(format!("gyre-doc-served-{}", std::process::id()));
/// # std::fs::create_dir_all(&made)?;
/// # let root = made.clone();
/// let root = Arc::new(root.canonicalize()?);
/// // One opener thread; `0` opens every file on the loop.
/// let files = Arc::new(ServedFiles::new(root, 1)?);
/// # drop(files);
/// # std::fs::remove_dir_all(&made)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct ServedFiles {
    /// The root, canonical.
    root: Arc<PathBuf>,
    /// A descriptor of the root, which the loop opens beneath.
    dir: File,
    opener: Option<Opener>,
    /// The precompressed siblings looked for, best first.
    precompressed: Vec<Encoding>,
    /// What files' answers say of how long they may be kept.
    expires: Option<Expires>,
}

impl ServedFiles {
    /// Serves the canonical folder `root` (`Path::canonicalize`, as
    /// containment is checked against it), with `openers` threads for the
    /// opens that may wait on the disk (0: every open on the loop, as it
    /// comes). Fails if the folder cannot be opened or the threads
    /// started.
    pub fn new(root: Arc<PathBuf>, openers: usize) -> std::io::Result<ServedFiles> {
        let dir = open_dir(&root)?;
        let opener = match openers {
            0 => None,
            n => Some(Opener::start(root.clone(), n)?),
        };
        Ok(ServedFiles {
            root,
            dir,
            opener,
            precompressed: Vec::new(),
            expires: None,
        })
    }

    /// Sends a file's precompressed sibling (`app.js.br` for `app.js`)
    /// in its place, to a request whose `Accept-Encoding` takes its
    /// coding: the first of `encodings` (the server's preference) that the
    /// request takes and the file has. nginx's `gzip_static`, Caddy's
    /// `precompressed`.
    ///
    /// ```
    /// use gyre_fileserver::{Encoding, ServedFiles};
    /// use std::sync::Arc;
    /// # let root = std::env::temp_dir().join(format!("gyre-doc-precompressed-{}", std::process::id()));
    /// # std::fs::create_dir_all(&root)?;
    /// let files = ServedFiles::new(Arc::new(root.canonicalize()?), 1)?
    ///     .with_precompressed(vec![Encoding::Brotli, Encoding::Gzip]);
    /// assert_eq!(files.precompressed(), [Encoding::Brotli, Encoding::Gzip]);
    /// # std::fs::remove_dir_all(&root)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn with_precompressed(mut self, encodings: Vec<Encoding>) -> Self {
        self.precompressed = encodings;
        self
    }

    /// The precompressed siblings looked for, best first.
    pub fn precompressed(&self) -> &[Encoding] {
        &self.precompressed
    }

    /// Puts `Expires` and `Cache-Control` on files' answers as `expires`
    /// says (nginx's `expires`; `None`, the default, sends neither).
    ///
    /// ```
    /// use gyre_fileserver::{Expires, ServedFiles};
    /// use std::sync::Arc;
    /// # let root = std::env::temp_dir().join(format!("gyre-doc-expires-{}", std::process::id()));
    /// # std::fs::create_dir_all(&root)?;
    /// let files = ServedFiles::new(Arc::new(root.canonicalize()?), 1)?
    ///     .with_expires(Some("30d".parse().expect("a time")));
    /// assert!(matches!(files.expires(), Some(Expires::After(_))));
    /// # std::fs::remove_dir_all(&root)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn with_expires(mut self, expires: Option<Expires>) -> Self {
        self.expires = expires;
        self
    }

    /// What files' answers say of how long they may be kept.
    pub fn expires(&self) -> Option<Expires> {
        self.expires
    }

    /// Opens the file `raw_path` names (or the sibling of the first of
    /// `accepted` it has) if that needs no wait, or says that an opener
    /// thread must ([`ask`](Self::ask)).
    pub(crate) fn open_now(&self, raw_path: &[u8], accepted: Accepted) -> OpenNow {
        let rel = match relative(raw_path) {
            Ok(rel) => rel,
            Err(status) => return OpenNow::Done(Err(status)),
        };
        if self.opener.is_none() {
            return OpenNow::Done(open_resolved(&self.root, &rel, accepted));
        }
        match open_from_cache(&self.root, self.dir.as_fd(), &rel, accepted) {
            Some(done) => OpenNow::Done(done),
            None => OpenNow::Later(rel, accepted),
        }
    }

    /// Has an opener thread open `rel` (or the sibling of the first of
    /// `accepted` it has) and send the answer, an [`OpenAnswer`] in a
    /// [`UserEvent::Custom`], through `reply`. Refused with 503 while the
    /// openers' queue is full.
    pub(crate) fn ask(
        &self,
        rel: PathBuf,
        accepted: Accepted,
        reply: ChannelHandle<Outbound>,
    ) -> Result<(), Status> {
        let opener = self.opener.as_ref().ok_or(Status::InternalError)?;
        let mut producer = opener.producer.lock().unwrap_or_else(|e| e.into_inner());
        producer
            .try_publish(|job| {
                job.relative = Some(rel);
                job.accepted = accepted;
                job.reply = Some(reply);
            })
            .map(|_| ())
            .map_err(|_| Status::ServiceUnavailable)
    }
}

/// An opener thread's answer, delivered on the connection's loop.
pub struct OpenAnswer(pub Result<Opened, Status>);

/// The opener threads.
struct Opener {
    producer: Mutex<MultiProducer<OpenJob, BlockingWait>>,
    disruptor: Option<Disruptor<OpenJob, BlockingWait>>,
}

/// One slot of the openers' ring.
#[derive(Default)]
struct OpenJob {
    relative: Option<PathBuf>,
    accepted: Accepted,
    reply: Option<ChannelHandle<Outbound>>,
}

impl Opener {
    fn start(root: Arc<PathBuf>, threads: usize) -> std::io::Result<Opener> {
        let graph = Disruptor::builder(1024, OpenJob::default)
            .wait_strategy(BlockingWait::new())
            .multi_producer()
            .map_err(std::io::Error::other)?;
        let graph = graph.then_owner(
            Stage::owner_pool_with_factory(threads, move |_| {
                let root = root.clone();
                move |job: &mut OpenJob, _seq: i64| {
                    let (Some(rel), Some(reply)) = (job.relative.take(), job.reply.take()) else {
                        return;
                    };
                    let answer = OpenAnswer(open_resolved(&root, &rel, job.accepted));
                    // A connection that closed meanwhile takes no answer.
                    let _ = reply.fire_user_event(UserEvent::Custom(Box::new(answer)));
                }
            })
            .name("gyre-http-open"),
        );
        let (producer, disruptor) = graph.start().map_err(std::io::Error::other)?;
        Ok(Opener {
            producer: Mutex::new(producer),
            disruptor: Some(disruptor),
        })
    }
}

impl Drop for Opener {
    fn drop(&mut self) {
        if let Some(disruptor) = self.disruptor.take() {
            // Possibly on a loop thread, and an opener may be waiting on
            // the disk.
            disruptor.shutdown_in_background();
        }
    }
}

/// The root's descriptor, for opening beneath it.
fn open_dir(root: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(root)
}

/// The file at `rel` under the root, opened by the full rules (symlinks
/// resolved, containment checked on the real path), or in its place the
/// sibling of the first of `accepted` it has (by the same rules): may
/// wait on the disk.
fn open_resolved(root: &Path, rel: &Path, accepted: Accepted) -> Result<Opened, Status> {
    let (real, index) = resolve(root, rel)?;
    let (file, len, modified) = open(&real)?;
    let mut name = root.join(rel);
    if index {
        name.push("index.html");
    }
    let plain = Opened {
        file,
        len,
        modified,
        name,
        encoding: None,
    };
    for encoding in accepted.iter() {
        let Ok(sibling) = plain
            .name
            .strip_prefix(root)
            .map(|r| with_suffix(r, encoding))
        else {
            break;
        };
        // A sibling that is missing, outside the root or not a regular
        // file is no sibling: the file itself goes out.
        if let Ok((file, len, modified)) = resolve(root, &sibling).and_then(|(real, index)| {
            if index {
                return Err(Status::NotFound);
            }
            open(&real)
        }) {
            return Ok(Opened {
                file,
                len,
                modified,
                encoding: Some(encoding),
                ..plain
            });
        }
    }
    Ok(plain)
}

/// `rel` with `encoding`'s suffix after its last part (`a/app.js` →
/// `a/app.js.br`).
fn with_suffix(rel: &Path, encoding: Encoding) -> PathBuf {
    let mut name = rel.as_os_str().to_owned();
    name.push(encoding.suffix());
    PathBuf::from(name)
}

/// Opens `path` for sending, without ever blocking on the file itself:
/// non-blocking, so a FIFO (whose open would wait for a writer) or a
/// device opens at once, and anything but a regular file is then refused
/// with 404.
fn open(path: &Path) -> Result<(SharedFile, u64, u64), Status> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| io_status(&e))?;
    let meta = file.metadata().map_err(|e| io_status(&e))?;
    if !meta.file_type().is_file() {
        return Err(Status::NotFound);
    }
    Ok((
        SharedFile::from_file(file, path),
        meta.len(),
        modified(&meta),
    ))
}

/// The file at `rel` beneath `dir` (the root), or in its place the
/// sibling of the first of `accepted` it has, if the kernel can open them
/// from its caches alone: `None` when it cannot say without reading the
/// disk or judging a symlink (the opener threads then apply the full
/// rules).
fn open_from_cache(
    root: &Path,
    dir: BorrowedFd<'_>,
    rel: &Path,
    accepted: Accepted,
) -> Option<Result<Opened, Status>> {
    let file = match open_beneath(dir, rel)? {
        Ok(file) => file,
        Err(status) => return Some(Err(status)),
    };
    // An open descriptor's inode is in memory: `fstat` reads nothing.
    let meta = match file.metadata() {
        Ok(meta) => meta,
        Err(e) => return Some(Err(io_status(&e))),
    };
    let mut name = root.join(rel);
    let (file, meta) = if meta.is_dir() {
        let index = match open_beneath(file.as_fd(), Path::new("index.html"))? {
            Ok(index) => index,
            Err(status) => return Some(Err(status)),
        };
        name.push("index.html");
        match index.metadata() {
            Ok(meta) => (index, meta),
            Err(e) => return Some(Err(io_status(&e))),
        }
    } else {
        (file, meta)
    };
    if !meta.file_type().is_file() {
        return Some(Err(Status::NotFound));
    }
    for encoding in accepted.iter() {
        let sibling = with_suffix(name.strip_prefix(root).ok()?, encoding);
        // A sibling the kernel knows is missing (a cached negative entry)
        // is no sibling; one it cannot judge from its caches sends the
        // whole request to an opener.
        let Ok(file) = open_beneath(dir, &sibling)? else {
            continue;
        };
        let Ok(meta) = file.metadata() else {
            continue;
        };
        if meta.file_type().is_file() {
            return Some(Ok(Opened {
                file: SharedFile::from_file(file, root.join(&sibling)),
                len: meta.len(),
                modified: modified(&meta),
                name,
                encoding: Some(encoding),
            }));
        }
    }
    Some(Ok(Opened {
        file: SharedFile::from_file(file, &name),
        len: meta.len(),
        modified: modified(&meta),
        name,
        encoding: None,
    }))
}

/// A file's modification time in whole seconds since the epoch, from the
/// `fstat` already made (0 for a time before the epoch).
fn modified(meta: &std::fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    u64::try_from(meta.mtime()).unwrap_or(0)
}

/// `openat2(dir, rel, O_RDONLY | O_NONBLOCK, RESOLVE_BENEATH |
/// RESOLVE_NO_MAGICLINKS | RESOLVE_CACHED)`: the file, a status the
/// kernel's answer settles, or `None` where only a full lookup can say.
fn open_beneath(dir: BorrowedFd<'_>, rel: &Path) -> Option<Result<File, Status>> {
    let mut bytes = rel.as_os_str().as_bytes().to_vec();
    if bytes.is_empty() {
        bytes.push(b'.');
    }
    // `relative` refused NULs, so this cannot fail.
    let path = std::ffi::CString::new(bytes).ok()?;
    // SAFETY: `open_how` is three integers, for which all zeroes is valid
    // (and is what the kernel requires of fields not set).
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS | libc::RESOLVE_CACHED;
    // SAFETY: openat2 reads the NUL-terminated path and the `open_how` of
    // the given size, both owned by this frame for the call; `dir` is an
    // open descriptor borrowed for it.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            path.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd >= 0 {
        // SAFETY: a descriptor openat2 just returned, owned by no one
        // else.
        return Some(Ok(unsafe { File::from_raw_fd(fd as i32) }));
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        // Not in the caches (EAGAIN), a symlink out of the root or an
        // absolute one (EXDEV: the full rules decide), a kernel without
        // openat2 or one of its flags.
        Some(libc::EAGAIN | libc::EXDEV | libc::ENOSYS | libc::EINVAL | libc::E2BIG) => None,
        _ => Some(Err(io_status(&e))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(tag: &str) -> (PathBuf, Arc<PathBuf>) {
        let base =
            gyre_testkit::scratch_root().join(format!("gyre-open-{tag}-{}", std::process::id()));
        let root = base.join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("a.txt"), b"abc").unwrap();
        std::fs::write(root.join("sub/index.html"), b"<p>").unwrap();
        std::fs::write(base.join("secret"), b"s").unwrap();
        let _ = std::os::unix::fs::symlink(base.join("secret"), root.join("out"));
        let _ = std::os::unix::fs::symlink("a.txt", root.join("in"));
        let root = Arc::new(root.canonicalize().unwrap());
        (base, root)
    }

    /// Whatever the loop could not settle, settled as an opener would.
    fn settle(files: &ServedFiles, raw: &[u8]) -> Result<Opened, Status> {
        match files.open_now(raw, Accepted::NONE) {
            OpenNow::Done(done) => done,
            OpenNow::Later(rel, accepted) => open_resolved(&files.root, &rel, accepted),
        }
    }

    #[test]
    fn a_cached_path_opens_on_the_spot_and_the_rules_hold_either_way() {
        let (base, root) = site("rules");
        let files = ServedFiles::new(root.clone(), 1).unwrap();
        // Just written: in the kernel's caches, so opened at once where
        // the kernel has openat2 (5.12 and later).
        let first = files.open_now(b"/a.txt", Accepted::NONE);
        if let OpenNow::Done(done) = first {
            let opened = done.unwrap();
            assert_eq!((opened.len, opened.name.clone()), (3, root.join("a.txt")));
        }
        let index = settle(&files, b"/sub/").unwrap();
        assert_eq!(index.name, root.join("sub/index.html"));
        assert_eq!(settle(&files, b"/in").unwrap().len, 3, "a symlink inside");
        assert_eq!(settle(&files, b"/out").err(), Some(Status::Forbidden));
        assert_eq!(settle(&files, b"/../secret").err(), Some(Status::Forbidden));
        assert_eq!(settle(&files, b"/missing").err(), Some(Status::NotFound));
        assert_eq!(settle(&files, b"/").err(), Some(Status::NotFound));
        assert_eq!(settle(&files, b"/%zz").err(), Some(Status::BadRequest));
        let _ = std::fs::remove_dir_all(base);
    }

    #[test]
    fn a_precompressed_sibling_opens_in_the_files_place_by_the_same_rules() {
        let (base, root) = site("siblings");
        std::fs::write(root.join("a.txt.br"), b"BR").unwrap();
        std::fs::write(root.join("sub/index.html.gz"), b"GZ!").unwrap();
        // A sibling that leaves the root, and one that is a folder.
        let _ = std::os::unix::fs::symlink(base.join("secret"), root.join("in.gz"));
        std::fs::create_dir_all(root.join("a.txt.gz")).unwrap();
        for openers in [1, 0] {
            let files = ServedFiles::new(root.clone(), openers).unwrap();
            let take = |raw: &[u8], codings: &str| {
                let head = format!("GET / HTTP/1.1\r\nAccept-Encoding: {codings}\r\n\r\n");
                let offered = [Encoding::Brotli, Encoding::Gzip];
                let accepted = crate::encoding::accepted(head.as_bytes(), &offered);
                match files.open_now(raw, accepted) {
                    OpenNow::Done(done) => done,
                    OpenNow::Later(rel, accepted) => open_resolved(&files.root, &rel, accepted),
                }
                .map(|o| (o.len, o.encoding, o.name))
            };
            let a = root.join("a.txt");
            assert_eq!(
                take(b"/a.txt", "gzip, br"),
                Ok((2, Some(Encoding::Brotli), a.clone()))
            );
            assert_eq!(
                take(b"/a.txt", "br;q=0, gzip"),
                Ok((3, None, a.clone())),
                "a folder is no sibling"
            );
            assert_eq!(take(b"/a.txt", "identity"), Ok((3, None, a)));
            let index = root.join("sub/index.html");
            assert_eq!(take(b"/sub/", "gzip"), Ok((3, Some(Encoding::Gzip), index)));
            // The sibling of a symlink inside is looked for beside the
            // link; one that leaves the root is not sent.
            assert_eq!(take(b"/in", "gzip").map(|o| o.1), Ok(None));
            assert_eq!(take(b"/missing", "gzip").err(), Some(Status::NotFound));
        }
        let _ = std::fs::remove_dir_all(base);
    }

    #[test]
    fn without_openers_every_open_is_settled_on_the_spot() {
        let (base, root) = site("none");
        let files = ServedFiles::new(root, 0).unwrap();
        for raw in [&b"/a.txt"[..], b"/out", b"/missing", b"/sub"] {
            assert!(matches!(
                files.open_now(raw, Accepted::NONE),
                OpenNow::Done(_)
            ));
        }
        let _ = std::fs::remove_dir_all(base);
    }
}
