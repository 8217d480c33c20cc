//! `kettle-worker factor`: the chapter's `prime_factor` (C8) as a pool worker process.
//!
//! Reads one number per line on stdin and answers each with a line `<number> <factor>...` on
//! stdout, until end of input. The numbers and factors cross the pipe as text, the Rust
//! counterpart of `Pool.map` pickling arguments and results.

use std::io::{BufRead, BufWriter, Write};

use super::WorkerError;

/// Arguments and behaviour, for `kettle-worker` without arguments.
pub const USAGE: &str = "              numbers on stdin, `<n> <factors>...` lines on stdout";

/// The book's deliberately slow `prime_factor`: trial division by every divisor from 2 to
/// `value - 2`; on the first hit, recurse on the divisor and the quotient. No divisor: prime.
pub fn prime_factor(value: u64) -> Vec<u64> {
    let mut factors = Vec::new();
    for divisor in 2..value.saturating_sub(1) {
        let (quotient, remainder) = (value / divisor, value % divisor);
        if remainder == 0 {
            factors.extend(prime_factor(divisor));
            factors.extend(prime_factor(quotient));
            return factors; // Python's `break` that skips the `for ... else`
        }
    }
    vec![value]
}

/// Entry point.
pub fn run(_args: &[String]) -> Result<(), WorkerError> {
    let stdin = std::io::stdin().lock();
    let mut out = BufWriter::new(std::io::stdout().lock());
    for line in stdin.lines() {
        let line = line?;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let value: u64 = line
            .parse()
            .map_err(|_| WorkerError::Usage(format!("not a number: `{line}`")))?;
        write!(out, "{value}")?;
        for f in prime_factor(value) {
            write!(out, " {f}")?;
        }
        writeln!(out)?;
        // One answer per request, sent at once: the parent may be waiting for it.
        out.flush()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::prime_factor;

    #[test]
    fn factors_multiply_back_like_the_book_prints_them() {
        assert_eq!(prime_factor(9_117_031), [7, 11, 167, 709]);
        assert_eq!(prime_factor(32_839_506), [2, 3, 3, 3, 3, 3, 7, 7, 7, 197]);
        assert_eq!(prime_factor(13), [13]);
        for v in [241_334u64, 38_298_625, 100_003] {
            assert_eq!(prime_factor(v).iter().product::<u64>(), v);
        }
    }
}
