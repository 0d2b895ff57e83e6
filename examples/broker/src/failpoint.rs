//! Failpoints: places where a test build panics on purpose, so that tests
//! can show what a panic on the broker's own threads does (a request
//! closes its connection, a writer panic stops the broker unclean).
//!
//! Compiled in only with the `failpoints` feature (the test suite builds
//! with every feature); without it [`hit`] is an empty inline function.
//! With it, a name is armed by its subject: a group or a topic named
//! `gyre-failpoint-<place>`, which no real client names by chance. Uses
//! nothing else in the crate.

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

#[cfg(all(test, feature = "failpoints"))]
mod tests {
    #[test]
    fn only_the_named_place_of_an_armed_subject_panics() {
        super::hit("writer", "orders");
        super::hit("writer", "gyre-failpoint-coordinator");
        let caught = std::panic::catch_unwind(|| super::hit("writer", "gyre-failpoint-writer"));
        assert!(caught.is_err());
    }
}
