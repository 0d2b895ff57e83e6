//! The direct-write gate of `gyre_reactor::direct`: a writer thread sends
//! to a channel's socket itself while the loop drains, writes and closes.
//! The socket is a loom cell, so two sends that overlap are a reported
//! race; each check then reads what the socket got: every message whole
//! and in one piece, the loop's and the writers', and the descriptor
//! closed once, never written after.

#![cfg(loom)]

use bytes::Bytes;
use gyre_loom_tests::model;
use gyre_reactor::direct::{DirectGate, Written};
use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::sync::{Arc, Mutex, Notify};
use loom::thread;

/// A socket that takes at most `per_send` bytes a call, the loop's
/// mailbox, and its wake-up.
struct Rig {
    gate: DirectGate,
    socket: UnsafeCell<Vec<u8>>,
    per_send: usize,
    mailbox: Mutex<Vec<Bytes>>,
    wake: Notify,
    closed: AtomicBool,
    closes: AtomicUsize,
}

impl Rig {
    fn new(per_send: usize) -> Arc<Rig> {
        Arc::new(Rig {
            gate: DirectGate::new(3),
            socket: UnsafeCell::new(Vec::new()),
            per_send,
            mailbox: Mutex::new(Vec::new()),
            wake: Notify::new(),
            closed: AtomicBool::new(false),
            closes: AtomicUsize::new(0),
        })
    }

    fn send(&self, bytes: &[u8]) -> usize {
        assert!(
            !self.closed.load(Ordering::Acquire),
            "sent on a closed descriptor"
        );
        let n = bytes.len().min(self.per_send);
        self.socket
            .with_mut(|s| unsafe { (*s).extend_from_slice(&bytes[..n]) });
        n
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.closes.fetch_add(1, Ordering::AcqRel);
    }

    /// What a `ChannelHandle` does: try the gate; on refusal queue the
    /// bytes; tell the loop when the gate says so or something is queued.
    fn writer(&self, msg: &'static [u8]) {
        let written = self.gate.write(
            Bytes::from_static(msg),
            |_, b| Ok(self.send(b)),
            |_| self.close(),
        );
        match written {
            Written::Sent { notify } => {
                if notify {
                    self.wake.notify();
                }
            }
            Written::Refused { bytes, .. } => {
                self.mailbox.lock().unwrap().push(bytes);
                self.wake.notify();
            }
        }
    }

    /// Everything the loop owes, sent: a writer's remainder first, then
    /// its mailbox, then `own`. The loop's socket writes are whole here
    /// (a real loop keeps the gate claimed until they are).
    fn loop_write(&self, own: &mut Option<&'static [u8]>) {
        if let Some(rest) = self.gate.take_remainder() {
            self.socket
                .with_mut(|s| unsafe { (*s).extend_from_slice(&rest) });
        }
        let queued: Vec<Bytes> = std::mem::take(&mut *self.mailbox.lock().unwrap());
        for b in queued
            .into_iter()
            .map(|b| b.to_vec())
            .chain(own.take().map(|o| o.to_vec()))
        {
            self.socket
                .with_mut(|s| unsafe { (*s).extend_from_slice(&b) });
        }
    }

    /// The loop: claim the gate, or wait for the writer that has it to
    /// tell us; then write what it owes and let writers in again.
    fn run_loop(&self, own: &'static [u8]) {
        let mut own = Some(own);
        while own.is_some() {
            if self.gate.claim() {
                self.loop_write(&mut own);
                self.gate.unclaim();
            } else {
                self.wake.wait();
            }
        }
    }

    /// After every thread is done: the loop's last turn, then what the
    /// socket got.
    fn finish(&self) -> Vec<u8> {
        assert!(self.gate.claim(), "no writer is left in the gate");
        self.loop_write(&mut None);
        self.socket.with(|s| unsafe { (*s).clone() })
    }
}

/// `msg` appears in `got` exactly once, in one piece.
fn whole(got: &[u8], msg: &[u8]) {
    let at = got
        .windows(msg.len())
        .position(|w| w == msg)
        .unwrap_or_else(|| panic!("{msg:?} not whole in {got:?}"));
    let rest: Vec<u8> = got[..at]
        .iter()
        .chain(&got[at + msg.len()..])
        .copied()
        .collect();
    assert!(!rest.windows(msg.len()).any(|w| w == msg), "{msg:?} twice");
}

#[test]
fn a_partial_direct_send_is_finished_by_the_loop_before_its_own_bytes() {
    model(|| {
        let rig = Rig::new(2);
        let w = {
            let rig = rig.clone();
            thread::spawn(move || rig.writer(b"wwww"))
        };
        rig.run_loop(b"LL");
        w.join().unwrap();
        let got = rig.finish();
        assert_eq!(got.len(), 6);
        whole(&got, b"wwww");
        whole(&got, b"LL");
    });
}

#[test]
fn a_loop_that_found_the_gate_held_is_told_when_it_is_free() {
    model(|| {
        let rig = Rig::new(8);
        let w = {
            let rig = rig.clone();
            thread::spawn(move || rig.writer(b"ww"))
        };
        // Waits for the writer's word whenever it finds the gate held.
        rig.run_loop(b"LL");
        w.join().unwrap();
        let got = rig.finish();
        assert_eq!(got.len(), 4);
        whole(&got, b"ww");
        whole(&got, b"LL");
    });
}

#[test]
fn two_writers_and_the_loop_never_interleave() {
    model(|| {
        let rig = Rig::new(1);
        let writers: Vec<_> = [&b"aaa"[..], &b"bbb"[..]]
            .into_iter()
            .map(|msg| {
                let rig = rig.clone();
                thread::spawn(move || rig.writer(msg))
            })
            .collect();
        rig.run_loop(b"LL");
        for w in writers {
            w.join().unwrap();
        }
        let got = rig.finish();
        assert_eq!(got.len(), 8);
        for msg in [&b"aaa"[..], b"bbb", b"LL"] {
            whole(&got, msg);
        }
    });
}

#[test]
fn the_descriptor_is_closed_once_and_never_written_after() {
    model(|| {
        let rig = Rig::new(8);
        let w = {
            let rig = rig.clone();
            thread::spawn(move || rig.writer(b"late"))
        };
        if rig.gate.retire() {
            rig.close();
        }
        w.join().unwrap();
        assert_eq!(rig.closes.load(Ordering::Acquire), 1, "closed once");
    });
}
