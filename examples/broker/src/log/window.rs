//! A window on a file: the bytes read last and where they start, so a
//! walk over many small batches reads the file a window at a time rather
//! than with a call per batch. The header walks (`headers`) and the
//! checking walk (`scan`) read through it. Uses only the standard library.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// The bytes last read from a file, and where in it they start.
#[derive(Debug, Default)]
pub(super) struct Window {
    start: u64,
    /// How much of `buf` the last read filled.
    len: usize,
    buf: Vec<u8>,
}

impl Window {
    /// A window that reads into `buf` (a buffer kept from an earlier
    /// walk: it grows to the largest read and is never zeroed again).
    pub(super) fn with_buffer(buf: Vec<u8>) -> Self {
        Window {
            start: 0,
            len: 0,
            buf,
        }
    }

    /// The buffer back, for the next walk.
    pub(super) fn into_buffer(self) -> Vec<u8> {
        self.buf
    }

    /// The `len` bytes at `pos` of `file`'s first `end` bytes: from the
    /// window if it holds them, else read with what follows them, `read`
    /// bytes in all (never fewer than `len`, never past `end`). Bytes that
    /// would end past `end` are an `UnexpectedEof` error.
    pub(super) fn bytes(
        &mut self,
        file: &File,
        pos: u64,
        len: usize,
        read: usize,
        end: u64,
    ) -> io::Result<&[u8]> {
        let held = pos >= self.start && pos + len as u64 <= self.start + self.len as u64;
        if !held {
            let left = end.saturating_sub(pos);
            if (len as u64) > left {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("{len} bytes at {pos} would end past the file's {end}"),
                ));
            }
            let n = (read.max(len) as u64).min(left) as usize;
            if self.buf.len() < n {
                self.buf.resize(n, 0);
            }
            file.read_exact_at(&mut self.buf[..n], pos)?;
            (self.start, self.len) = (pos, n);
        }
        let at = (pos - self.start) as usize;
        Ok(&self.buf[at..at + len])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_come_from_the_window_or_a_read_and_never_past_the_end() {
        let dir = gyre_testkit::scratch_dir("window");
        let path = dir.join("file");
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let file = File::open(&path).unwrap();
        let mut w = Window::default();
        let end = data.len() as u64;
        // Read 1,000 bytes at a time; slices inside, across and before
        // the window.
        for (pos, len) in [
            (0, 10),
            (500, 400),
            (990, 20),
            (3, 5),
            (9_990, 10),
            (0, 3_000),
        ] {
            let got = w.bytes(&file, pos, len, 1_000, end).unwrap().to_vec();
            assert_eq!(got, &data[pos as usize..pos as usize + len], "{pos}+{len}");
        }
        let past = w.bytes(&file, 9_995, 10, 1_000, end).unwrap_err();
        assert_eq!(past.kind(), io::ErrorKind::UnexpectedEof);
        let buf = w.into_buffer();
        assert!(buf.len() >= 3_000, "the buffer kept its largest read");
    }
}
