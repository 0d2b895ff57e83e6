// A handler that is not `Send` cannot be moved to its stage's thread; build
// it there with `Stage::with_factory` instead.
use gyre_ringbuffer::Stage;
use std::rc::Rc;

fn main() {
    let counter = Rc::new(0u64);
    let _stage = Stage::new(move |_: &u64, _: i64, _: bool| {
        let _ = &counter;
    });
}
