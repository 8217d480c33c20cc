//! SIGINT: some frontends interrupt by signal rather than by `interrupt_request` (the spec's
//! `interrupt_mode: "signal"`, a terminal's Ctrl-C). The default action would kill the kernel;
//! instead it interrupts the running cell, like the message does.
//!
//! The handler only writes a byte to a pipe (the one async-signal-safe thing to do); a thread
//! reads the pipe and calls the interrupt function.

use std::io::Read;
use std::os::fd::FromRawFd;
use std::sync::atomic::{AtomicI32, Ordering};

static WAKE_FD: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_sigint(_signal: libc::c_int) {
    let fd = WAKE_FD.load(Ordering::Relaxed);
    if fd >= 0 {
        let byte = 1u8;
        // SAFETY: write(2) is async-signal-safe; the buffer is a live local. A full pipe only
        // means an interrupt is already pending.
        unsafe {
            libc::write(fd, (&raw const byte).cast(), 1);
        }
    }
}

/// Makes SIGINT call `interrupt` (on a helper thread) instead of ending the process.
pub fn forward_sigint(interrupt: impl Fn() + Send + 'static) -> std::io::Result<()> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 writes two descriptors into the array on success.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fds[0] is a fresh descriptor owned by nothing else.
    let mut wake = unsafe { std::fs::File::from_raw_fd(fds[0]) };
    WAKE_FD.store(fds[1], Ordering::SeqCst);
    std::thread::Builder::new()
        .name("kettle-sigint".into())
        .spawn(move || {
            let mut byte = [0u8; 1];
            while wake.read(&mut byte).is_ok_and(|n| n == 1) {
                interrupt();
            }
        })?;
    // SAFETY: the action struct is zero-initialised and then filled in; the handler only calls
    // async-signal-safe functions.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigint as *const () as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(libc::SIGINT, &action, std::ptr::null_mut()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}
