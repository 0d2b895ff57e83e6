//! How many connections each address holds open, against a limit per
//! address (Kafka's `max.connections.per.ip` and its overrides, nginx's
//! `limit_conn`, Netty's `UniqueIpFilter` at 1): [`ConnectionsPerIp`]
//! counts them, and an [`IpSlot`] is one connection's place in that
//! count, given back when dropped. An [`IpFilter`](crate::IpFilter) given
//! one enforces it as connections open; a server may also ask it itself.
//! Plain data behind one mutex, taken when a connection opens and when it
//! closes (never per message).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// The connections open from each address, against a limit per address.
/// Clones share the counts.
///
/// ```
/// use gyre_reactor::ConnectionsPerIp;
///
/// // Ten from each address, a hundred from the proxy at 10.0.0.5.
/// let limits = ConnectionsPerIp::new(Some(10), [("10.0.0.5".parse()?, 100)]);
/// let client = "192.0.2.7".parse()?;
/// let slots: Vec<_> = (0..10).map(|_| limits.admit(client)).collect::<Result<_, _>>().unwrap();
/// assert_eq!(limits.admit(client).unwrap_err(), 10); // the eleventh
/// drop(slots);
/// assert_eq!(limits.open_from(client), 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct ConnectionsPerIp {
    inner: Arc<Counts>,
}

#[derive(Debug)]
struct Counts {
    default: Option<usize>,
    overrides: HashMap<IpAddr, usize>,
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl ConnectionsPerIp {
    /// At most `per_address` connections from each address (`None`: no
    /// limit but the overrides), and each of `overrides`' addresses its
    /// own limit instead (0 refuses the address).
    pub fn new(
        per_address: Option<usize>,
        overrides: impl IntoIterator<Item = (IpAddr, usize)>,
    ) -> Self {
        ConnectionsPerIp {
            inner: Arc::new(Counts {
                default: per_address,
                overrides: overrides
                    .into_iter()
                    .map(|(ip, n)| (ip.to_canonical(), n))
                    .collect(),
                open: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The limit that applies to `ip` (`None`: no limit).
    pub fn limit_for(&self, ip: IpAddr) -> Option<usize> {
        let ip = ip.to_canonical();
        self.inner
            .overrides
            .get(&ip)
            .copied()
            .or(self.inner.default)
    }

    /// Counts a new connection from `ip` (an IPv4 address mapped into
    /// IPv6, a dual-stack listener's IPv4 peer, counts as the IPv4
    /// address): its slot, or the limit it would go over (it is then not
    /// counted).
    ///
    /// # Errors
    /// The address's limit, when it already has that many open.
    pub fn admit(&self, ip: IpAddr) -> Result<IpSlot, usize> {
        let ip = ip.to_canonical();
        let limit = self.limit_for(ip);
        let mut open = self.inner.open.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.get(&ip).copied().unwrap_or(0);
        if let Some(max) = limit {
            if count >= max {
                return Err(max);
            }
        }
        open.insert(ip, count + 1);
        Ok(IpSlot {
            counts: self.inner.clone(),
            ip,
        })
    }

    /// Connections open from `ip` now.
    pub fn open_from(&self, ip: IpAddr) -> usize {
        let open = self.inner.open.lock().unwrap_or_else(|p| p.into_inner());
        open.get(&ip.to_canonical()).copied().unwrap_or(0)
    }

    /// Addresses with a connection open now.
    pub fn addresses(&self) -> usize {
        self.inner
            .open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }
}

/// One open connection's place in its address's count, given back when
/// dropped.
#[derive(Debug)]
pub struct IpSlot {
    counts: Arc<Counts>,
    ip: IpAddr,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut open = self.counts.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                // An address with nothing open takes no room.
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_address_at_its_limit_is_refused_until_one_closes() {
        let counts = ConnectionsPerIp::new(Some(2), []);
        let a = counts.admit(ip("192.0.2.1")).unwrap();
        let _b = counts.clone().admit(ip("192.0.2.1")).unwrap();
        assert_eq!(counts.admit(ip("192.0.2.1")).unwrap_err(), 2);
        assert_eq!(
            counts.open_from(ip("192.0.2.1")),
            2,
            "a refusal is not counted"
        );
        // Another address has its own count.
        let _other = counts.admit(ip("192.0.2.2")).unwrap();
        drop(a);
        assert_eq!(counts.open_from(ip("192.0.2.1")), 1);
        let _c = counts.admit(ip("192.0.2.1")).unwrap();
    }

    #[test]
    fn overrides_replace_the_default_and_zero_refuses() {
        let counts = ConnectionsPerIp::new(Some(1), [(ip("10.0.0.5"), 3), (ip("10.0.0.6"), 0)]);
        let held: Vec<_> = (0..3)
            .map(|_| counts.admit(ip("10.0.0.5")).unwrap())
            .collect();
        assert_eq!(counts.admit(ip("10.0.0.5")).unwrap_err(), 3);
        assert_eq!(counts.admit(ip("10.0.0.6")).unwrap_err(), 0);
        drop(held);
        assert_eq!(counts.addresses(), 0, "closed addresses take no room");
        // Overrides alone limit only their addresses.
        let only = ConnectionsPerIp::new(None, [(ip("10.0.0.6"), 1)]);
        let many: Vec<_> = (0..100)
            .map(|_| only.admit(ip("10.0.0.7")).unwrap())
            .collect();
        assert_eq!(many.len(), 100);
    }

    #[test]
    fn an_ipv4_peer_of_a_dual_stack_listener_counts_as_its_ipv4_address() {
        let counts = ConnectionsPerIp::new(None, [(ip("::ffff:127.0.0.1"), 1)]);
        let _v4 = counts.admit(ip("127.0.0.1")).unwrap();
        assert_eq!(counts.admit(ip("::ffff:127.0.0.1")).unwrap_err(), 1);
    }

    #[test]
    fn threads_opening_and_closing_at_once_leave_every_count_right() {
        let counts = ConnectionsPerIp::new(Some(8), []);
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let counts = counts.clone();
                std::thread::spawn(move || {
                    let addr = ip(&format!("192.0.2.{}", t % 2));
                    let mut held = Vec::new();
                    for i in 0..20_000 {
                        if let Ok(slot) = counts.admit(addr) {
                            held.push(slot);
                        }
                        assert!(counts.open_from(addr) <= 8, "past the limit");
                        if i % 2 == 0 {
                            held.pop();
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(counts.addresses(), 0, "a slot lost or given back twice");
    }
}
