//! Where the line decoder's next `\n` is: a scan that finds every newline in
//! a 64-byte block at once and keeps them as a bit mask, so a buffer of short
//! lines is searched once per 64 bytes rather than once per line.
//!
//! Calling `memchr` once per line costs a call, its set-up and a partial
//! vector compare for each line, which for 64-byte lines was more than half
//! of the decoder's time; here the per-line cost is a `trailing_zeros`.
//! Bytes before [`NewlineScan::searched`] have been looked at; the newlines
//! among them that are still in the buffer are the set bits of the mask,
//! bit `i` standing for offset `searched - 64 + i`.

/// A block is 64 bytes: one bit of a `u64` per byte.
const BLOCK: usize = 64;

/// One bit per byte of a block.
type Mask = u64;

/// Scan position and the newlines found but not yet consumed.
#[derive(Debug, Clone, Default)]
pub(crate) struct NewlineScan {
    /// No unconsumed newline lies before this offset except those in `mask`.
    pub(crate) searched: usize,
    /// Newlines in `[searched - 64, searched)`; bit `i` is offset
    /// `searched - 64 + i`. Zero when the last step was not a whole block.
    mask: Mask,
}

impl NewlineScan {
    /// The offset of the first newline in `src`, taken: the caller splits
    /// the buffer through it before the next call. `None` when there is
    /// none (then everything has been searched).
    ///
    /// `src` must be the buffer of the previous calls with bytes only
    /// appended, or with the front split off through the newlines taken;
    /// otherwise call [`NewlineScan::reset`] first.
    #[inline]
    pub(crate) fn take(&mut self, src: &[u8]) -> Option<usize> {
        if self.mask == 0 {
            self.refill(src)?;
            if self.mask == 0 {
                // Found by the tail search at `searched`.
                let newline = self.searched;
                self.searched = 0;
                return Some(newline);
            }
        }
        let newline = self.searched + self.mask.trailing_zeros() as usize - BLOCK;
        self.mask &= self.mask - 1;
        self.searched -= newline + 1;
        Some(newline)
    }

    /// With the mask empty: scan on until a block has a newline (the mask
    /// is then set), or the tail search finds one (the mask stays empty and
    /// `searched` is its offset); `None` when there is none.
    #[inline]
    fn refill(&mut self, src: &[u8]) -> Option<()> {
        loop {
            let rest = src.get(self.searched..)?;
            match rest.first_chunk::<BLOCK>() {
                Some(block) => {
                    self.mask = newline_mask(block);
                    self.searched += BLOCK;
                    if self.mask != 0 {
                        return Some(());
                    }
                }
                None => {
                    // Less than a block left: no mask, plain search.
                    return match memchr::memchr(b'\n', rest) {
                        Some(i) => {
                            self.searched += i;
                            Some(())
                        }
                        None => {
                            self.searched = src.len();
                            None
                        }
                    };
                }
            }
        }
    }

    /// Forget everything: the buffer was cleared or cut other than at a
    /// newline from [`NewlineScan::take`].
    #[inline]
    pub(crate) fn reset(&mut self) {
        self.searched = 0;
        self.mask = 0;
    }
}

/// Bit `i` set where `block[i] == b'\n'`.
#[cfg(target_arch = "x86_64")]
#[inline]
fn newline_mask(block: &[u8; BLOCK]) -> Mask {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
    };
    let mut mask: Mask = 0;
    for (i, lane) in block.chunks_exact(16).enumerate() {
        // SAFETY: SSE2 is part of the x86_64 baseline, so these intrinsics
        // are always available; `lane` is exactly 16 readable bytes and
        // `_mm_loadu_si128` has no alignment requirement.
        let bits = unsafe {
            let bytes = _mm_loadu_si128(lane.as_ptr().cast::<__m128i>());
            _mm_movemask_epi8(_mm_cmpeq_epi8(bytes, _mm_set1_epi8(b'\n' as i8)))
        };
        mask |= Mask::from(bits as u16) << (i * 16);
    }
    mask
}

/// Bit `i` set where `block[i] == b'\n'`.
#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn newline_mask(block: &[u8; BLOCK]) -> Mask {
    block
        .iter()
        .enumerate()
        .fold(0, |mask, (i, &b)| mask | (Mask::from(b == b'\n') << i))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every newline offset, found and consumed the way the decoder does.
    fn lines(input: &[u8]) -> Vec<usize> {
        let mut buf = input.to_vec();
        let mut scan = NewlineScan::default();
        let mut at = 0;
        let mut out = Vec::new();
        while let Some(newline) = scan.take(&buf) {
            out.push(at + newline);
            buf.drain(..=newline);
            at += newline + 1;
        }
        assert_eq!(scan.searched, buf.len());
        out
    }

    #[test]
    fn mask_marks_exactly_the_newlines() {
        let mut block = [b'x'; BLOCK];
        for i in [0, 15, 16, 31, 32, 47, 48, 63] {
            block[i] = b'\n';
        }
        assert_eq!(
            newline_mask(&block),
            (1 << 0)
                | (1 << 15)
                | (1 << 16)
                | (1 << 31)
                | (1 << 32)
                | (1 << 47)
                | (1 << 48)
                | (1 << 63)
        );
        assert_eq!(
            newline_mask(&[0xff; BLOCK]),
            0,
            "high bytes are not newlines"
        );
    }

    #[test]
    fn finds_every_newline_whatever_the_spacing() {
        for len in [0, 1, 63, 64, 65, 127, 128, 200, 1000] {
            for step in [1, 2, 3, 7, 63, 64, 65, 100] {
                let input: Vec<u8> = (0..len)
                    .map(|i| if i % step == step - 1 { b'\n' } else { b'a' })
                    .collect();
                let expected: Vec<usize> = (0..len).filter(|i| input[*i] == b'\n').collect();
                assert_eq!(lines(&input), expected, "len {len} step {step}");
            }
        }
    }

    #[test]
    fn appended_input_is_searched_from_where_it_stopped() {
        let mut scan = NewlineScan::default();
        let mut buf = vec![b'a'; 100];
        assert_eq!(scan.take(&buf), None);
        assert_eq!(scan.searched, 100);
        buf.extend_from_slice(&[b'b'; 40]);
        buf.push(b'\n');
        assert_eq!(scan.take(&buf), Some(140));
        assert_eq!(scan.searched, 0);
    }
}
