// An event lent to a poll callback cannot be kept after the call.
use gyre_ringbuffer::Disruptor;

fn main() {
    let mut graph = Disruptor::builder(8, || 0u64).single_producer().unwrap();
    let (_id, mut poller) = graph.poller(&[]).unwrap();
    let mut kept: Option<&u64> = None;
    poller.poll(|event, _, _| {
        kept = Some(event);
        true
    });
    println!("{:?}", kept);
}
