//! Failpoints: places where a test build panics on purpose, so that tests
//! can show what a panic on the broker's own threads does (a request
//! closes its connection, a writer panic or a failed fsync stops the
//! broker unclean).
//!
//! Compiled in only with the `failpoints` feature (the test suite builds
//! with every feature); without it [`hit`] is an empty inline function.
//! With it, a name is armed by its subject: a group or a topic named
//! `gyre-failpoint-<place>`, which no real client names by chance, makes
//! [`hit`] panic there, or [`io_error`] fail with EIO for the topic's
//! files (an fsync the disk refused). Uses nothing else in the crate.

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

/// An I/O error (EIO) if a folder of `path` is `gyre-failpoint-<place>`
/// (a topic's folder, for a partition's files).
#[cfg(feature = "failpoints")]
pub(crate) fn io_error(place: &str, path: &std::path::Path) -> std::io::Result<()> {
    let armed = path
        .components()
        .any(|c| c.as_os_str().to_str().and_then(|s| s.strip_prefix(PREFIX)) == Some(place));
    match armed {
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

/// [`io_error`] for an open file, by the path the kernel has for it.
#[cfg(feature = "failpoints")]
pub(crate) fn io_error_for_file(place: &str, file: &std::fs::File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    match std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())) {
        Ok(path) => io_error(place, &path),
        Err(_) => Ok(()),
    }
}

/// Does nothing without the `failpoints` feature.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub(crate) fn io_error_for_file(_place: &str, _file: &std::fs::File) -> std::io::Result<()> {
    Ok(())
}

#[cfg(all(test, feature = "failpoints"))]
mod tests {
    #[test]
    fn only_a_folder_named_for_the_place_fails_io() {
        use std::path::Path;
        assert!(super::io_error("fsync", Path::new("/d/topics/orders/0")).is_ok());
        assert!(super::io_error("fsync", Path::new("/d/topics/gyre-failpoint-writer/0")).is_ok());
        let e = super::io_error("fsync", Path::new("/d/topics/gyre-failpoint-fsync/0")).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EIO));
    }

    #[test]
    fn only_the_named_place_of_an_armed_subject_panics() {
        super::hit("writer", "orders");
        super::hit("writer", "gyre-failpoint-coordinator");
        let caught = std::panic::catch_unwind(|| super::hit("writer", "gyre-failpoint-writer"));
        assert!(caught.is_err());
    }
}
