//! The layout of the numbers a loop hands the kernel to name its own
//! things: epoll tokens (a channel's slot and generation, a listener, the
//! waker) and io_uring `user_data` (an operation kind and its owner). Every
//! bit field is packed and unpacked here and nowhere else. A leaf: knows
//! only `mio::Token`.

use mio::Token;

/// The waker's token (epoll).
pub(crate) const WAKER: Token = Token(usize::MAX);
/// Marks a listener's token; the rest is its index.
const LISTENER_BIT: usize = 1 << 62;
/// Slot generations wrap here, so a channel token (generation above the low
/// 32 bits) fits the 60 bits io_uring's `user_data` leaves its owner.
pub(crate) const GENERATION_MASK: u32 = (1 << 28) - 1;
/// Where an operation's kind sits in `user_data`, above its owner.
#[cfg(any(feature = "io-uring", test))]
const KIND_SHIFT: u32 = 60;
#[cfg(any(feature = "io-uring", test))]
const ID_MASK: u64 = (1 << KIND_SHIFT) - 1;

/// The token of the channel in slot `index` at `generation`.
pub(crate) fn channel(index: u32, generation: u32) -> Token {
    Token(((generation as usize) << 32) | index as usize)
}

/// A channel token's slot index and generation.
pub(crate) fn split_channel(token: Token) -> (usize, u32) {
    (token.0 & 0xffff_ffff, (token.0 >> 32) as u32)
}

/// The token of listener `index`.
pub(crate) fn listener(index: usize) -> Token {
    Token(LISTENER_BIT | index)
}

/// The listener index a token names, if it names one.
pub(crate) fn as_listener(token: Token) -> Option<usize> {
    (token.0 & LISTENER_BIT != 0).then_some(token.0 & !LISTENER_BIT)
}

/// What an io_uring operation is, carried in its `user_data`.
#[cfg(any(feature = "io-uring", test))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    /// The eventfd other threads write to wake the loop.
    Wake = 1,
    /// An accept on a listener (owner: its index).
    Accept,
    /// A receive into a channel's read buffer.
    Recv,
    /// A gathered `sendmsg` of a channel's queued bytes.
    Send,
    /// A poll for a channel's socket to take more while a file region is
    /// at the front of its queue (the loop sends files itself, as an epoll
    /// loop does: `Channel::submit_write` says why).
    FileWritable,
    /// A poll for a connecting socket turning writable.
    Connect,
    /// A cancellation; its own completion carries nothing we need.
    Cancel,
    /// A zero-copy gathered send: a result, then a notification when the
    /// kernel no longer needs the buffers.
    SendZc,
}

#[cfg(any(feature = "io-uring", test))]
impl Op {
    const ALL: [Op; 8] = [
        Op::Wake,
        Op::Accept,
        Op::Recv,
        Op::Send,
        Op::FileWritable,
        Op::Connect,
        Op::Cancel,
        Op::SendZc,
    ];
}

/// Packs an operation and its owner (a channel token or a listener index).
#[cfg(any(feature = "io-uring", test))]
pub(crate) fn user_data(op: Op, owner: usize) -> u64 {
    ((op as u64) << KIND_SHIFT) | (owner as u64 & ID_MASK)
}

/// Unpacks [`user_data`]: the operation (`None` for a value we did not
/// make) and its owner.
#[cfg(any(feature = "io-uring", test))]
pub(crate) fn split_user_data(data: u64) -> (Option<Op>, usize) {
    let kind = data >> KIND_SHIFT;
    let op = Op::ALL.into_iter().find(|op| *op as u64 == kind);
    (op, (data & ID_MASK) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_round_trips() {
        let t = channel(7, GENERATION_MASK);
        assert_eq!(split_channel(t), (7, GENERATION_MASK));
        assert_eq!(as_listener(listener(3)), Some(3));
        assert_eq!(as_listener(t), None);
        for op in Op::ALL {
            assert_eq!(split_user_data(user_data(op, t.0)), (Some(op), t.0));
        }
        assert_eq!(split_user_data(0).0, None);
    }
}
