//! The broker binary as a child process: started on a free port, its
//! address read from its first line, its log kept in a file beside its
//! data folder (left there if the test fails).

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

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
        static STARTS: AtomicUsize = AtomicUsize::new(0);
        let n = STARTS.fetch_add(1, Ordering::Relaxed);
        let log = data.with_extension(format!("{n}.log"));
        let bin = env!("CARGO_BIN_EXE_gyre-broker");
        let mut command = match files {
            None => Command::new(bin),
            Some(files) => {
                let mut sh = Command::new("sh");
                sh.arg("-c")
                    .arg(format!("ulimit -n {files} && exec \"$0\" \"$@\""))
                    .arg(bin);
                sh
            }
        };
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
