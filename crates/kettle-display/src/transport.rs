//! Where display operations go: one JSON line each on the kernel's side channel
//! (`KETTLE_DISPLAY_FD`), or a readable text rendering on stdout when no kernel is listening.
//!
//! The line format is the contract with the kernel (see the crate docs); [`Op::to_json_line`]
//! is the single place that produces it.

use std::io::Write;
use std::sync::{Mutex, OnceLock};

use crate::bundle::Bundle;
use crate::json_text;

/// Environment variable holding the side-channel file descriptor number.
pub const DISPLAY_FD_VAR: &str = "KETTLE_DISPLAY_FD";

/// One display operation, as sent to the kernel.
#[derive(Debug)]
pub(crate) enum Op<'a> {
    Display {
        bundle: &'a Bundle,
        display_id: Option<&'a str>,
    },
    Update {
        bundle: &'a Bundle,
        display_id: &'a str,
    },
    Clear {
        wait: bool,
    },
    /// Asks the kernel to request a line of input from the frontend (read from stdin next).
    Input {
        prompt: &'a str,
        password: bool,
    },
}

impl Op<'_> {
    /// The newline-terminated JSON line for this operation.
    pub(crate) fn to_json_line(&self) -> String {
        let mut out = String::with_capacity(256);
        match self {
            Op::Display { bundle, display_id } => {
                out.push_str("{\"op\":\"display\",");
                bundle.write_json_fields(&mut out);
                out.push_str(",\"display_id\":");
                match display_id {
                    Some(id) => json_text::push_str(&mut out, id),
                    None => out.push_str("null"),
                }
            }
            Op::Update { bundle, display_id } => {
                out.push_str("{\"op\":\"update\",");
                bundle.write_json_fields(&mut out);
                out.push_str(",\"display_id\":");
                json_text::push_str(&mut out, display_id);
            }
            Op::Clear { wait } => {
                out.push_str("{\"op\":\"clear\",\"wait\":");
                out.push_str(if *wait { "true" } else { "false" });
            }
            Op::Input { prompt, password } => {
                out.push_str("{\"op\":\"input\",\"prompt\":");
                json_text::push_str(&mut out, prompt);
                out.push_str(",\"password\":");
                out.push_str(if *password { "true" } else { "false" });
            }
        }
        out.push_str("}\n");
        out
    }

    /// What a terminal shows instead: the plain-text fallback, updates marked as such.
    fn to_text(&self) -> Option<String> {
        let mut text = match self {
            Op::Display { bundle, .. } => bundle.plain().to_owned(),
            Op::Update { bundle, .. } => format!("[update] {}", bundle.plain()),
            // A terminal cannot clear what it already printed; saying nothing is the least
            // surprising rendering.
            Op::Clear { .. } => return None,
            // The prompt is printed by `input` itself, without a newline.
            Op::Input { .. } => return None,
        };
        if !text.ends_with('\n') {
            text.push('\n');
        }
        Some(text)
    }
}

enum Sink {
    #[cfg(unix)]
    Fd(Mutex<std::mem::ManuallyDrop<std::fs::File>>),
    Stdout,
}

fn sink() -> &'static Sink {
    static SINK: OnceLock<Sink> = OnceLock::new();
    SINK.get_or_init(|| {
        #[cfg(unix)]
        if let Some(fd) = std::env::var(DISPLAY_FD_VAR)
            .ok()
            .and_then(|v| v.trim().parse::<i32>().ok())
            .filter(|fd| *fd >= 0)
        {
            use std::os::fd::FromRawFd;
            // SAFETY: the kernel promises that this fd is open for the life of the process
            // and reserved for us. ManuallyDrop: the fd is the kernel's, we never close it.
            let file = unsafe { std::fs::File::from_raw_fd(fd) };
            return Sink::Fd(Mutex::new(std::mem::ManuallyDrop::new(file)));
        }
        Sink::Stdout
    })
}

/// `true` when display operations go to a kernel rather than to stdout.
pub fn in_kernel() -> bool {
    !matches!(sink(), Sink::Stdout)
}

/// Sends one operation. Errors are swallowed on purpose: a display that cannot be delivered
/// (kernel gone, pipe closed) must never make the learner's computation fail.
pub(crate) fn send(op: &Op<'_>) {
    match sink() {
        #[cfg(unix)]
        Sink::Fd(file) => {
            let line = op.to_json_line();
            // One write_all under a process-wide lock: lines from different threads never
            // interleave. A poisoned lock only means another thread panicked mid-write.
            let mut file = file.lock().unwrap_or_else(|e| e.into_inner());
            let _ = file.write_all(line.as_bytes());
        }
        Sink::Stdout => {
            if let Some(text) = op.to_text() {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(text.as_bytes());
                let _ = out.flush();
            }
        }
    }
}
