//! Scratch directories for tests: each under one folder of the test
//! process's own, which goes when the process exits (an `atexit` handler)
//! and, should the process be killed first, at the next test process's
//! start. Before this, every test made its folder under the system temp
//! dir and left it there: tens of megabytes a run, gigabytes on a machine
//! that runs the suite all day. Uses `libc` and `std`.

use std::path::{Path, PathBuf};
use std::sync::Once;

/// Set (to anything) to keep the test process's scratch folder after it
/// exits, to look at what a failed test left.
const KEEP_VAR: &str = "GYRE_KEEP_TEST_DIRS";

const PREFIX: &str = "gyre-test-";

/// A fresh, empty directory for `tag` (its old contents removed), under
/// this process's scratch folder. The same tag gives the same directory
/// within a process, emptied again: a test that restarts a server on its
/// folder keeps the path and must not call this twice.
///
/// The folder goes when the process exits; set `GYRE_KEEP_TEST_DIRS=1` to
/// keep it (its path is the temp dir's `gyre-test-<pid>`).
///
/// ```
/// let dir = gyre_testkit::scratch_dir("doc-example");
/// std::fs::write(dir.join("a"), b"x")?;
/// assert!(dir.starts_with(std::env::temp_dir()));
/// assert!(gyre_testkit::scratch_dir("doc-example").read_dir()?.next().is_none(), "emptied");
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Panics
/// If the directory cannot be made (the temp dir is not writable).
pub fn scratch_dir(tag: &str) -> PathBuf {
    let dir = scratch_root().join(tag);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot make the scratch dir {}: {e}", dir.display()));
    dir
}

/// This process's scratch folder, made (and its removal at exit
/// registered) on first use: a test's stand-in for the system temp dir,
/// for paths it names itself.
///
/// ```
/// let file = gyre_testkit::scratch_root().join("doc-file");
/// std::fs::write(&file, b"x")?;
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Panics
/// If the folder cannot be made (the temp dir is not writable).
pub fn scratch_root() -> PathBuf {
    let root = process_root();
    std::fs::create_dir_all(&root)
        .unwrap_or_else(|e| panic!("cannot make the scratch folder {}: {e}", root.display()));
    root
}

fn process_root() -> PathBuf {
    static ONCE: Once = Once::new();
    let root = root_of(std::process::id());
    ONCE.call_once(|| {
        sweep_dead(&std::env::temp_dir());
        if std::env::var_os(KEEP_VAR).is_none() {
            // SAFETY: `atexit` only records the pointer, to a function
            // that lives as long as the program; `remove_at_exit` takes
            // nothing and ignores every error, so nothing unwinds out of
            // it into C.
            unsafe { libc::atexit(remove_at_exit) };
        }
    });
    root
}

fn root_of(pid: u32) -> PathBuf {
    std::env::temp_dir().join(format!("{PREFIX}{pid}"))
}

extern "C" fn remove_at_exit() {
    // Threads of a test may still be writing below it; what cannot be
    // removed now the next process's sweep removes.
    let _ = std::fs::remove_dir_all(root_of(std::process::id()));
}

/// Removes the scratch folders of processes that no longer run (killed
/// before their exit handler ran).
fn sweep_dead(temp: &Path) {
    let Ok(entries) = std::fs::read_dir(temp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scratch_dir_is_fresh_and_under_the_process_folder() {
        let d = scratch_dir("unit");
        std::fs::write(d.join("f"), b"1").unwrap();
        assert_eq!(d.parent().unwrap(), root_of(std::process::id()));
        let again = scratch_dir("unit");
        assert_eq!(again, d);
        assert!(!again.join("f").exists());
    }

    #[test]
    fn a_dead_processs_folder_is_swept_and_a_live_ones_kept() {
        let temp = scratch_dir("sweep");
        // Pid numbers above the kernel's pid_max (at most 2^22) never run.
        let dead = temp.join(format!("{PREFIX}{}", 1u32 << 30));
        let live = temp.join(format!("{PREFIX}{}", std::process::id()));
        let other = temp.join("gyre-test-not-a-pid");
        for d in [&dead, &live, &other] {
            std::fs::create_dir_all(d.join("inner")).unwrap();
        }
        sweep_dead(&temp);
        assert!(!dead.exists());
        assert!(live.exists());
        assert!(other.exists());
    }
}
