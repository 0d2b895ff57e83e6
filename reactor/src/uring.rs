//! The io_uring driver: one ring per loop thread, submissions from the
//! loop and its channels, completions drained by the loop.
//!
//! Every submission carries `user_data` = operation kind (top 4 bits) and
//! the channel's token or listener index (the rest), so a completion finds
//! its owner without a lookup table. Buffers a submission points at (a
//! channel's read buffer, its queued `Bytes`, its iovec array and message
//! header, the wake-up counter) belong to the loop until the completion
//! arrives; a channel that closes with operations in flight cancels them
//! and is freed only when their completions have come back.

use crate::buf_ring::BufRing;
use io_uring::{cqueue, opcode, squeue, types, IoUring, Probe};
use std::io;
use std::mem::ManuallyDrop;
use std::os::fd::RawFd;
use std::time::Duration;

/// Receive buffers per loop, and their size: 4 MiB a loop, however many
/// connections it serves.
const RECV_BUFFERS: u16 = 256;
const RECV_BUFFER_SIZE: usize = 16 * 1024;

pub(crate) use crate::token::{user_data, Op};

/// Whether a multishot operation will post more completions.
pub(crate) fn more(flags: u32) -> bool {
    cqueue::more(flags)
}

/// The provided buffer a receive completion filled, if any.
pub(crate) fn buffer_id(flags: u32) -> Option<u16> {
    cqueue::buffer_select(flags)
}

/// Whether a completion is a zero-copy send's buffer-release notification.
pub(crate) fn notif(flags: u32) -> bool {
    cqueue::notif(flags)
}

/// Checks that this kernel gives us io_uring with every opcode the
/// transport uses; `Err` says why not.
///
/// `GYRE_IO_URING=off` in the environment makes the probe fail, as a
/// switch for operators (and for the fallback tests).
pub(crate) fn probe() -> Result<(), String> {
    if std::env::var("GYRE_IO_URING").is_ok_and(|v| v == "off" || v == "0") {
        return Err("io_uring switched off by GYRE_IO_URING".into());
    }
    let ring = IoUring::new(8).map_err(|e| format!("io_uring_setup failed: {e}"))?;
    let mut probe = Probe::new();
    ring.submitter()
        .register_probe(&mut probe)
        .map_err(|e| format!("io_uring probe failed: {e}"))?;
    for (name, code) in [
        ("ACCEPT", opcode::Accept::CODE),
        ("RECV", opcode::Recv::CODE),
        ("SEND", opcode::Send::CODE),
        ("SENDMSG", opcode::SendMsg::CODE),
        ("POLL_ADD", opcode::PollAdd::CODE),
        ("ASYNC_CANCEL", opcode::AsyncCancel::CODE),
        ("READ", opcode::Read::CODE),
    ] {
        if !probe.is_supported(code) {
            return Err(format!("the kernel's io_uring lacks IORING_OP_{name}"));
        }
    }
    if !ring.params().is_feature_ext_arg() || !ring.params().is_feature_fast_poll() {
        return Err("the kernel's io_uring lacks EXT_ARG or FAST_POLL (Linux 5.11+)".into());
    }
    Ok(())
}

/// A loop's ring.
pub(crate) struct UringDriver {
    ring: IoUring,
    /// The loop's pool of receive buffers; freed by `Drop` only once no
    /// operation can write into it any more.
    pub(crate) bufs: ManuallyDrop<BufRing>,
    /// Whether the kernel has `IORING_OP_SENDMSG_ZC`.
    pub(crate) send_zc: bool,
    wake_fd: RawFd,
    /// Where the eventfd read lands; boxed so its address is stable.
    wake_buf: Box<u64>,
    /// Operations submitted whose last completion has not been reaped.
    in_flight: usize,
}

impl UringDriver {
    /// A ring of `entries` submissions, reading wake-ups from `wake_fd`
    /// (owned by the loop's shared state, which outlives the driver).
    pub(crate) fn new(entries: u32, wake_fd: RawFd) -> io::Result<Self> {
        let ring = Self::build_ring(entries)?;
        let bufs = BufRing::new(&ring.submitter(), RECV_BUFFERS, RECV_BUFFER_SIZE)?;
        let mut probe = Probe::new();
        let send_zc = ring.submitter().register_probe(&mut probe).is_ok()
            && probe.is_supported(opcode::SendMsgZc::CODE);
        let mut driver = UringDriver {
            ring,
            bufs: ManuallyDrop::new(bufs),
            send_zc,
            wake_fd,
            wake_buf: Box::new(0),
            in_flight: 0,
        };
        driver.arm_wake();
        Ok(driver)
    }

    /// Builds the ring for a loop that alone submits to it and reaps it.
    ///
    /// Completions' task work is deferred until the loop asks for events
    /// (`DEFER_TASKRUN`, which needs `SINGLE_ISSUER`), so the kernel runs it
    /// in one batch inside the loop's own `io_uring_enter` instead of
    /// interrupting the loop for each completion; `TASKRUN_FLAG` marks the
    /// submission ring when such work waits, so a loop that does not block
    /// (`wait(Some(ZERO))`) still enters with `GETEVENTS` and never leaves
    /// completions behind. Kernels before 6.1 refuse the flags with
    /// `EINVAL`; they get the plain ring, as before.
    fn build_ring(entries: u32) -> io::Result<IoUring> {
        let deferred = IoUring::builder()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .setup_coop_taskrun()
            .setup_taskrun_flag()
            .build(entries);
        match deferred {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => IoUring::builder().build(entries),
            other => other,
        }
    }

    /// Queues a submission, submitting what is queued first if the
    /// submission queue is full.
    ///
    /// # Safety
    ///
    /// Every buffer, iovec, message header and descriptor the entry points
    /// at must stay valid and unmoved until its completion is reaped.
    pub(crate) unsafe fn push(&mut self, entry: &squeue::Entry) {
        loop {
            // SAFETY: passed on from the caller.
            if unsafe { self.ring.submission().push(entry) }.is_ok() {
                self.in_flight += 1;
                return;
            }
            if let Err(e) = self.ring.submit() {
                tracing::error!(error = %e, "io_uring submit failed");
            }
        }
    }

    /// Re-arms the read of the wake-up eventfd.
    pub(crate) fn arm_wake(&mut self) {
        let buf: *mut u64 = &mut *self.wake_buf;
        let entry = opcode::Read::new(types::Fd(self.wake_fd), buf.cast(), 8)
            .build()
            .user_data(user_data(Op::Wake, 0));
        // SAFETY: `wake_buf` is a heap slot owned by the driver and never
        // moved or read until this read completes; the eventfd belongs to
        // the loop's shared state, which outlives the driver.
        unsafe { self.push(&entry) };
    }

    /// Submits what is queued and waits for at least one completion, or
    /// `timeout` (`Some(ZERO)`: do not wait).
    pub(crate) fn wait(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let result = match timeout {
            Some(t) if t.is_zero() => self.ring.submit().map(drop),
            Some(t) => {
                let ts = types::Timespec::from(t);
                let args = types::SubmitArgs::new().timespec(&ts);
                self.ring.submitter().submit_with_args(1, &args).map(drop)
            }
            None => self.ring.submit_and_wait(1).map(drop),
        };
        match result {
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME | libc::EINTR | libc::EBUSY)
                ) =>
            {
                Ok(())
            }
            other => other,
        }
    }

    /// Moves every completion into `out` as `(user_data, result, flags)`.
    pub(crate) fn reap(&mut self, out: &mut Vec<(u64, i32, u32)>) {
        for cqe in self.ring.completion() {
            // An operation is done with our memory at its last completion
            // (multishot ones and zero-copy sends post several).
            if !cqueue::more(cqe.flags()) {
                self.in_flight = self.in_flight.saturating_sub(1);
            }
            out.push((cqe.user_data(), cqe.result(), cqe.flags()));
        }
    }

    /// Cancels everything still in flight (the wake-up read, accepts,
    /// anything a leaked channel left) and waits, boundedly, for the last
    /// completions; true if none is left. Tearing a ring down does not wait
    /// for its operations, so buffers they point at must outlive this.
    fn quiesce(&mut self) -> bool {
        let cancel = opcode::AsyncCancel2::new(types::CancelBuilder::any().all())
            .build()
            .user_data(user_data(Op::Cancel, 0));
        // SAFETY: a cancellation points at no memory of ours.
        unsafe { self.push(&cancel) };
        let deadline = std::time::Instant::now() + Duration::from_secs(1);
        let mut sink = Vec::new();
        while self.in_flight > 0 && std::time::Instant::now() < deadline {
            if self.wait(Some(Duration::from_millis(10))).is_err() {
                break;
            }
            self.reap(&mut sink);
            sink.clear();
        }
        self.in_flight == 0
    }
}

impl Drop for UringDriver {
    fn drop(&mut self) {
        // Free the pool only once nothing is in flight and the kernel has
        // let go of it: the ring itself is still alive here (fields drop
        // after this function), so its registration must be undone first.
        if self.quiesce() && self.bufs.unregister(&self.ring.submitter()).is_ok() {
            // SAFETY: dropped once, here, and never used after: nothing is in
            // flight and the buffer ring is unregistered, so the kernel can
            // neither read its descriptors nor write into its buffers.
            unsafe { ManuallyDrop::drop(&mut self.bufs) };
        } else {
            tracing::error!(
                operations = self.in_flight,
                "io_uring operations still in flight (or the buffer ring still registered) at loop exit; leaking the buffers"
            );
            // Never free memory the kernel may still write into: the pool
            // stays (ManuallyDrop) and the wake-up slot is leaked.
            std::mem::forget(std::mem::replace(&mut self.wake_buf, Box::new(0)));
        }
    }
}

/// Builds an entry with its `user_data`.
pub(crate) fn with_data(entry: squeue::Entry, kind: Op, id: usize) -> squeue::Entry {
    entry.user_data(user_data(kind, id))
}

pub(crate) use io_uring::opcode as ops;
pub(crate) use io_uring::types::{CancelBuilder, Fd};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loops_ring_defers_task_work_where_the_kernel_allows_it() {
        if probe().is_err() {
            return; // no io_uring here: the loop falls back to epoll
        }
        let ring = UringDriver::build_ring(8).expect("a ring");
        let kernel_allows = IoUring::<squeue::Entry, cqueue::Entry>::builder()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .build(8)
            .is_ok();
        assert_eq!(ring.params().is_setup_single_issuer(), kernel_allows);
    }
}
