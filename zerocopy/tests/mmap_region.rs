//! `MmapRegion`: slices at any offset, `Bytes` that outlive the region,
//! empty maps, and regions past the end.

mod common;

use common::{pattern, TempDir};
use gyre_zerocopy::{Error, MmapRegion, SharedFile};

#[test]
fn maps_ranges_at_unaligned_offsets() {
    let dir = TempDir::new("mmap");
    let data = pattern(100_000, 4);
    let file = SharedFile::open(dir.file("f", &data)).unwrap();
    for (offset, len) in [
        (0, 100_000),
        (1, 10),
        (4095, 4098),
        (8192, 4096),
        (99_999, 1),
    ] {
        // SAFETY: the test owns the file and never truncates it.
        let region = unsafe { MmapRegion::map(&file, offset, len) }.unwrap();
        let (o, l) = (offset as usize, len as usize);
        assert_eq!(region.offset(), offset);
        assert_eq!(region.len(), l);
        assert!(region.as_slice() == &data[o..o + l]);
        assert!(region.to_bytes() == data[o..o + l]);
    }
}

#[test]
fn bytes_keep_the_map_alive_after_the_region_and_file_are_dropped() {
    let dir = TempDir::new("mmap-live");
    let data = pattern(20_000, 5);
    let path = dir.file("f", &data);
    // SAFETY: the test owns the file and never truncates it.
    let region = unsafe { MmapRegion::open(&path) }.unwrap();
    let middle = region.slice(5_000..15_000);
    let base = middle.as_ptr();
    drop(region);
    assert!(middle == data[5_000..15_000]);
    // No copy: the slice points into the map it came from.
    assert_eq!(middle.slice(10..20).as_ptr(), base.wrapping_add(10));
}

#[test]
fn empty_and_past_end_regions() {
    let dir = TempDir::new("mmap-edge");
    let path = dir.file("ten", b"0123456789");
    // SAFETY: the test owns the file and never truncates it.
    let empty = unsafe { MmapRegion::open_range(&path, 10, 0) }.unwrap();
    assert!(empty.is_empty());
    // SAFETY: as above.
    let err = unsafe { MmapRegion::open_range(&path, 8, 3) }.unwrap_err();
    assert!(
        matches!(
            err,
            Error::PastEnd {
                file_len: 10,
                offset: 8,
                len: 3,
                ..
            }
        ),
        "{err:?}"
    );
}
