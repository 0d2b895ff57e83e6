//! Pinning a thread to a CPU, for stages that want a core of their own.

/// Pin the calling thread to `cpu`, if given. A refusal (no such CPU, a
/// container's CPU set) is logged and otherwise ignored: pinning is a
/// performance hint, never a correctness requirement.
pub(crate) fn pin(cpu: Option<usize>) {
    let Some(cpu) = cpu else { return };
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `cpu_set_t` is plain data for which all-zero is the empty
        // set; CPU_SET bounds-checks `cpu` against the set's size itself, and
        // sched_setaffinity(0, …) only reads the set we pass for this thread.
        let rc = unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            if cpu >= libc::CPU_SETSIZE as usize {
                -1
            } else {
                libc::CPU_SET(cpu, &mut set);
                libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
            }
        };
        if rc != 0 {
            tracing::warn!(cpu, error = %std::io::Error::last_os_error(), "could not pin thread to CPU");
        }
    }
    #[cfg(not(target_os = "linux"))]
    tracing::warn!(cpu, "thread pinning is only supported on Linux");
}
