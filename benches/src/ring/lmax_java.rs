//! Java's LMAX Disruptor (3.4, Debian's `libdisruptor-java`, on the
//! machine's OpenJDK) as a peer of the `1p1c` cases: `benches/java/LmaxRing.java`
//! run as a subprocess that stays up for the whole bench, so the JVM starts
//! and its JIT warms once and each round is one line each way on its stdin
//! and stdout, interleaved with Gyre's rounds. Same capacity, one `long` per
//! slot, busy-spin, one producer, one consumer that checks its sum.
//!
//! Where the jar is missing and the bench runs as root it installs the
//! package with apt-get; with no JVM the peer is skipped with a printed
//! reason (the test command does not need it).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

/// Where Debian's package puts the Disruptor.
const JAR: &str = "/usr/share/java/disruptor.jar";

/// The running Java harness.
pub struct LmaxJava {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
    /// The compiled harness, removed with it.
    classes: PathBuf,
}

fn found(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The Disruptor's jar: `LMAX_DISRUPTOR_JAR`, or Debian's, installed now
/// if it can be.
fn jar() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("LMAX_DISRUPTOR_JAR") {
        return Ok(path.into());
    }
    if !Path::new(JAR).exists() {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let root = unsafe { libc::geteuid() } == 0;
        if !(root && found("apt-get")) {
            return Err(format!(
                "{JAR} is missing (apt-get install libdisruptor-java)"
            ));
        }
        let installed = Command::new("apt-get")
            .args(["install", "-y", "-q", "libdisruptor-java"])
            .stdout(Stdio::null())
            .status()
            .map_err(|e| format!("apt-get: {e}"))?;
        if !installed.success() || !Path::new(JAR).exists() {
            return Err("apt-get install libdisruptor-java failed".into());
        }
    }
    Ok(JAR.into())
}

impl LmaxJava {
    /// Compiles and starts the harness for rings of `capacity`, and waits
    /// until its JIT is warm; `Err` says why the peer cannot run here.
    pub fn start(capacity: usize) -> Result<Self, String> {
        if !found("java") || !found("javac") {
            return Err("no JVM (java and javac)".into());
        }
        let jar = jar()?;
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("java/LmaxRing.java");
        let classes = std::env::temp_dir().join(format!("gyre-lmax-java-{}", std::process::id()));
        let compiled = Command::new("javac")
            .arg("-cp")
            .arg(&jar)
            .arg("-d")
            .arg(&classes)
            .arg(&source)
            .status()
            .map_err(|e| format!("javac: {e}"))?;
        if !compiled.success() {
            return Err(format!("javac {} failed", source.display()));
        }
        let mut child = Command::new("java")
            .arg("-cp")
            .arg(format!("{}:{}", jar.display(), classes.display()))
            .arg("LmaxRing")
            .arg(capacity.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("java: {e}"))?;
        let input = child.stdin.take().expect("piped");
        let mut output = BufReader::new(child.stdout.take().expect("piped"));
        let mut ready = String::new();
        output
            .read_line(&mut ready)
            .map_err(|e| format!("reading the harness: {e}"))?;
        if ready.trim() != "ready" {
            return Err(format!("the harness said {ready:?}"));
        }
        let java = LmaxJava {
            child,
            input,
            output,
            classes,
        };
        java.settle();
        Ok(java)
    }

    /// Waits (at most 3 s) until the JVM has stopped using CPU: its JIT
    /// compiles on threads of its own after the warm-up and after a run,
    /// and on two vCPUs that work would land in the next case's run.
    fn settle(&self) {
        let proc_dir = PathBuf::from(format!("/proc/{}", self.child.id()));
        let cpu_ticks = || gyre_testkit::cpu_ticks(&proc_dir);
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        let mut last = cpu_ticks();
        while std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            let now = cpu_ticks();
            match (last, now) {
                // A tick is 10 ms: more than one in 50 ms is a JVM at work.
                (Some(a), Some(b)) if b > a + 1 => last = now,
                _ => return,
            }
        }
    }

    /// One run of `n` events, `batch` per claim: the time from the first
    /// publish until the consumer saw the last event (the harness checks
    /// the consumer's sum and fails the bench if it is wrong).
    pub fn run(&mut self, n: u64, batch: usize) -> Duration {
        writeln!(self.input, "run {n} {batch}").expect("the Java harness is running");
        self.input.flush().expect("the Java harness is running");
        let mut line = String::new();
        self.output
            .read_line(&mut line)
            .expect("the Java harness answers");
        let nanos: u64 = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("the Java harness failed (its stderr says why): {line:?}"));
        self.settle();
        Duration::from_nanos(nanos)
    }
}

impl Drop for LmaxJava {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Only now: the JVM loads the harness's inner classes as it runs.
        let _ = std::fs::remove_dir_all(&self.classes);
    }
}
