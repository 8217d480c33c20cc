//! The `kettle` executable: hands the process to evcxr's child roles first, then runs the CLI.

use clap::Parser;
use std::process::ExitCode;

// The executable's own `write` and `writev`, exported (see build.rs) so that the cell libraries
// the child runtime loads bind their std's calls to them: that is how the child's stdout,
// stderr and displays reach the kernel in the order they were written. Everywhere else they are
// the system calls. See `kettle::engine::channel`.

/// `write(2)`, routed by [`kettle::engine::channel::write`].
///
/// # Safety
/// The contract of `write(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn write(
    fd: libc::c_int,
    buf: *const libc::c_void,
    count: libc::size_t,
) -> libc::ssize_t {
    // SAFETY: the caller upholds write(2)'s contract, which is ours.
    unsafe { kettle::engine::channel::write(fd, buf, count) }
}

/// `writev(2)`, routed by [`kettle::engine::channel::writev`].
///
/// # Safety
/// The contract of `writev(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn writev(
    fd: libc::c_int,
    iov: *const libc::iovec,
    iovcnt: libc::c_int,
) -> libc::ssize_t {
    // SAFETY: the caller upholds writev(2)'s contract, which is ours.
    unsafe { kettle::engine::channel::writev(fd, iov, iovcnt) }
}

/// mimalloc in the kernel, the system's allocator where cells run (see [`kettle::allocator`]).
#[global_allocator]
static ALLOCATOR: kettle::allocator::KernelAllocator = kettle::allocator::KernelAllocator;

fn main() -> ExitCode {
    // Must come before anything else: evcxr re-executes this very binary as the process that
    // runs user code and as a rustc wrapper. If those invocations reached the CLI, each would
    // start another kernel (a fork bomb).
    kettle::engine::runtime::dispatch_if_child();

    let cli = kettle::cli::Cli::parse();
    match kettle::cli::run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("kettle: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
