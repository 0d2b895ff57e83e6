//! The broker binary as a child process: started on a free port, its
//! address read from its first line, its log kept in a file beside its
//! data folder (left there if the test fails).

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The broker binary.
pub const BIN: &str = env!("CARGO_BIN_EXE_gyre-broker");

/// The broker binary, its stderr captured to a file.
pub struct BrokerProcess {
    pub child: Child,
    pub addr: String,
    log: PathBuf,
    _stdout: BufReader<std::process::ChildStdout>,
}

impl BrokerProcess {
    /// Starts the binary on a free port with its data in `data` and the
    /// `extra` arguments.
    pub fn start(data: &Path, extra: &[&str]) -> BrokerProcess {
        Self::start_limited(data, None, extra)
    }

    /// [`start`](Self::start) under `ulimit -n files` (soft and hard), if
    /// given.
    pub fn start_limited(data: &Path, files: Option<u32>, extra: &[&str]) -> BrokerProcess {
        let command = match files {
            None => Command::new(BIN),
            Some(files) => {
                let mut sh = Command::new("sh");
                sh.arg("-c")
                    .arg(format!("ulimit -n {files} && exec \"$0\" \"$@\""))
                    .arg(BIN);
                sh
            }
        };
        Self::launch(command, data, extra)
    }

    /// [`start`](Self::start) through `wrapper`, a command that runs the
    /// binary (named after its arguments) in place of itself, as
    /// `nsenter` does.
    pub fn start_through(mut wrapper: Command, data: &Path, extra: &[&str]) -> BrokerProcess {
        wrapper.arg(BIN);
        Self::launch(wrapper, data, extra)
    }

    /// Stops it with `signal` and waits (20 s at most) for it to exit.
    pub fn stop(&mut self, signal: i32) -> std::process::ExitStatus {
        // SAFETY: kill(2) on our own child's pid, which has not been
        // reaped (the `Child` is reaped only below or on drop).
        unsafe { libc::kill(self.child.id() as i32, signal) };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(std::time::Instant::now() < deadline, "the broker stops");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    fn launch(mut command: Command, data: &Path, extra: &[&str]) -> BrokerProcess {
        static STARTS: AtomicUsize = AtomicUsize::new(0);
        let n = STARTS.fetch_add(1, Ordering::Relaxed);
        let log = data.with_extension(format!("{n}.log"));
        let mut child = command
            .args(["--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("the broker binary runs");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("gyre-broker listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        BrokerProcess {
            child,
            addr,
            log,
            _stdout: out,
        }
    }

    /// The next line it printed on stdout (after the address: the
    /// listeners, when `--listener` is given).
    pub fn next_line(&mut self) -> String {
        let mut line = String::new();
        self._stdout.read_line(&mut line).unwrap();
        line.trim().to_owned()
    }

    /// What it has logged so far.
    pub fn stderr(&self) -> String {
        let mut s = String::new();
        std::fs::File::open(&self.log)
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        s
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}
