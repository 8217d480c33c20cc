//! The typist stand-in for cells C1–C3 (InputReader): text that "is typed" into a real OS pipe.
//!
//! The Python original reads a line from the keyboard while the main thread counts squares.
//! A notebook cell cannot rely on someone typing, so a thread plays the person: it writes one
//! character at a time into an [`std::io::pipe`] and then closes it. The reader end is a real
//! file descriptor, so a read on it blocks in the kernel exactly like reading a terminal.

use std::io::{self, BufRead, BufReader, Write};
use std::thread;
use std::time::Duration;

/// What the typist types in the course notebooks (the book's example input).
pub const TYPED_TEXT: &str = "hello world\n";

/// Starts a thread that types `text` into a pipe, one character every `per_char`, and returns
/// the reading end. The pipe is closed (end of file) after the last character.
///
/// The result is `Send`, so an InputReader thread can own it; `read_line` on it blocks until
/// the typist reaches a newline, like `input()` in the book.
///
/// ```
/// use std::io::BufRead;
/// use std::time::{Duration, Instant};
///
/// let start = Instant::now();
/// let mut keyboard = kettle_lab::typist("hi\n", Duration::from_millis(20));
/// let mut line = String::new();
/// keyboard.read_line(&mut line)?;
/// assert_eq!(line, "hi\n");
/// assert!(start.elapsed() >= Duration::from_millis(60), "three characters, 20 ms each");
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Panics
///
/// If the OS refuses to create a pipe or a thread (out of file descriptors or memory); use
/// [`try_typist`] to get that as an error instead.
pub fn typist(text: impl Into<String>, per_char: Duration) -> impl BufRead + Send + 'static {
    try_typist(text, per_char)
        .expect("kettle_lab::typist: cannot create a pipe and its writer thread")
}

/// Like [`typist`], but reports a failure to create the pipe or the thread.
pub fn try_typist(
    text: impl Into<String>,
    per_char: Duration,
) -> io::Result<impl BufRead + Send + 'static> {
    let text = text.into();
    let (reader, mut writer) = io::pipe()?;
    thread::Builder::new()
        .name("typist".into())
        .spawn(move || {
            let mut utf8 = [0u8; 4];
            for c in text.chars() {
                thread::sleep(per_char);
                // One whole character per write: pipe writes below PIPE_BUF are atomic, so a reader
                // never sees half of a multi-byte character. An error means the reader is gone.
                if writer
                    .write_all(c.encode_utf8(&mut utf8).as_bytes())
                    .is_err()
                {
                    return;
                }
            }
            // Dropping `writer` closes the pipe: the reader sees end of file.
        })?;
    Ok(BufReader::new(reader))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn types_everything_then_closes() {
        let mut all = String::new();
        typist("añb\nc", Duration::ZERO)
            .read_to_string(&mut all)
            .unwrap();
        assert_eq!(all, "añb\nc");
    }

    #[test]
    fn dropping_the_reader_ends_the_typist() {
        // The writer gets EPIPE (Rust ignores SIGPIPE) and returns instead of typing on.
        drop(typist("x".repeat(100), Duration::from_millis(1)));
    }
}
