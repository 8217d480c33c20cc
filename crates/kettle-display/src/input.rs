//! Reading a line from the learner, like Python's `input()`.
//!
//! In the kernel, [`input`] and [`input_password`] tell the kernel first (one `input` line on
//! the side channel, with the prompt and whether to hide what is typed), so the frontend shows
//! the prompt in its input box; the line then arrives on stdin. Plain `std::io::stdin()` reads
//! work too (the kernel notices them), but cannot carry a prompt or hide a password.

use std::io::{BufRead, Write};

use crate::transport::{Op, in_kernel, send};

/// Shows `prompt`, reads one line from stdin and returns it without the line ending.
///
/// Returns an empty string at end of input (for example when the frontend does not accept
/// input).
///
/// ```no_run
/// let name = kettle_display::input("Your name: ");
/// println!("hello {name}");
/// ```
pub fn input(prompt: &str) -> String {
    read_line(prompt, false)
}

/// Like [`input`], but the frontend hides what is typed.
pub fn input_password(prompt: &str) -> String {
    read_line(prompt, true)
}

fn read_line(prompt: &str, password: bool) -> String {
    if in_kernel() {
        send(&Op::Input { prompt, password });
    } else {
        print!("{prompt}");
        let _ = std::io::stdout().flush();
    }
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    let trimmed = line.trim_end_matches(['\n', '\r']).len();
    line.truncate(trimmed);
    line
}
