//! MuchCPU as a program of its own, for cell X5's "Rust child processes" (the chapter's C6).
//!
//! `muchcpu <iterations>` prints its process id, spins, and prints the spin's result. The same
//! file is compiled into kettle-lab as a module (so `much_cpu` is unit tested) and, as source
//! text, handed to `rustc` by [`crate::muchcpu_program`] to build the executable a notebook
//! spawns. Keep it std-only and free of `crate::` paths: it must compile on its own.

use std::hint::black_box;

/// The chapter's MuchCPU loop: `iterations` rounds of work the optimiser cannot delete.
pub fn much_cpu(iterations: u64) -> u64 {
    let mut x = 0u64;
    for i in 0..iterations {
        x = black_box(x.wrapping_add(i));
    }
    x
}

#[allow(dead_code)] // only the standalone program's entry point
fn main() {
    let iterations = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000_000);
    println!("{}", std::process::id());
    println!("{}", much_cpu(iterations));
}

#[cfg(test)]
mod tests {
    #[test]
    fn spins_the_requested_number_of_rounds() {
        assert_eq!(super::much_cpu(0), 0);
        assert_eq!(super::much_cpu(5), 1 + 2 + 3 + 4);
    }
}
