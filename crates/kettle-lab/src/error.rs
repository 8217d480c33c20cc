//! The one error type of the crate's clients ([`LabError`]).
//!
//! Servers report start-up failures as plain [`std::io::Error`] (binding a socket is the only
//! thing that can fail there); the clients can fail in more interesting ways, and a learner
//! should be able to tell "the server said 404" from "the connection was refused".

use std::fmt;
use std::io;

/// What went wrong in one of the crate's small clients ([`fetch_json`](crate::fetch_json),
/// [`get_temperature`](crate::get_temperature)).
#[derive(Debug)]
#[non_exhaustive]
pub enum LabError {
    /// Connecting, writing or reading the socket failed (refused, reset, timed out, ...).
    Io(io::Error),
    /// The URL is not of the form `http://host:port/path?query` (only plain `http` is spoken).
    InvalidUrl(String),
    /// The server answered, but with a status other than 2xx; `body` is its (JSON) explanation.
    Status {
        /// The HTTP status code, e.g. 401 or 404.
        code: u16,
        /// The response body as text, e.g. `{"cod":"404","message":"city not found"}`.
        body: String,
    },
    /// The server's reply is not the HTTP or JSON we expected; the text says what was missing.
    BadResponse(String),
}

impl fmt::Display for LabError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LabError::Io(e) => write!(f, "I/O error: {e}"),
            LabError::InvalidUrl(url) => {
                write!(f, "invalid URL (expected http://host:port/...): {url}")
            }
            LabError::Status { code, body } => write!(f, "HTTP status {code}: {body}"),
            LabError::BadResponse(what) => write!(f, "unexpected response: {what}"),
        }
    }
}

impl std::error::Error for LabError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LabError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for LabError {
    fn from(e: io::Error) -> Self {
        LabError::Io(e)
    }
}
