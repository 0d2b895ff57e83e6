//! Transport choice and fallback: `Auto` means epoll unless the group
//! prefers io_uring; preferring it, `Auto` falls back to epoll, with a
//! warning that says why, when io_uring is unavailable, and traffic flows;
//! `IoUring` then fails with an error instead. The probe is forced to fail
//! with `GYRE_IO_URING=off` (so this binary holds one test: the variable is
//! process-wide).

mod common;

use common::Captured;
use gyre_reactor::{EventLoopGroup, Pipeline, ServerBootstrap, Transport};
use std::time::Duration;

fn echo_on(group: EventLoopGroup) {
    let server = ServerBootstrap::new()
        .group(group)
        .bind("127.0.0.1:0", |_| Pipeline::new().inbound(common::Echo))
        .unwrap();
    common::check_echo(server.local_addr());
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
}

#[test]
fn auto_falls_back_to_epoll_with_a_warning_and_io_uring_fails_clearly() {
    // Epoll is always there and is the default.
    let epoll = EventLoopGroup::builder().threads(1).build().unwrap();
    assert_eq!(epoll.transport(), Transport::Epoll);
    echo_on(epoll);

    // Auto follows the group's preference, epoll by default.
    let auto = EventLoopGroup::builder()
        .threads(1)
        .transport(Transport::Auto)
        .build()
        .unwrap();
    assert_eq!(auto.transport(), Transport::Epoll);
    auto.shutdown_gracefully(Duration::ZERO, Duration::from_secs(1));

    // Preferring io_uring with io_uring refused, Auto says so and runs on
    // epoll.
    std::env::set_var("GYRE_IO_URING", "off");
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let group = tracing::subscriber::with_default(subscriber, || {
        EventLoopGroup::builder()
            .threads(1)
            .transport(Transport::Auto)
            .auto_prefers(Transport::IoUring)
            .build()
            .unwrap()
    });
    assert_eq!(group.transport(), Transport::Epoll);
    let log = captured.text();
    let reason = if cfg!(feature = "io-uring") {
        "GYRE_IO_URING"
    } else {
        "built without the io-uring feature"
    };
    assert!(
        log.contains("WARN") && log.contains("falling back to epoll") && log.contains(reason),
        "expected a warning naming the reason ({reason}), got: {log:?}"
    );
    echo_on(group);

    // Asked for explicitly, io_uring fails with an error that says why.
    let err = EventLoopGroup::builder()
        .threads(1)
        .transport(Transport::IoUring)
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::Unsupported);
    assert!(err.to_string().contains("io_uring"), "{err}");

    // And when io_uring is there (and compiled in), Auto preferring it
    // takes it.
    std::env::remove_var("GYRE_IO_URING");
    let auto = EventLoopGroup::builder()
        .threads(1)
        .transport(Transport::Auto)
        .auto_prefers(Transport::IoUring)
        .build()
        .unwrap();
    if cfg!(feature = "io-uring") {
        assert_eq!(auto.transport(), Transport::IoUring);
    } else {
        assert_eq!(auto.transport(), Transport::Epoll);
    }
    echo_on(auto);
}
