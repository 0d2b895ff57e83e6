//! A channel task's io_uring completions: what each finished receive,
//! write, poll for room for a file, connect or cancellation means for the
//! channel and its pipeline. The operations themselves, and the memory they
//! hold while in flight, are the channel's (`uring`); this is the part that
//! reaches the pipeline, so it sits above it, beside the task. The
//! completions of a channel using readiness (UDP, and TLS that may go over
//! to kernel TLS) are polls: it reads and writes as on epoll.

use super::task::ChannelTask;
use super::uring::os_error;
use super::State;
use crate::chain::InboundChain;
use crate::datagram::FromSocket;
use crate::event_loop::LoopLocal;
use crate::outbound::Outbound;
use crate::path::HeadPath;
use crate::token::Op;
use crate::uring;

impl<L: InboundChain<R, S>, S: Into<Outbound>, R: FromSocket> ChannelTask<L, S, R> {
    /// Runs one completion.
    pub(super) fn on_completion(&mut self, lp: &mut LoopLocal, kind: Op, res: i32, flags: u32) {
        match kind {
            Op::SendZc => {
                if uring::notif(flags) {
                    // The kernel is done with the buffers: now the send
                    // counts, and its `Bytes` may go.
                    let res = self.ch.ring.zc_result.take().unwrap_or(-libc::ECANCELED);
                    self.ch.ring.write = None;
                    self.on_write(lp, res);
                } else if uring::more(flags) {
                    self.ch.ring.zc_result = Some(res);
                } else {
                    // No notification follows (the send failed outright).
                    self.ch.ring.write = None;
                    self.on_write(lp, res);
                }
            }
            Op::Recv if self.ch.uses_readiness() => self.on_readiness(lp, Op::Recv, res),
            Op::Send if self.ch.uses_readiness() => self.on_readiness(lp, Op::Send, res),
            Op::Recv => self.on_recv(lp, res, flags),
            Op::Send => {
                self.ch.ring.write = None;
                self.on_write(lp, res);
            }
            Op::FileWritable => self.on_file_writable(lp, res),
            Op::Connect => {
                self.ch.ring.connect = false;
                if self.ch.state == State::Connecting && !self.ch.ring.cancelled {
                    self.finish_connect(lp);
                    if self.ch.state == State::Connecting {
                        // Spurious: still connecting.
                        self.ch.arm_connect(lp.ring());
                    }
                }
            }
            _ => {}
        }
        if self.ch.state == State::Closed && !self.ch.ring.in_flight() {
            // The kernel is done with our memory and the socket.
            self.ch.stream = None;
            self.ch.release_buffers();
        }
    }

    /// A readiness channel's (UDP, or one that may go over to kernel TLS)
    /// poll for readable (`Op::Recv`) or writable (`Op::Send`) completed:
    /// read or write now, then poll again.
    fn on_readiness(&mut self, lp: &mut LoopLocal, kind: Op, res: i32) {
        if kind == Op::Recv {
            self.ch.ring.recv = false;
        } else {
            self.ch.ring.write = None;
        }
        if !self.poll_ready(lp, res) {
            return;
        }
        if kind == Op::Recv {
            self.uring_reread(lp);
            return;
        }
        self.ch.socket_writable = true;
        self.ch.write_out(lp);
        if self.ch.close_drained() {
            self.output_delivered(lp);
            return;
        }
        self.ch.arm_writable(lp.ring());
        self.settle(lp);
    }

    fn on_recv(&mut self, lp: &mut LoopLocal, res: i32, flags: u32) {
        // A pool buffer handed back: copy its bytes out (unless input is no
        // longer wanted) and return it to the pool at once.
        if let Some(bid) = uring::buffer_id(flags) {
            let ring = lp.ring();
            if res > 0 && self.ch.state == State::Active && !self.ch.input_closed {
                self.ch.take_buffer(ring, bid, res as usize);
            }
            ring.bufs.recycle(bid);
        }
        if !uring::more(flags) {
            self.ch.ring.recv = false;
        }
        if self.ch.state != State::Active {
            return; // closing or closed: input is no longer wanted
        }
        if res < 0 {
            match -res {
                // Auto-read switched off (or the channel closing).
                libc::ECANCELED => {}
                // The pool ran dry, or a spurious wake: try again next turn.
                libc::ENOBUFS | libc::EAGAIN | libc::EINTR => lp.reread(self.ch.token),
                _ => {
                    self.ch.fail(os_error(res));
                    self.settle(lp);
                    return;
                }
            }
        } else if res == 0 {
            self.ch.ring.eof = true;
        }
        self.uring_reread(lp);
    }

    /// Hands what has been received to the pipeline while it is reading,
    /// at most one read-buffer's worth at a time, so a handler that pauses
    /// (auto-read off when its output backs up) is obeyed between pieces.
    /// What a multishot receive took in before a pause reached the kernel
    /// waits here, bounded by the loop's buffer pool.
    fn deliver(&mut self, lp: &mut LoopLocal) {
        let mut any = false;
        while !self.ch.read_buf.is_empty() && self.ch.reading() && self.ch.state == State::Active {
            let n = self.ch.read_buf.len().min(self.ch.opts.read_buffer_size);
            let chunk = R::from_socket(self.ch.read_buf.split_to(n), None);
            self.pipeline
                .read(&mut Self::io(&mut self.ch, lp), &mut HeadPath, chunk);
            self.settle(lp);
            any = true;
        }
        if any && self.ch.state == State::Active {
            self.pipeline
                .read_complete(&mut Self::io(&mut self.ch, lp), &mut HeadPath);
            self.settle(lp);
        }
    }

    /// Reading resumed (or a retry is due): deliver what was held back,
    /// then receive again.
    pub(super) fn uring_reread(&mut self, lp: &mut LoopLocal) {
        if self.ch.uses_readiness() {
            if self.ch.state == State::Active {
                self.do_read(lp, false);
            }
            self.ch.arm_recv(lp.ring());
            return;
        }
        self.deliver(lp);
        if self.ch.ring.eof && self.ch.read_buf.is_empty() && self.ch.state == State::Active {
            self.ch.ring.eof = false;
            self.input_ended(lp);
            return;
        }
        self.ch.arm_recv(lp.ring());
    }

    fn on_write(&mut self, lp: &mut LoopLocal, res: i32) {
        // What was charged at submission: given back, less what went.
        let charged = std::mem::take(&mut self.ch.ring.precharged);
        let now = lp.now();
        if self.ch.state == State::Closed {
            // A shared limit is not left paying for bytes never sent.
            let sent = usize::try_from(res).unwrap_or(0);
            self.ch
                .account_charged(0, charged.saturating_sub(sent), now);
            return;
        }
        if res < 0 {
            self.ch.account_charged(0, charged, now);
            if res == -libc::ECANCELED {
                return;
            }
            if matches!(-res, libc::EAGAIN | libc::EINTR) {
                return self.write_more(lp);
            }
            self.ch.fail(os_error(res));
            self.settle(lp);
            return;
        }
        let n = res as usize;
        self.ch.consume_bytes(n);
        self.ch.account_charged(n, charged, now);
        self.write_more(lp);
    }

    /// The socket can take more while a file region is next: send it
    /// (`Channel::submit_write` sends files from the loop).
    fn on_file_writable(&mut self, lp: &mut LoopLocal, res: i32) {
        self.ch.ring.write = None;
        // An error or hang-up in the poll's mask surfaces from the send.
        if self.poll_ready(lp, res) {
            self.write_more(lp);
        }
    }

    /// A poll of ours completed with `res`: whether to act on it. One
    /// cancelled, or of a channel past closing, is dropped; one that failed
    /// fails the channel.
    fn poll_ready(&mut self, lp: &mut LoopLocal, res: i32) -> bool {
        if res == -libc::ECANCELED || !matches!(self.ch.state, State::Active | State::Closing) {
            return false;
        }
        if res < 0 {
            self.ch.fail(os_error(res));
            self.settle(lp);
            return false;
        }
        true
    }

    /// Writes what is next (on the ring, or a file region now), then closes
    /// a closing channel whose output is all out.
    fn write_more(&mut self, lp: &mut LoopLocal) {
        self.ch.submit_write(lp);
        if self.ch.close_drained() {
            self.output_delivered(lp);
            return;
        }
        self.settle(lp);
    }
}
