//! `kettle-worker muchcpu <iterations>`: the chapter's `MuchCPU.run()` (C6) as a child process.
//!
//! Prints its process id (the book's `os.getpid()`), spins, then prints the spin's result, so
//! the parent can check that the work was really done.

use std::hint::black_box;
use std::io::Write;

use super::{WorkerError, parse_arg};

/// Arguments and behaviour, for `kettle-worker` without arguments.
pub const USAGE: &str = "<iterations>  print the pid, spin, print the result";

/// The chapter's MuchCPU loop, the same one notebook cells run on threads: `iterations` rounds
/// of arithmetic in one register, each needing the one before, so the optimiser can neither skip
/// nor shorten them; `black_box` marks the result as used, so the loop stays even when a caller
/// ignores it.
// Register-only on purpose: a loop that goes through memory each round (`x = black_box(x + i)`)
// ran at 1× or 2× speed depending on the CPU and on where the compiler put `x`, and "threads
// against processes" then measured that instead of threads and processes. Never inlined, and
// built with a cell's settings (see `worker_exe`), it is the same machine code here and in a cell.
#[inline(never)]
pub fn much_cpu(iterations: u64) -> u64 {
    let mut x = 0u64;
    for i in 0..iterations {
        x = x.rotate_left(5).wrapping_add(i);
    }
    black_box(x)
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
        // 0 → 0 + 0 → 0 + 1 → (1 << 5) + 2
        assert_eq!(super::much_cpu(3), 34);
        assert_eq!(super::much_cpu(1 << 20), super::much_cpu(1 << 20), "deterministic");
    }
}
