//! Failpoints: places where a test build panics on purpose, so that tests
//! can show what a panic on the broker's own threads does (a request is
//! answered `UNKNOWN_SERVER_ERROR`, a writer panic or a failed fsync
//! stops the broker unclean).
//!
//! Compiled in only with the `failpoints` feature (the test suite builds
//! with every feature); without it `hit` is an empty inline function.
//! With it, a name is armed by its subject: a group or a topic named
//! `gyre-failpoint-<place>`, which no real client names by chance, makes
//! `hit` panic there, or `io_error` fail with EIO once for each of the
//! topic's partition folders, or each file named so (an fsync the disk
//! refused). Uses nothing else in the crate.

/// The prefix of a subject that arms a failpoint.
pub const PREFIX: &str = "gyre-failpoint-";

/// Panics if `subject` (a group id, a topic name) is `gyre-failpoint-`
/// followed by `place`.
#[cfg(feature = "failpoints")]
pub(crate) fn hit(place: &str, subject: &str) {
    if subject.strip_prefix(PREFIX) == Some(place) {
        panic!("failpoint {place} hit by {subject:?}");
    }
}

/// Does nothing: failpoints are compiled in only with the `failpoints`
/// feature.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub(crate) fn hit(_place: &str, _subject: &str) {}

/// An I/O error (EIO) the first time it is asked for a `path` one of
/// whose folders is `gyre-failpoint-<place>` (a topic's folder, for a
/// partition's files); success after that, as Linux reports a failed
/// writeback to one fsync and lets the next succeed over the lost pages.
#[cfg(feature = "failpoints")]
pub(crate) fn io_error(place: &str, path: &std::path::Path) -> std::io::Result<()> {
    use std::collections::HashSet;
    use std::sync::Mutex;
    static FAILED: Mutex<Option<HashSet<std::path::PathBuf>>> = Mutex::new(None);
    let armed = path
        .components()
        .any(|c| c.as_os_str().to_str().and_then(|s| s.strip_prefix(PREFIX)) == Some(place));
    let mut failed = FAILED.lock().unwrap_or_else(|e| e.into_inner());
    match armed
        && failed
            .get_or_insert_with(HashSet::new)
            .insert(path.to_owned())
    {
        true => Err(std::io::Error::from_raw_os_error(libc::EIO)),
        false => Ok(()),
    }
}

/// Does nothing without the `failpoints` feature.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub(crate) fn io_error(_place: &str, _path: &std::path::Path) -> std::io::Result<()> {
    Ok(())
}

/// [`io_error`] for an open file, by the folder the kernel has it in (a
/// partition's: its files' first fsync fails, whichever thread asks).
#[cfg(feature = "failpoints")]
pub(crate) fn io_error_for_file(place: &str, file: &std::fs::File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let path = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()));
    match path.as_deref().ok().and_then(std::path::Path::parent) {
        Some(folder) => io_error(place, folder),
        None => Ok(()),
    }
}

/// Does nothing without the `failpoints` feature.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub(crate) fn io_error_for_file(_place: &str, _file: &std::fs::File) -> std::io::Result<()> {
    Ok(())
}

/// For tests: a fresh scratch folder for `tag` and, made inside it, the
/// folder that arms `place` (`gyre-failpoint-<place>`); remove the first
/// when done.
#[cfg(all(test, feature = "failpoints"))]
pub(crate) fn armed_scratch(tag: &str, place: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let root = gyre_testkit::scratch_root().join(format!("gyre-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let armed = root.join(format!("{PREFIX}{place}"));
    std::fs::create_dir_all(&armed).unwrap();
    (root, armed)
}

#[cfg(all(test, feature = "failpoints"))]
mod tests {
    #[test]
    fn only_a_folder_named_for_the_place_fails_io() {
        use std::path::Path;
        assert!(super::io_error("fsync", Path::new("/d/topics/orders/0")).is_ok());
        assert!(super::io_error("fsync", Path::new("/d/topics/gyre-failpoint-writer/0")).is_ok());
        let armed = Path::new("/d/topics/gyre-failpoint-fsync/0");
        let e = super::io_error("fsync", armed).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EIO));
        assert!(super::io_error("fsync", armed).is_ok(), "reported once");
    }

    #[test]
    fn only_the_named_place_of_an_armed_subject_panics() {
        super::hit("writer", "orders");
        super::hit("writer", "gyre-failpoint-coordinator");
        let caught = std::panic::catch_unwind(|| super::hit("writer", "gyre-failpoint-writer"));
        assert!(caught.is_err());
    }
}
