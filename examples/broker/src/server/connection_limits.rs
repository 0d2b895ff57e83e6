//! Kafka's `max.connections.per.ip` and its overrides (the setting is
//! [`ConnectionLimits`]) as the reactor's per-address counts, and the
//! overrides' text form.

use crate::config::ConnectionLimits;
use gyre_reactor::ConnectionsPerIp;
use std::net::IpAddr;

/// The counts for `limits`' per-address limits (the reactor's
/// [`ConnectionsPerIp`]); `None` when none is set (nothing is then
/// counted).
pub fn per_ip(limits: &ConnectionLimits) -> Option<ConnectionsPerIp> {
    if limits.per_ip.is_none() && limits.per_ip_overrides.is_empty() {
        return None;
    }
    Some(ConnectionsPerIp::new(
        limits.per_ip,
        limits.per_ip_overrides.iter().copied(),
    ))
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

    #[test]
    fn limits_are_counted_only_where_set() {
        assert!(per_ip(&ConnectionLimits::default()).is_none());
        let limits = ConnectionLimits {
            per_ip_overrides: vec![("10.0.0.5".parse().unwrap(), 3)],
            ..ConnectionLimits::default()
        };
        let counts = per_ip(&limits).expect("an override is a limit");
        assert_eq!(counts.limit_for("10.0.0.5".parse().unwrap()), Some(3));
        assert_eq!(counts.limit_for("10.0.0.6".parse().unwrap()), None);
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
