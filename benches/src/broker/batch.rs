//! librdkafka's batch consume call, `rd_kafka_consume_batch_queue`, which
//! the `rdkafka` crate does not wrap: one call hands over up to a batch of
//! messages where `poll` hands over one. librdkafka's own performance tool
//! reads this way in its batch mode; the broker cases use it so that the
//! client's per-call cost (measured: the polling thread at 100% CPU while
//! the broker's loop idled) does not stand in for the broker's speed.

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka_sys::{
    rd_kafka_consume_batch_queue, rd_kafka_err2str, rd_kafka_message_destroy, rd_kafka_message_t,
    rd_kafka_queue_destroy, rd_kafka_queue_get_consumer, rd_kafka_queue_t, rd_kafka_resp_err_t,
};
use std::ffi::CStr;
use std::time::Duration;

/// Reads a consumer's messages a batch at a time.
pub struct BatchReader<'a> {
    /// Keeps the client (and so the queue's owner) alive while we read.
    _consumer: &'a BaseConsumer,
    queue: *mut rd_kafka_queue_t,
    batch: Vec<*mut rd_kafka_message_t>,
}

impl<'a> BatchReader<'a> {
    /// A reader of `consumer`'s queue, `capacity` messages per call.
    pub fn new(consumer: &'a BaseConsumer, capacity: usize) -> BatchReader<'a> {
        // SAFETY: the client pointer is valid while `consumer` lives, which
        // the borrow outlives us; the call returns a new reference to the
        // consumer queue that Drop gives back.
        let queue = unsafe { rd_kafka_queue_get_consumer(consumer.client().native_ptr()) };
        assert!(!queue.is_null(), "the consumer has no consumer queue");
        BatchReader {
            _consumer: consumer,
            queue,
            batch: vec![std::ptr::null_mut(); capacity],
        }
    }

    /// Waits up to `timeout` for messages and calls `each` with the value
    /// of every one that came; returns how many, or the first error any
    /// message carried.
    pub fn read(
        &mut self,
        timeout: Duration,
        mut each: impl FnMut(&[u8]),
    ) -> Result<usize, String> {
        // SAFETY: `queue` is live (see `new`); `batch` has room for the
        // `len` message pointers librdkafka writes into it.
        let got = unsafe {
            rd_kafka_consume_batch_queue(
                self.queue,
                timeout.as_millis().min(i32::MAX as u128) as i32,
                self.batch.as_mut_ptr(),
                self.batch.len(),
            )
        };
        if got < 0 {
            return Err("rd_kafka_consume_batch_queue failed".into());
        }
        let mut error = None;
        for &message in &self.batch[..got as usize] {
            // SAFETY: librdkafka filled the first `got` slots with messages
            // we now own; each is read, then destroyed exactly once.
            unsafe {
                let m = &*message;
                if m.err != rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                    let text = CStr::from_ptr(rd_kafka_err2str(m.err));
                    error.get_or_insert_with(|| text.to_string_lossy().into_owned());
                } else if error.is_none() {
                    let value = if m.payload.is_null() {
                        &[][..]
                    } else {
                        std::slice::from_raw_parts(m.payload as *const u8, m.len)
                    };
                    each(value);
                }
                rd_kafka_message_destroy(message);
            }
        }
        match error {
            Some(e) => Err(e),
            None => Ok(got as usize),
        }
    }
}

impl Drop for BatchReader<'_> {
    fn drop(&mut self) {
        // SAFETY: the reference taken in `new`, given back once.
        unsafe { rd_kafka_queue_destroy(self.queue) };
    }
}
