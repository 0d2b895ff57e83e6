// An event type that is not `Send` (an `Rc`) cannot be put in a ring whose
// stages run on other threads.
use gyre_ringbuffer::Disruptor;
use std::rc::Rc;

fn main() {
    let _graph = Disruptor::builder(8, || Rc::new(0u64)).single_producer();
}
