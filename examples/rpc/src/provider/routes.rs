//! The provider's routing table: every exported method found by the
//! routing bytes of its calls (service, version, group and method, each
//! behind its length byte, as the request body begins), frozen when the
//! provider starts. Uses the service table, the method entries and the
//! protocol's routing key; the connection looks every call up here.
//!
//! One lookup of one byte string replaces two string-keyed hash lookups
//! (SipHash over the service's name, then over the method's) and the
//! string compares behind them, which went to glibc's `memcmp`. For
//! strings this short its AVX-512 path stalled on the instruction after
//! its masked compare: on the Zen 5 VM with 64 calls in flight, 11% of
//! the provider loop's time went to comparing the one-byte version "1"
//! (BENCHMARKS.md, issue 22, sixteenth session). Keys here are hashed and
//! compared eight bytes at a time with plain loads.

use super::method::MethodEntry;
use super::service::{Dispatch, Exports};
use crate::protocol::invocation::routing_key;
use std::sync::Arc;

/// Where one method's calls go.
pub(crate) struct Route {
    key: Box<[u8]>,
    pub(crate) dispatch: Dispatch,
    pub(crate) method: Arc<MethodEntry>,
}

/// Every exported method by its routing bytes (open addressing).
pub(crate) struct Routes {
    /// A power of two, at least twice the routes, so every probe ends at
    /// an empty slot.
    slots: Box<[Option<Route>]>,
}

impl Routes {
    /// The routes of every method of every service in `exports`. A name
    /// too long for a request (over 255 bytes) has no route: no call can
    /// name it.
    pub(crate) fn new(exports: &Exports) -> Routes {
        let routes: Vec<Route> = exports
            .services()
            .flat_map(|service| {
                service.methods.iter().filter_map(|(name, method)| {
                    let key = routing_key(&service.key, name).ok()?;
                    Some(Route {
                        key: key.to_vec().into_boxed_slice(),
                        dispatch: if method.on_loop {
                            Dispatch::IoThread
                        } else {
                            service.dispatch
                        },
                        method: method.clone(),
                    })
                })
            })
            .collect();
        let size = (routes.len() * 2).next_power_of_two().max(2);
        let mut slots: Box<[Option<Route>]> = (0..size).map(|_| None).collect();
        for route in routes {
            let mut at = hash(&route.key) as usize & (size - 1);
            while slots[at].is_some() {
                at = (at + 1) & (size - 1);
            }
            slots[at] = Some(route);
        }
        Routes { slots }
    }

    /// The route of the call whose body begins with `routing`.
    #[inline]
    pub(crate) fn find(&self, routing: &[u8]) -> Option<&Route> {
        let mask = self.slots.len() - 1;
        let mut at = hash(routing) as usize & mask;
        loop {
            let route = self.slots[at].as_ref()?;
            if same(&route.key, routing) {
                return Some(route);
            }
            at = (at + 1) & mask;
        }
    }
}

/// The next eight bytes of `bytes` from `at` (zeros past its end), as one
/// word. A short tail is gathered a byte at a time: copied into a buffer
/// first (a `memcpy` call), its one wide load waited for the copy's
/// narrower stores.
#[inline(always)]
fn word(bytes: &[u8], at: usize) -> u64 {
    match bytes.get(at..at + 8) {
        Some(eight) => u64::from_le_bytes(eight.try_into().expect("eight bytes")),
        None => bytes[at..]
            .iter()
            .rev()
            .fold(0, |w, &b| (w << 8) | u64::from(b)),
    }
}

/// A multiply-rotate hash over eight-byte words (the length is in the key:
/// its first byte is the service name's length).
#[inline]
fn hash(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = bytes.len() as u64;
    let mut at = 0;
    while at < bytes.len() {
        h = (h.rotate_left(5) ^ word(bytes, at)).wrapping_mul(K);
        at += 8;
    }
    h ^ (h >> 32)
}

/// Whether `a` and `b` hold the same bytes, compared a word at a time.
#[inline]
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut at = 0;
    while at < a.len() {
        if word(a, at) != word(b, at) {
            return false;
        }
        at += 8;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{write_routing, Invocation, ServiceKey};
    use crate::provider::{Service, ServiceError};
    use bytes::{BufMut, BytesMut};

    fn service(key: ServiceKey, methods: &[&str]) -> Service {
        methods
            .iter()
            .fold(Service::builder(key), |b, m| {
                b.method(*m, |x: u8| Ok::<_, ServiceError>(x))
            })
            .build()
    }

    /// The routing bytes of a call as a consumer writes it.
    fn call(key: &ServiceKey, method: &str) -> BytesMut {
        let mut body = BytesMut::new();
        let trace = [("trace".to_string(), "abc".to_string())];
        write_routing(&mut body, key, method, &trace, Some("secret")).unwrap();
        body.put_slice(b"args");
        body
    }

    fn route_of<'r>(routes: &'r Routes, key: &ServiceKey, method: &str) -> Option<&'r Route> {
        let body = call(key, method);
        let inv = Invocation::parse(&body).unwrap();
        // Copied out of the body, so the route cannot borrow it.
        let routing = inv.routing.to_vec();
        routes.find(&routing)
    }

    #[test]
    fn every_method_is_found_by_its_calls_and_nothing_else() {
        let mut exports = Exports::default();
        let keys: Vec<ServiceKey> = (0..40)
            .map(|i| {
                ServiceKey::new(format!("demo.Service{i}"))
                    .version(if i % 2 == 0 { "1" } else { "" })
                    .group(if i % 3 == 0 { "blue" } else { "" })
            })
            .collect();
        for key in &keys {
            exports.add(service(
                key.clone(),
                &["get", "put", "a.longer.method.name"],
            ));
        }
        let routes = Routes::new(&exports);
        for key in &keys {
            for method in ["get", "put", "a.longer.method.name"] {
                let route = route_of(&routes, key, method).expect("found");
                assert_eq!(route.method.name, method);
                assert_eq!(route.method.service, key.name);
            }
            assert!(route_of(&routes, key, "gets").is_none());
            assert!(route_of(&routes, key, "ge").is_none());
            let other_version = key.clone().version("2");
            assert!(route_of(&routes, &other_version, "get").is_none());
            let other_group = key.clone().group("green");
            assert!(route_of(&routes, &other_group, "get").is_none());
        }
        assert!(route_of(&routes, &ServiceKey::new("demo.Service"), "get").is_none());
    }

    #[test]
    fn a_name_no_call_can_carry_has_no_route_and_breaks_nothing() {
        let mut exports = Exports::default();
        exports.add(service(ServiceKey::new("x".repeat(300)), &["get"]));
        exports.add(service(ServiceKey::new("ok"), &["get"]));
        let routes = Routes::new(&exports);
        assert!(route_of(&routes, &ServiceKey::new("ok"), "get").is_some());
        assert!(Routes::new(&Exports::default()).find(b"\x02ok").is_none());
    }

    #[test]
    fn words_past_the_end_read_as_zeros_and_lengths_tell_keys_apart() {
        assert_eq!(word(b"abc", 0), u64::from_le_bytes(*b"abc\0\0\0\0\0"));
        assert_eq!(
            word(b"0123456789", 8),
            u64::from_le_bytes(*b"89\0\0\0\0\0\0")
        );
        assert!(same(b"0123456789", b"0123456789"));
        assert!(!same(b"0123456789", b"0123456788"));
        assert!(!same(b"abc", b"abc\0"));
        assert!(same(b"", b""));
    }
}
