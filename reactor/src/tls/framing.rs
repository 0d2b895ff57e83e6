//! Where TLS record boundaries fall in the ciphertext fed to rustls: the
//! TLS layer may hand a session to the kernel only between two records
//! (rustls must hold no part of one), and rustls does not say whether it
//! does. Plain data over the record header (RFC 8446, section 5.1: type,
//! version, a 16-bit length); a leaf.

/// A record header's length.
const HEADER: usize = 5;

/// Follows the records in a byte stream fed to it in any pieces.
#[derive(Debug, Default)]
pub(super) struct RecordFraming {
    /// Header bytes of the record being read, while fewer than five.
    header: [u8; HEADER],
    have: usize,
    /// Body bytes of the current record still to come.
    body_left: usize,
}

impl RecordFraming {
    /// Follows `bytes`, the next ones of the stream.
    pub(super) fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.body_left > 0 {
                let n = self.body_left.min(bytes.len());
                self.body_left -= n;
                bytes = &bytes[n..];
                continue;
            }
            let n = (HEADER - self.have).min(bytes.len());
            self.header[self.have..self.have + n].copy_from_slice(&bytes[..n]);
            self.have += n;
            bytes = &bytes[n..];
            if self.have == HEADER {
                self.have = 0;
                self.body_left = u16::from_be_bytes([self.header[3], self.header[4]]) as usize;
            }
        }
    }

    /// Whether the bytes fed so far end exactly at a record's end.
    pub(super) fn at_boundary(&self) -> bool {
        self.have == 0 && self.body_left == 0
    }
}

#[cfg(test)]
mod tests {
    use super::RecordFraming;

    fn record(len: u16) -> Vec<u8> {
        let mut r = vec![23, 3, 3];
        r.extend_from_slice(&len.to_be_bytes());
        r.extend(std::iter::repeat_n(0xAB, len as usize));
        r
    }

    #[test]
    fn boundaries_are_found_whatever_the_pieces() {
        let mut stream = record(300);
        stream.extend(record(0));
        stream.extend(record(17));
        let ends = [305, 310, 332];
        for piece in [1, 2, 3, 4, 5, 6, 7, 64, 1000] {
            let mut framing = RecordFraming::default();
            let mut fed = 0;
            for chunk in stream.chunks(piece) {
                framing.feed(chunk);
                fed += chunk.len();
                assert_eq!(
                    framing.at_boundary(),
                    ends.contains(&fed),
                    "piece {piece}, at {fed}"
                );
            }
        }
    }
}
