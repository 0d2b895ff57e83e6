//! `ChannelOptions::zero_copy_send`: with every gathered send zero-copy
//! (threshold 0; on io_uring that is `IORING_OP_SENDMSG_ZC`, whose buffers
//! must outlive the send until the kernel's release notification), echoes
//! of many sizes and a large stream still arrive whole and in order.

mod common;

use gyre_reactor::{ChannelOptions, Pipeline, ServerBootstrap};
use std::time::Duration;

#[test]
fn zero_copy_sends_deliver_every_byte_in_order() {
    let server = ServerBootstrap::new()
        .group(common::group(1))
        .child_options(ChannelOptions::default().zero_copy_send(0))
        .bind("127.0.0.1:0", |_| Pipeline::new().inbound(common::Echo))
        .unwrap();
    let data: Vec<u8> = (0..8 << 20).map(|i: u32| (i ^ (i >> 9)) as u8).collect();
    let back = common::echo_half_closed(server.local_addr(), &data, 7919, Duration::ZERO).unwrap();
    assert_eq!(back.len(), data.len());
    assert!(back == data, "echo differs");
    common::check_echo(server.local_addr());
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
}
