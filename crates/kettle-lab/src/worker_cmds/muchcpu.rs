//! `kettle-worker muchcpu <iterations>`: the chapter's `MuchCPU.run()` (C6) as a child process.
//!
//! Prints its process id (the book's `os.getpid()`), spins, then prints the spin's result, so
//! the parent can check that the work was really done.

use std::hint::black_box;
use std::io::Write;

use super::{WorkerError, parse_arg};

/// Arguments and behaviour, for `kettle-worker` without arguments.
pub const USAGE: &str = "<iterations>  print the pid, spin, print the result";

/// The chapter's MuchCPU loop: `iterations` rounds of work the optimiser cannot delete
/// (`black_box`), the same loop notebook cells run on threads.
pub fn much_cpu(iterations: u64) -> u64 {
    let mut x = 0u64;
    for i in 0..iterations {
        x = black_box(x.wrapping_add(i));
    }
    x
}

/// Entry point.
pub fn run(args: &[String]) -> Result<(), WorkerError> {
    let iterations: u64 = parse_arg(args.first(), "iterations")?;
    let mut out = std::io::stdout().lock();
    // The pid goes out (and is flushed) before the work, like the book's first print.
    writeln!(out, "{}", std::process::id())?;
    out.flush()?;
    writeln!(out, "{}", much_cpu(iterations))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn spins_the_requested_number_of_rounds() {
        assert_eq!(super::much_cpu(0), 0);
        assert_eq!(super::much_cpu(5), 1 + 2 + 3 + 4);
    }
}
