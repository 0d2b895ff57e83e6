//! Channels as peers: `crossbeam-channel` bounded and std's `sync_channel`,
//! with the ring's capacity. A pipeline of channels forwards each value
//! through a thread per stage.

use super::{check, share, CAPACITY};
use std::time::{Duration, Instant};

/// One producer sending `0..n` with `send`, one consumer thread summing
/// what it receives; shared by the channel peers.
fn one_to_one_with(
    case: &str,
    n: u64,
    mut send: impl FnMut(u64),
    consumer: std::thread::JoinHandle<u64>,
) -> Duration {
    let start = Instant::now();
    for i in 0..n {
        send(i);
    }
    drop(send); // drops the sender, ending the consumer's iteration
    let sum = consumer.join().expect("consumer");
    let elapsed = start.elapsed();
    check(case, n, sum);
    elapsed
}

/// One producer, one consumer over `crossbeam_channel::bounded`.
pub fn crossbeam_one_to_one(n: u64) -> Duration {
    let (tx, rx) = crossbeam_channel::bounded::<u64>(CAPACITY);
    let consumer = std::thread::spawn(move || rx.iter().fold(0u64, u64::wrapping_add));
    one_to_one_with(
        "crossbeam 1p1c",
        n,
        move |v| tx.send(v).expect("send"),
        consumer,
    )
}

/// One producer, one consumer over `std::sync::mpsc::sync_channel`.
pub fn std_one_to_one(n: u64) -> Duration {
    let (tx, rx) = std::sync::mpsc::sync_channel::<u64>(CAPACITY);
    let consumer = std::thread::spawn(move || rx.iter().fold(0u64, u64::wrapping_add));
    one_to_one_with(
        "sync_channel 1p1c",
        n,
        move |v| tx.send(v).expect("send"),
        consumer,
    )
}

/// Three producers into one consumer over one crossbeam channel.
pub fn crossbeam_three_to_one(n: u64) -> Duration {
    let (tx, rx) = crossbeam_channel::bounded::<u64>(CAPACITY);
    let consumer = std::thread::spawn(move || rx.iter().fold(0u64, u64::wrapping_add));
    let start = Instant::now();
    let threads: Vec<_> = (0..3)
        .map(|p| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for v in share(n, 3, p) {
                    tx.send(v).expect("send");
                }
            })
        })
        .collect();
    drop(tx);
    for t in threads {
        t.join().expect("producer");
    }
    let sum = consumer.join().expect("consumer");
    let elapsed = start.elapsed();
    check("crossbeam 3p1c", n, sum);
    elapsed
}

/// One producer into three stages chained by crossbeam channels.
pub fn crossbeam_pipeline(n: u64) -> Duration {
    let (tx0, rx0) = crossbeam_channel::bounded::<u64>(CAPACITY);
    let (tx1, rx1) = crossbeam_channel::bounded::<u64>(CAPACITY);
    let (tx2, rx2) = crossbeam_channel::bounded::<u64>(CAPACITY);
    let forward = |rx: crossbeam_channel::Receiver<u64>, tx: crossbeam_channel::Sender<u64>| {
        std::thread::spawn(move || {
            for v in rx {
                tx.send(std::hint::black_box(v)).expect("send");
            }
        })
    };
    let s1 = forward(rx0, tx1);
    let s2 = forward(rx1, tx2);
    let last = std::thread::spawn(move || rx2.iter().fold(0u64, u64::wrapping_add));
    let start = Instant::now();
    for i in 0..n {
        tx0.send(i).expect("send");
    }
    drop(tx0);
    s1.join().expect("stage");
    s2.join().expect("stage");
    let sum = last.join().expect("stage");
    let elapsed = start.elapsed();
    check("crossbeam pipeline", n, sum);
    elapsed
}
