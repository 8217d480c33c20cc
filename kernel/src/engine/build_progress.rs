//! Live build progress: while a cell waits for its dependencies to compile, the cell shows
//! which crate is being compiled, how many are done and for how long, instead of silence.
//!
//! evcxr runs cargo with its output captured and copies cargo's `Compiling <crate> v<version>`
//! lines to the kernel's own stderr. The kernel therefore reads its own stderr: fd 2 becomes a
//! pipe whose reader forwards every line to the original stderr (the Jupyter server's log, as
//! before) and turns `Compiling` lines into an updating display in the running cell.

use super::output::SharedSink;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::FromRawFd;

/// How often the build display's clock moves.
const TICK: std::time::Duration = std::time::Duration::from_secs(1);

/// `Compiling tokio v1.54.1` (cargo indents it) -> `tokio v1.54.1`.
pub(super) fn compiling(line: &str) -> Option<&str> {
    let rest = line.trim_start().strip_prefix("Compiling ")?;
    let what = rest.split(" (").next()?.trim();
    (!what.is_empty()).then_some(what)
}

/// The descriptor the forwarder writes to (the kernel's real stderr), once there is one.
static ORIGINAL: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

/// Makes `fd` the kernel's stderr from now on: what the forwarder copies goes there, or fd 2
/// itself when stderr is not captured.
pub(super) fn redirect_stderr(fd: std::os::fd::RawFd) -> std::io::Result<()> {
    let target = match ORIGINAL.load(std::sync::atomic::Ordering::SeqCst) {
        -1 => 2,
        original => original,
    };
    // Close-on-exec like the descriptor it replaces (fd 2 is inherited on purpose): cargo, rustc
    // and spares must not hold the launcher's stderr open.
    let flags = if target == 2 { 0 } else { libc::O_CLOEXEC };
    // SAFETY: dup3 onto a descriptor this module owns (or fd 2); no memory is involved.
    if unsafe { libc::dup3(fd, target, flags) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Puts a pipe on fd 2 and forwards what arrives; see the module docs.
pub(super) fn capture_stderr(sink: SharedSink) -> std::io::Result<()> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 writes two descriptors into the array on success.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fcntl/dup2/close on descriptors we own or on fd 2; results are checked.
    let original = unsafe {
        let original = libc::fcntl(2, libc::F_DUPFD_CLOEXEC, 10);
        if original < 0 || libc::dup2(fds[1], 2) < 0 {
            libc::close(fds[0]);
            libc::close(fds[1]);
            if original >= 0 {
                libc::close(original);
            }
            return Err(std::io::Error::last_os_error());
        }
        libc::close(fds[1]);
        ORIGINAL.store(original, std::sync::atomic::Ordering::SeqCst);
        std::fs::File::from_raw_fd(original)
    };
    // SAFETY: fds[0] is a fresh descriptor owned by nothing else.
    let reader = unsafe { std::fs::File::from_raw_fd(fds[0]) };
    let ticking = std::sync::Arc::clone(&sink);
    std::thread::Builder::new()
        .name("kettle-stderr".into())
        .spawn(move || forward(reader, original, &sink))?;
    std::thread::Builder::new()
        .name("kettle-build-clock".into())
        .spawn(move || {
            loop {
                std::thread::sleep(TICK);
                ticking
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .build_tick();
            }
        })?;
    Ok(())
}

fn forward(reader: std::fs::File, mut original: std::fs::File, sink: &SharedSink) {
    // Never stop reading: evcxr treats a failed write to stderr as fatal.
    for line in BufReader::new(reader).split(b'\n') {
        let Ok(mut line) = line else { break };
        if let Some(what) = compiling(&String::from_utf8_lossy(&line)) {
            sink.lock()
                .unwrap_or_else(|p| p.into_inner())
                .build_step(what);
        }
        line.push(b'\n');
        let _ = original.write_all(&line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cargo_compiling_lines_name_the_crate_and_version() {
        assert_eq!(
            compiling("   Compiling tokio v1.54.1"),
            Some("tokio v1.54.1")
        );
        assert_eq!(
            compiling("   Compiling kettle-lab v0.1.0 (/work/main/crates/kettle-lab)"),
            Some("kettle-lab v0.1.0")
        );
        assert_eq!(compiling("warning: unused variable"), None);
        assert_eq!(compiling("   Compiling "), None);
    }
}
