//! `kettle-worker search <file>...`: the chapter's queue search engine worker (C9) as a child
//! process.
//!
//! Loads every line of its files (trimmed) into memory once, then answers queries: one query
//! per line on stdin, answered on stdout by a line with the number of matches followed by the
//! matching lines. End of input is the book's `None` sentinel: the worker exits.

use std::io::{BufRead, BufWriter, Write};

use super::WorkerError;

/// Arguments and behaviour, for `kettle-worker` without arguments.
pub const USAGE: &str = "<file>...     queries on stdin, `<count>` + matching lines on stdout";

/// Every line of `paths`, trimmed, in file order.
pub fn load_lines(paths: &[String]) -> std::io::Result<Vec<String>> {
    let mut lines = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(path)?;
        lines.extend(text.lines().map(|l| l.trim().to_owned()));
    }
    Ok(lines)
}

/// Entry point.
pub fn run(args: &[String]) -> Result<(), WorkerError> {
    let lines = load_lines(args)?;
    let stdin = std::io::stdin().lock();
    let mut out = BufWriter::new(std::io::stdout().lock());
    for query in stdin.lines() {
        let query = query?;
        let found: Vec<&String> = lines.iter().filter(|l| l.contains(query.as_str())).collect();
        writeln!(out, "{}", found.len())?;
        for line in found {
            writeln!(out, "{line}")?;
        }
        out.flush()?;
    }
    Ok(())
}
