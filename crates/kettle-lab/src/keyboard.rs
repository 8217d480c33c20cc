//! The InputReader's keyboard (C1–C3): the learner's stdin when someone can type, the
//! [`typist`](crate::typist) when nobody can.
//!
//! In JupyterLab a read from stdin makes the kettle kernel ask the frontend for a line (an
//! `input_request`). When the notebook runs unattended (nbclient in CI, `jupyter nbconvert
//! --execute`, a frontend with stdin disabled) the kernel answers such reads with end of file
//! at once. The InputReader cells must still show a thread waiting for a person, so [`keyboard`]
//! falls back to a typist thread typing [`TYPED_TEXT`](crate::TYPED_TEXT) into a pipe: the
//! reader still blocks on a real file descriptor for about a second, as if someone typed.

use std::io::{self, BufRead, BufReader, Read, Stdin};
use std::time::Duration;

use crate::typist::{TYPED_TEXT, typist};

/// Set this environment variable (to anything but `0`) to skip stdin entirely and always let
/// the typist type, e.g. when stdin is a terminal nobody watches.
pub const UNATTENDED_VAR: &str = "KETTLE_UNATTENDED";

/// How fast the stand-in typist types: [`TYPED_TEXT`](crate::TYPED_TEXT) ("hello world\n", 12
/// characters) takes about one second, as long as the Python baseline waited before typing.
pub const TYPIST_PER_CHAR: Duration = Duration::from_millis(83);

/// A line source that reads `primary` and, if `primary` is at end of file before giving a
/// single byte, switches for good to a typist typing [`TYPED_TEXT`](crate::TYPED_TEXT).
///
/// ```
/// use std::io::BufRead;
/// use std::time::Duration;
/// // Nobody at the keyboard: an empty primary source.
/// let mut keys = kettle_lab::Keyboard::with_typist_speed(std::io::empty(), Duration::ZERO);
/// let mut line = String::new();
/// keys.read_line(&mut line)?;
/// assert_eq!(line, "hello world\n");
/// assert!(keys.used_typist());
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Keyboard<R> {
    source: Source<R>,
    per_char: Duration,
}

enum Source<R> {
    /// Not read from yet: we do not know whether anyone is there.
    Untried(R),
    /// The primary source gave at least one byte: someone is typing.
    Primary(R),
    /// The primary source was empty; the typist took over.
    Typist(Box<dyn BufRead + Send>),
}

impl<R: BufRead> Keyboard<R> {
    /// Reads `primary`, falling back to a typist at [`TYPIST_PER_CHAR`].
    pub fn new(primary: R) -> Self {
        Self::with_typist_speed(primary, TYPIST_PER_CHAR)
    }

    /// Like [`Keyboard::new`] with another typing speed for the fallback (tests use zero).
    pub fn with_typist_speed(primary: R, per_char: Duration) -> Self {
        Keyboard {
            source: Source::Untried(primary),
            per_char,
        }
    }

    /// `true` once the typist has taken over (nobody was at the keyboard).
    pub fn used_typist(&self) -> bool {
        matches!(self.source, Source::Typist(_))
    }

    fn settle(&mut self) -> io::Result<()> {
        if let Source::Untried(primary) = &mut self.source {
            // fill_buf blocks until the first byte or end of file: exactly the "is anyone
            // there?" question, and it consumes nothing, so a real line is later read in full.
            let nobody = primary.fill_buf()?.is_empty();
            let placeholder = Source::Typist(Box::new(io::empty()));
            self.source = match std::mem::replace(&mut self.source, placeholder) {
                Source::Untried(primary) if !nobody => Source::Primary(primary),
                _ => Source::Typist(Box::new(typist(TYPED_TEXT, self.per_char))),
            };
        }
        Ok(())
    }

    fn current(&mut self) -> io::Result<&mut dyn BufRead> {
        self.settle()?;
        Ok(match &mut self.source {
            Source::Untried(r) | Source::Primary(r) => r,
            Source::Typist(t) => t.as_mut(),
        })
    }
}

impl<R: BufRead> Read for Keyboard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.current()?.read(buf)
    }
}

impl<R: BufRead> BufRead for Keyboard<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.current()?.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        if let Ok(r) = self.current() {
            r.consume(amount);
        }
    }
}

/// The keyboard for the InputReader cells: stdin, or the typist when stdin is at end of file
/// (the notebook runs unattended) or [`UNATTENDED_VAR`] is set. `Send`, so an InputReader
/// thread can own it.
///
/// ```no_run
/// use std::io::BufRead;
/// let mut line = String::new();
/// kettle_lab::keyboard().read_line(&mut line)?; // you, or "hello world" after about a second
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn keyboard() -> Keyboard<BufReader<Stdin>> {
    let primary = BufReader::new(io::stdin());
    let mut keys = Keyboard::new(primary);
    if std::env::var_os(UNATTENDED_VAR).is_some_and(|v| v != "0") {
        keys.source = Source::Typist(Box::new(typist(TYPED_TEXT, keys.per_char)));
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn someone_typing_is_read_and_the_typist_stays_away() {
        let mut keys = Keyboard::with_typist_speed(&b"wi\nrest"[..], Duration::ZERO);
        let mut line = String::new();
        keys.read_line(&mut line).unwrap();
        assert_eq!(line, "wi\n");
        assert!(!keys.used_typist());
        line.clear();
        keys.read_line(&mut line).unwrap();
        assert_eq!(line, "rest");
    }

    #[test]
    fn keyboard_is_send() {
        fn is_send<T: Send>(_: &T) {}
        is_send(&Keyboard::new(io::empty()));
    }
}
