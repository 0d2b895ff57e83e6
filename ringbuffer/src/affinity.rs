//! Pinning a thread to a CPU, for stages (and event loops) that want a core
//! of their own. A leaf: knows only `libc`.

use std::io;

/// Restricts the calling thread to `cpu`.
///
/// Fails where the CPU does not exist or is outside the process's allowed
/// set (a container's CPU set, say), and on systems other than Linux.
/// Callers treat pinning as a performance hint: log the error and go on.
///
/// ```
/// // CPU 0 exists wherever this runs, unless a CPU set excludes it.
/// if let Err(e) = gyre_ringbuffer::pin_current_thread(0) {
///     eprintln!("running unpinned: {e}");
/// }
/// ```
pub fn pin_current_thread(cpu: usize) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        if cpu >= libc::CPU_SETSIZE as usize {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("CPU {cpu} is past the largest CPU set"),
            ));
        }
        // SAFETY: `cpu_set_t` is plain data for which all-zero is the empty
        // set; `cpu` is inside the set (checked above), so CPU_SET writes
        // one bit inside it; sched_setaffinity(0, …) only reads the set we
        // pass, for this thread.
        let rc = unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = cpu;
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "thread pinning is only supported on Linux",
        ))
    }
}

/// Pins the calling thread to `cpu`, if given; a refusal is logged and
/// otherwise ignored: pinning is a performance hint, never a correctness
/// requirement.
pub(crate) fn pin(cpu: Option<usize>) {
    let Some(cpu) = cpu else { return };
    if let Err(error) = pin_current_thread(cpu) {
        tracing::warn!(cpu, %error, "could not pin thread to CPU");
    }
}
