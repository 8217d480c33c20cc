//! The error type of the wire layer: everything that can be wrong with bytes from outside.

use thiserror::Error;

/// What was wrong with a connection file or an incoming message.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum WireError {
    /// The multipart message has no `<IDS|MSG>` frame.
    #[error("no <IDS|MSG> delimiter among {frames} frames")]
    MissingDelimiter { frames: usize },
    /// Fewer than the signature + 4 JSON frames after the delimiter.
    #[error("expected at least 5 frames after the delimiter, got {got}")]
    TooFewFrames { got: usize },
    /// The HMAC signature does not match the message (or is not hex).
    #[error("invalid message signature")]
    BadSignature,
    /// The connection file asks for a signing scheme we do not implement.
    #[error("unsupported signature scheme {0:?} (only hmac-sha256)")]
    UnsupportedScheme(String),
    /// A frame (`header`, `parent_header`, `metadata`, `content`) or the connection file is not
    /// the JSON it should be; this also covers invalid UTF-8.
    #[error("invalid JSON in the {frame} frame: {source}")]
    Json {
        frame: &'static str,
        #[source]
        source: serde_json::Error,
    },
}
