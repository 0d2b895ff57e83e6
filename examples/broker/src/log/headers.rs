//! Batch headers read from a segment's log file a chunk at a time, for
//! the walks from batch to batch (a fetch sizing its read, a search for an
//! offset or a time). Uses `batch`'s header parser and a `window` on the
//! file.
//!
//! One `pread` per header cost a fetch of 1 MiB of one-record batches
//! (110 bytes each) 9,500 system calls and 4.8 ms of the log writer's
//! time; read 16 KiB at a time, a walk takes one call per 16 KiB of small
//! batches and one per batch of large ones (BENCHMARKS.md, fifty-second
//! session).

use super::batch::{self, BatchHeader, HEADER_LEN};
use super::window::Window;
use std::cell::Cell;
use std::fs::File;
use std::io;

/// The most bytes read at once: headers of small batches, many to a
/// read; a large batch's header costs a read of its own either way.
const CHUNK: usize = 16 * 1024;

/// A batch this large or larger has its next header read alone.
const LARGE: usize = 2 * 1024;

thread_local! {
    /// Each thread's read buffer, reused walk after walk (so a walk
    /// neither allocates nor zeroes its window); a walk inside a walk
    /// (none today) finds it taken and starts an empty one.
    static BUFFER: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// Runs `f` with the headers of the batches in `log`'s first `end`
/// bytes, read at most `reach` bytes at a time (what the walk expects to
/// cover: a read of a few hundred bytes need not copy 16 KiB).
pub(super) fn walk<R>(
    log: &File,
    end: u64,
    reach: u64,
    f: impl FnOnce(&mut Headers<'_>) -> io::Result<R>,
) -> io::Result<R> {
    let mut headers = Headers {
        log,
        end,
        read: reach.clamp(HEADER_LEN as u64, CHUNK as u64) as usize,
        window: Window::with_buffer(BUFFER.take()),
        last_size: 0,
    };
    let result = f(&mut headers);
    BUFFER.set(headers.window.into_buffer());
    result
}

/// A window on a log file's first `end` bytes, from which headers are
/// parsed.
pub(super) struct Headers<'a> {
    log: &'a File,
    end: u64,
    /// The most bytes a read asks for.
    read: usize,
    window: Window,
    /// The size of the batch whose header was parsed last (0: none yet).
    last_size: usize,
}

impl Headers<'_> {
    /// Takes `header`, read elsewhere (a search's checked start), as the
    /// last one parsed: the size of the batches that follow.
    pub(super) fn seen(&mut self, header: &BatchHeader) {
        self.last_size = header.size;
    }

    /// The header of the batch at `pos`: from the bytes read last if they
    /// hold it, else read with what follows it.
    pub(super) fn at(&mut self, pos: u64) -> io::Result<BatchHeader> {
        // Batches as large as the last one was: a read that holds a
        // hundred of them, if they are small; if they are large, or not
        // known yet (a walk's first read, often its only one), the header
        // alone, as copying a large batch to reach the next header would
        // cost more than the call it saves.
        let want = match self.last_size {
            0 => HEADER_LEN,
            size if size >= LARGE => HEADER_LEN,
            size => (size * 128).min(self.read),
        };
        let bytes = self
            .window
            .bytes(self.log, pos, HEADER_LEN, want, self.end)?;
        let header = batch::parse_header(bytes)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        self.last_size = header.size;
        Ok(header)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Batches of every size around the chunk's, read back header by
    /// header: each as one `pread` of its own would read it.
    #[test]
    fn every_header_reads_as_a_read_of_its_own_would() {
        let dir = gyre_testkit::scratch_dir("headers-chunked");
        let path = dir.join("log");
        let mut bytes = Vec::new();
        let mut at = Vec::new();
        for (i, len) in [1, 40, 3_000, CHUNK - HEADER_LEN - 30, 10, CHUNK * 2, 7, 100]
            .into_iter()
            .cycle()
            .take(60)
            .enumerate()
        {
            at.push(bytes.len() as u64);
            let value = vec![b'a'; len];
            bytes.extend_from_slice(&batch::build(i as i64, 1_000 + i as i64, &[&value[..]]));
        }
        std::fs::write(&path, &bytes).unwrap();
        let file = File::open(&path).unwrap();
        let end = bytes.len() as u64;
        let own = |pos: u64| batch::parse_header(&bytes[pos as usize..]).unwrap();
        for reach in [0, 100, 4096, 1 << 20] {
            walk(&file, end, reach, |headers| {
                for (i, &pos) in at.iter().enumerate() {
                    let header = headers.at(pos)?;
                    assert_eq!(header, own(pos), "batch {i} at {pos}, reach {reach}");
                    assert_eq!(header.base_offset, i as i64);
                }
                // Backwards too (a new read each time it leaves the window).
                for &pos in at.iter().rev() {
                    assert_eq!(headers.at(pos)?, own(pos));
                }
                // A header the log's end cuts short is an error, not a panic.
                let past = headers.at(end - 20).unwrap_err();
                assert_eq!(past.kind(), io::ErrorKind::UnexpectedEof);
                Ok(())
            })
            .unwrap();
        }
        let short = walk(&file, 30, 1 << 20, |h| h.at(0)).unwrap_err();
        assert_eq!(short.kind(), io::ErrorKind::UnexpectedEof);
    }
}
