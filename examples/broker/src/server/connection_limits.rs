//! How many connections each address holds open, against Kafka's
//! `max.connections.per.ip` and its overrides (the setting is
//! [`ConnectionLimits`]): [`IpConnections`] counts them, and an [`IpSlot`]
//! is one connection's place in that count, given back when the
//! connection's handler is dropped. Also the overrides' text form. Plain
//! data behind one mutex, taken when a connection opens and when it
//! closes, and never while no per-address limit is set.

use crate::config::ConnectionLimits;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// The open connections of each address, against the per-address limits.
#[derive(Debug)]
pub struct IpConnections {
    default: Option<usize>,
    overrides: HashMap<IpAddr, usize>,
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl IpConnections {
    /// The counts for `limits`; `None` when no per-address limit is set
    /// (nothing is then counted).
    pub fn new(limits: &ConnectionLimits) -> Option<Arc<Self>> {
        if limits.per_ip.is_none() && limits.per_ip_overrides.is_empty() {
            return None;
        }
        Some(Arc::new(IpConnections {
            default: limits.per_ip,
            overrides: limits
                .per_ip_overrides
                .iter()
                .map(|(ip, n)| (ip.to_canonical(), *n))
                .collect(),
            open: Mutex::new(HashMap::new()),
        }))
    }

    /// The limit that applies to `ip` (`None`: no limit).
    fn limit(&self, ip: IpAddr) -> Option<usize> {
        self.overrides.get(&ip).copied().or(self.default)
    }

    /// Counts a new connection from `ip`: its slot, or the limit it would
    /// go over (it is then not counted).
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<IpSlot, usize> {
        // A dual-stack listener's IPv4 peer counts as the IPv4 address.
        let ip = ip.to_canonical();
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.get(&ip).copied().unwrap_or(0);
        if let Some(max) = self.limit(ip) {
            if count >= max {
                return Err(max);
            }
        }
        open.insert(ip, count + 1);
        Ok(IpSlot {
            counts: self.clone(),
            ip,
        })
    }

    /// Connections open from `ip` now.
    pub fn open_from(&self, ip: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.get(&ip.to_canonical()).copied().unwrap_or(0)
    }
}

/// One open connection's place in its address's count, given back when
/// dropped.
#[derive(Debug)]
pub struct IpSlot {
    counts: Arc<IpConnections>,
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

/// Kafka's `max.connections.per.ip.overrides`: `host:count` pairs split by
/// commas, a host an IP address (an IPv6 one may be bracketed) or a name,
/// resolved now (every address it has gets the count).
pub fn parse_overrides(text: &str) -> Result<Vec<(IpAddr, usize)>, String> {
    use std::net::ToSocketAddrs;
    let mut out = Vec::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (host, count) = pair
            .rsplit_once(':')
            .ok_or_else(|| format!("{pair:?}: expected host:count"))?;
        let count: usize = count
            .parse()
            .map_err(|_| format!("{pair:?}: {count:?} is not a count"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = host.parse::<IpAddr>() {
            out.push((ip, count));
            continue;
        }
        let resolved = (host, 0)
            .to_socket_addrs()
            .map_err(|e| format!("{pair:?}: cannot resolve {host:?}: {e}"))?;
        let before = out.len();
        out.extend(resolved.map(|a| (a.ip(), count)));
        if out.len() == before {
            return Err(format!("{pair:?}: {host:?} has no address"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_ip: Option<usize>, overrides: &[(&str, usize)]) -> Arc<IpConnections> {
        IpConnections::new(&ConnectionLimits {
            per_ip,
            per_ip_overrides: overrides
                .iter()
                .map(|(ip, n)| (ip.parse().unwrap(), *n))
                .collect(),
            ..ConnectionLimits::default()
        })
        .expect("a limit is set")
    }

    #[test]
    fn an_address_at_its_limit_is_refused_until_one_closes() {
        let counts = limits(Some(2), &[]);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let a = counts.admit(ip).unwrap();
        let _b = counts.admit(ip).unwrap();
        assert_eq!(counts.admit(ip).unwrap_err(), 2);
        assert_eq!(counts.open_from(ip), 2, "a refusal is not counted");
        // Another address has its own count.
        let _other = counts.admit("192.0.2.2".parse().unwrap()).unwrap();
        drop(a);
        assert_eq!(counts.open_from(ip), 1);
        let _c = counts.admit(ip).unwrap();
    }

    #[test]
    fn overrides_replace_the_default_and_zero_refuses() {
        let counts = limits(Some(1), &[("10.0.0.5", 3), ("10.0.0.6", 0)]);
        let proxy: IpAddr = "10.0.0.5".parse().unwrap();
        let held: Vec<_> = (0..3).map(|_| counts.admit(proxy).unwrap()).collect();
        assert_eq!(counts.admit(proxy).unwrap_err(), 3);
        assert_eq!(counts.admit("10.0.0.6".parse().unwrap()).unwrap_err(), 0);
        drop(held);
        assert_eq!(counts.open_from(proxy), 0);
        assert!(
            counts.open.lock().unwrap().is_empty(),
            "closed addresses take no room"
        );
        // Overrides alone limit only their addresses.
        let only = limits(None, &[("10.0.0.6", 1)]);
        let many: Vec<_> = (0..100)
            .map(|_| only.admit("10.0.0.7".parse().unwrap()).unwrap())
            .collect();
        assert_eq!(many.len(), 100);
    }

    #[test]
    fn an_ipv4_peer_of_a_dual_stack_listener_counts_as_its_ipv4_address() {
        let counts = limits(None, &[("127.0.0.1", 1)]);
        let _v4 = counts.admit("127.0.0.1".parse().unwrap()).unwrap();
        assert_eq!(
            counts
                .admit("::ffff:127.0.0.1".parse().unwrap())
                .unwrap_err(),
            1
        );
    }

    #[test]
    fn overrides_are_read_as_kafka_writes_them() {
        let parsed = parse_overrides("127.0.0.1:200, [::1]:7,localhost:5").unwrap();
        assert_eq!(parsed[0], ("127.0.0.1".parse().unwrap(), 200));
        assert_eq!(parsed[1], ("::1".parse().unwrap(), 7));
        assert!(parsed[2..].iter().all(|(_, n)| *n == 5) && parsed.len() > 2);
        for bad in ["127.0.0.1", "127.0.0.1:x", "[::1]:-1"] {
            assert!(parse_overrides(bad).is_err(), "{bad:?} taken");
        }
        assert_eq!(parse_overrides("").unwrap(), vec![]);
    }
}
