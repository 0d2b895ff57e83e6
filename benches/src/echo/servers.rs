//! The two servers under test, started in this process on loopback.

use std::net::SocketAddr;
use std::time::Duration;

/// Name prefix of gyre's server threads.
pub const GYRE_THREADS: &str = "echo-worker";
/// Name prefix of tokio's server threads.
pub const TOKIO_THREADS: &str = "tokio-echo";

/// A running server and how to stop it.
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Box<dyn FnOnce()>,
}

impl Running {
    /// A server at `addr` that `stop` stops.
    pub fn new(addr: SocketAddr, stop: impl FnOnce() + 'static) -> Running {
        Running {
            addr,
            stop: Box::new(stop),
        }
    }

    /// Stops the server and waits for its threads.
    pub fn stop(self) {
        (self.stop)();
    }
}

/// gyre's echo example with `workers` loops that both accept and serve, on
/// `transport`.
pub fn gyre(
    workers: usize,
    transport: gyre_reactor::Transport,
    busy_poll: Duration,
    pin_to_cores: bool,
) -> Running {
    let server = gyre_echo::start(&gyre_echo::EchoConfig {
        addr: "127.0.0.1:0".parse().expect("addr"),
        workers,
        reuse_port: false,
        boss: false,
        transport,
        busy_poll,
        pin_to_cores,
    })
    .expect("start gyre echo server");
    Running {
        addr: server.local_addr(),
        stop: Box::new(move || server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5))),
    }
}

/// The floor (see [`super::floor`]), busy-polling if `busy`.
pub fn floor(busy: bool) -> Running {
    let floor = super::floor::start(busy).expect("start the floor server");
    Running {
        addr: floor.addr,
        stop: Box::new(move || floor.stop()),
    }
}

/// tokio's standard echo server: a multi-thread runtime with `workers`
/// workers, a task per connection that reads into a buffer and
/// `write_all`s it back. Two changes from tokio's example, both in tokio's
/// favour: `TCP_NODELAY` (as gyre sets it) and a 4 KiB buffer instead of
/// 1 KiB.
pub fn tokio(workers: usize) -> Running {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name(TOKIO_THREADS)
        .enable_io()
        .build()
        .expect("tokio runtime");
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    rt.spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                continue;
            };
            let _ = socket.set_nodelay(true);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                loop {
                    let n = match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    if socket.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Running {
        addr,
        stop: Box::new(move || rt.shutdown_timeout(Duration::from_secs(5))),
    }
}
