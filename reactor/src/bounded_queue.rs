//! The bounded lock-free queue the cross-thread protocols keep things in
//! (the promise pool's free slots, a wake relay's queued wakers):
//! crossbeam's `ArrayQueue` in a normal build, and under `--cfg loom` a
//! loom mutex around a deque with the same methods. crossbeam's queue
//! synchronises with std atomics loom cannot see, so an item pushed on one
//! thread and popped on another would look like a race to loom; the models
//! check the protocols built on the queue, and the queue is crossbeam's to
//! get right. Uses only crossbeam and loom.

#[cfg(not(loom))]
pub(crate) type BoundedQueue<T> = crossbeam_queue::ArrayQueue<T>;
#[cfg(loom)]
pub(crate) type BoundedQueue<T> = loom_queue::LoomQueue<T>;

#[cfg(loom)]
mod loom_queue {
    use std::collections::VecDeque;

    /// `ArrayQueue`'s methods over a loom mutex.
    pub(crate) struct LoomQueue<T> {
        items: loom::sync::Mutex<VecDeque<T>>,
        capacity: usize,
    }

    impl<T> LoomQueue<T> {
        pub(crate) fn new(capacity: usize) -> Self {
            LoomQueue {
                items: loom::sync::Mutex::new(VecDeque::new()),
                capacity,
            }
        }
        pub(crate) fn push(&self, item: T) -> Result<(), T> {
            let mut items = self.items.lock().unwrap();
            if items.len() == self.capacity {
                return Err(item);
            }
            items.push_back(item);
            Ok(())
        }
        pub(crate) fn pop(&self) -> Option<T> {
            self.items.lock().unwrap().pop_front()
        }
        pub(crate) fn len(&self) -> usize {
            self.items.lock().unwrap().len()
        }
        pub(crate) fn capacity(&self) -> usize {
            self.capacity
        }
    }
}
