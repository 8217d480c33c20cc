//! `kettle-worker sort`: the sort service's `sort_in_process` (C15) as a child process, the
//! counterpart of the book's `ProcessPoolExecutor`.
//!
//! Reads a JSON list of integers from stdin until end of input, gnome-sorts it and writes the
//! sorted JSON (same spelling, same length) to stdout. The bytes cross the pipe unparsed, as
//! the book passes bytes rather than lists to its executor so decoding happens off the loop.

use std::io::{Read, Write};

use super::WorkerError;
use crate::sort_service::sort_json;

/// Arguments and behaviour, for `kettle-worker` without arguments.
pub const USAGE: &str = "          a JSON list on stdin, gnome-sorted JSON on stdout";

/// Entry point.
pub fn run(_args: &[String]) -> Result<(), WorkerError> {
    let mut data = Vec::new();
    std::io::stdin().lock().read_to_end(&mut data)?;
    let sorted = sort_json(&data).map_err(WorkerError::Usage)?;
    let mut out = std::io::stdout().lock();
    out.write_all(&sorted)?;
    out.flush()?;
    Ok(())
}
