//! The client-quota case's setup: a produce and a fetch quota for one
//! client id, set through AlterClientQuotas (v0, encoded here by hand: the
//! benchmark's client, librdkafka, has no quota API). Uses only std.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as i16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Sets `producer_byte_rate` and `consumer_byte_rate` to `bytes_per_s` for
/// client id `client` on the broker at `addr`; panics if the broker
/// refuses.
pub fn set(addr: SocketAddr, client: &str, bytes_per_s: f64) {
    let mut body = Vec::new();
    body.extend_from_slice(&49i16.to_be_bytes()); // AlterClientQuotas
    body.extend_from_slice(&0i16.to_be_bytes()); // v0
    body.extend_from_slice(&1i32.to_be_bytes()); // correlation id
    put_str(&mut body, "gyre-bench");
    body.extend_from_slice(&1i32.to_be_bytes()); // one entry
    body.extend_from_slice(&1i32.to_be_bytes()); // of one entity part
    put_str(&mut body, "client-id");
    put_str(&mut body, client);
    body.extend_from_slice(&2i32.to_be_bytes()); // two ops
    for key in ["producer_byte_rate", "consumer_byte_rate"] {
        put_str(&mut body, key);
        body.extend_from_slice(&bytes_per_s.to_be_bytes());
        body.push(0); // not a removal
    }
    body.push(0); // not validate-only
    let mut s = TcpStream::connect(addr).expect("connect to the broker");
    s.write_all(&(body.len() as i32).to_be_bytes()).unwrap();
    s.write_all(&body).unwrap();
    let mut size = [0u8; 4];
    s.read_exact(&mut size).unwrap();
    let mut resp = vec![0u8; i32::from_be_bytes(size) as usize];
    s.read_exact(&mut resp).unwrap();
    // correlation id, throttle, entry count, then the entry's error code.
    let code = i16::from_be_bytes([resp[12], resp[13]]);
    assert_eq!(code, 0, "AlterClientQuotas refused: error {code}");
}
