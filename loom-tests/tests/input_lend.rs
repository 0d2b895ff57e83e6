//! The input side of `gyre_reactor::direct`: the loop lends a channel's
//! input to a thread, which reads some of it and gives the rest back,
//! while the peer's bytes land and raise edges for the loop. The socket
//! is a queue and each arrival an edge the loop handles (now, or in its
//! last turn); each check then asks: was every byte read exactly once, in
//! the order sent, with nothing left in the socket or the gate that no
//! edge or notice would make the loop read? And is the descriptor closed
//! once, never while the holder still reads it?

#![cfg(loom)]

use bytes::BytesMut;
use gyre_loom_tests::model;
use gyre_reactor::direct::{DirectGate, LendEnded, Retaken};
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::sync::{Arc, Mutex};
use loom::thread;
use std::collections::VecDeque;

/// A socket's input, the edges the loop has yet to handle, notices
/// to the loop, and every byte read with who read it.
struct Rig {
    gate: DirectGate,
    socket: Mutex<VecDeque<u8>>,
    edges: AtomicUsize,
    notified: AtomicBool,
    read: Mutex<Vec<u8>>,
    closed: AtomicBool,
    closes: AtomicUsize,
}

impl Rig {
    fn new() -> Arc<Rig> {
        let rig = Rig {
            gate: DirectGate::new(3),
            socket: Mutex::new(VecDeque::new()),
            edges: AtomicUsize::new(0),
            notified: AtomicBool::new(false),
            read: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
            closes: AtomicUsize::new(0),
        };
        // The loop's first pass found nothing: it offers its input.
        rig.gate.offer_input();
        Arc::new(rig)
    }

    /// The peer: each byte lands, then raises an edge.
    fn peer(&self, bytes: &[u8]) {
        for &b in bytes {
            self.socket.lock().unwrap().push_back(b);
            self.edges.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Everything in the socket now (a `recv` that may find nothing).
    fn recv(&self) -> Vec<u8> {
        assert!(
            !self.closed.load(Ordering::Acquire),
            "read a closed descriptor"
        );
        self.socket.lock().unwrap().drain(..).collect()
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.closes.fetch_add(1, Ordering::AcqRel);
    }

    /// Everything in the socket now, or only its first byte (a read
    /// that fills its buffer), and whether the socket is empty after.
    fn recv_some(&self, all: bool) -> (Vec<u8>, bool) {
        if all {
            return (self.recv(), true);
        }
        assert!(
            !self.closed.load(Ordering::Acquire),
            "read a closed descriptor"
        );
        let mut socket = self.socket.lock().unwrap();
        let got = socket.pop_front().into_iter().collect();
        (got, socket.is_empty())
    }

    /// A holder: takes the input if offered, takes the loop's note of
    /// missed readiness, reads once (everything, or with `all` false one
    /// byte), takes the first byte it got and gives the rest back. It
    /// drains before leaving if it took a note and its read left bytes
    /// behind, and if told it missed an edge.
    fn holder(&self, all: bool) {
        if !self.gate.lend_input() {
            return;
        }
        let owed = self.gate.take_missed();
        let (mut got, emptied) = self.recv_some(all);
        if !got.is_empty() {
            self.read.lock().unwrap().push(got.remove(0));
        }
        let mut rest = BytesMut::from(&got[..]);
        if owed && !emptied {
            rest.extend_from_slice(&self.recv());
        }
        loop {
            let give = (!rest.is_empty()).then(|| rest.split());
            match self.gate.end_lend(give, false, |_| self.close()) {
                LendEnded::Done { notify } => {
                    if notify {
                        self.notified.store(true, Ordering::Release);
                    }
                    return;
                }
                LendEnded::Missed => rest.extend_from_slice(&self.recv()),
            }
        }
    }

    /// One pass of the loop, if an edge or a notice calls for it: take
    /// the input back (or leave it lent), read what was given back, then
    /// the socket, then offer the input again.
    fn loop_turn(&self) {
        let edges = self.edges.swap(0, Ordering::AcqRel);
        let notified = self.notified.swap(false, Ordering::AcqRel);
        if edges == 0 && !notified {
            return;
        }
        match self.gate.retake_input() {
            Retaken::Lent => {}
            Retaken::Free { given_back } => {
                let mut read = self.read.lock().unwrap();
                read.extend(given_back.iter().flat_map(|b| b.iter().copied()));
                read.extend(self.recv());
                drop(read);
                self.gate.offer_input();
            }
        }
    }

    /// After every thread is done: the loop handles what it was told of,
    /// then nothing may be left unread.
    fn finish(&self) -> Vec<u8> {
        self.loop_turn();
        assert!(
            self.socket.lock().unwrap().is_empty(),
            "bytes left in the socket with no edge or notice for the loop"
        );
        assert!(!self.gate.input_given_back(), "bytes left in the gate");
        self.read.lock().unwrap().clone()
    }
}

/// The peer's two bytes, a holder reading everything (`all`) or one
/// byte, and one turn of the loop, in every order.
fn every_byte_once(all: bool) {
    model(move || {
        let rig = Rig::new();
        let peer = {
            let rig = rig.clone();
            thread::spawn(move || rig.peer(&[1, 2]))
        };
        let holder = {
            let rig = rig.clone();
            thread::spawn(move || rig.holder(all))
        };
        rig.loop_turn();
        peer.join().unwrap();
        holder.join().unwrap();
        assert_eq!(rig.finish(), vec![1, 2]);
    });
}

#[test]
fn every_byte_is_read_once_in_order_by_the_holder_or_the_loop() {
    every_byte_once(true);
}

/// A holder whose read leaves bytes behind after it took the loop's note
/// drains them before it leaves.
#[test]
fn a_holder_whose_read_leaves_bytes_behind_still_serves_the_loops_note() {
    every_byte_once(false);
}

#[test]
fn the_descriptor_is_closed_once_and_never_under_a_holder() {
    model(|| {
        let rig = Rig::new();
        rig.peer(&[1]);
        let holder = {
            let rig = rig.clone();
            thread::spawn(move || rig.holder(true))
        };
        if rig.gate.retire() {
            rig.close();
        }
        holder.join().unwrap();
        assert_eq!(rig.closes.load(Ordering::Acquire), 1, "closed once");
    });
}
