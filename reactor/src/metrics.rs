//! What a loop has done, as plain numbers: [`LoopMetrics`], summed over
//! loops for a group or a server, and written in Prometheus' text format.
//! Plain data; the loop fills it in when asked.
//!
//! **Cheap enough to stay on.** Nothing is counted on the data path that
//! was not counted already: each channel keeps its own byte counts (plain
//! integers its loop owns), and a snapshot is taken on the loop when
//! someone asks, by walking its channels and adding what closed channels
//! left behind. Asking costs one task on the loop and a walk over its
//! channels; not asking costs nothing.

use std::fmt::Write as _;
use std::iter::Sum;
use std::ops::Add;

/// One loop's counters (or the sum of several loops'), at the moment they
/// were read.
///
/// ```
/// use gyre_reactor::{Pipeline, ServerBootstrap};
/// use std::io::Write;
///
/// let server = ServerBootstrap::new().bind("127.0.0.1:0", |_peer| Pipeline::new())?;
/// let mut client = std::net::TcpStream::connect(server.local_addr())?;
/// client.write_all(b"12345")?;
/// let mut m = server.metrics()?;
/// while m.bytes_read < 5 {
///     std::thread::yield_now();
///     m = server.metrics()?;
/// }
/// assert_eq!((m.accepted, m.connections_open), (1, 1));
/// let text = m.to_prometheus("gyre", "server=\"demo\"");
/// assert!(text.contains("gyre_bytes_read_total{server=\"demo\"} 5"));
/// server.shutdown_gracefully(std::time::Duration::ZERO, std::time::Duration::from_secs(1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoopMetrics {
    /// Connections open now (server and client channels).
    pub connections_open: u64,
    /// Connections accepted since the loop started.
    pub accepted: u64,
    /// Client connections started (`Bootstrap::connect`) since the loop
    /// started; one that fails also counts as closed.
    pub connected: u64,
    /// Connections closed since the loop started.
    pub closed: u64,
    /// Bytes read from sockets.
    pub bytes_read: u64,
    /// Bytes the sockets took.
    pub bytes_written: u64,
    /// Socket reads that returned data.
    pub reads: u64,
    /// Bytes written by pipelines and not yet taken by the sockets.
    pub queued_outbound_bytes: u64,
    /// Accepts refused for want of descriptors or memory (EMFILE, ENFILE,
    /// ENOBUFS, ENOMEM): connections left waiting in the backlog.
    pub refused_accepts: u64,
}

impl Add for LoopMetrics {
    type Output = LoopMetrics;

    fn add(self, o: LoopMetrics) -> LoopMetrics {
        LoopMetrics {
            connections_open: self.connections_open + o.connections_open,
            accepted: self.accepted + o.accepted,
            connected: self.connected + o.connected,
            closed: self.closed + o.closed,
            bytes_read: self.bytes_read + o.bytes_read,
            bytes_written: self.bytes_written + o.bytes_written,
            reads: self.reads + o.reads,
            queued_outbound_bytes: self.queued_outbound_bytes + o.queued_outbound_bytes,
            refused_accepts: self.refused_accepts + o.refused_accepts,
        }
    }
}

impl Sum for LoopMetrics {
    fn sum<I: Iterator<Item = LoopMetrics>>(iter: I) -> LoopMetrics {
        iter.fold(LoopMetrics::default(), Add::add)
    }
}

impl LoopMetrics {
    /// The counters in Prometheus' text exposition format, each named
    /// `<prefix>_<counter>` and carrying `labels` (`key="value",...`, or
    /// empty), with their `# TYPE` lines.
    pub fn to_prometheus(&self, prefix: &str, labels: &str) -> String {
        let mut out = String::new();
        let labels = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let rows: [(&str, &str, u64); 9] = [
            ("connections_open", "gauge", self.connections_open),
            ("accepted_total", "counter", self.accepted),
            ("connected_total", "counter", self.connected),
            ("closed_total", "counter", self.closed),
            ("bytes_read_total", "counter", self.bytes_read),
            ("bytes_written_total", "counter", self.bytes_written),
            ("reads_total", "counter", self.reads),
            ("queued_outbound_bytes", "gauge", self.queued_outbound_bytes),
            ("refused_accepts_total", "counter", self.refused_accepts),
        ];
        for (name, kind, value) in rows {
            let _ = writeln!(out, "# TYPE {prefix}_{name} {kind}");
            let _ = writeln!(out, "{prefix}_{name}{labels} {value}");
        }
        out
    }
}

/// What one channel has moved, for its loop's sums.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Traffic {
    pub(crate) bytes_read: u64,
    pub(crate) bytes_written: u64,
    pub(crate) reads: u64,
    pub(crate) queued: u64,
}

impl std::ops::AddAssign for Traffic {
    fn add_assign(&mut self, t: Traffic) {
        self.bytes_read += t.bytes_read;
        self.bytes_written += t.bytes_written;
        self.reads += t.reads;
        self.queued += t.queued;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_and_prometheus_text() {
        let a = LoopMetrics {
            accepted: 2,
            bytes_read: 10,
            ..LoopMetrics::default()
        };
        let b = LoopMetrics {
            accepted: 3,
            queued_outbound_bytes: 7,
            ..LoopMetrics::default()
        };
        let sum: LoopMetrics = [a, b].into_iter().sum();
        assert_eq!(
            (sum.accepted, sum.bytes_read, sum.queued_outbound_bytes),
            (5, 10, 7)
        );
        let text = sum.to_prometheus("x", "");
        assert!(text.contains("# TYPE x_accepted_total counter\nx_accepted_total 5\n"));
        assert!(text.contains("x_queued_outbound_bytes 7\n"));
        assert_eq!(text.lines().count(), 18);
    }
}
