//! Pure protocol data for the Jupyter messaging spec (5.4): the connection file, message
//! headers, typed message contents, HMAC signing and the multipart frame codec.
//!
//! Nothing here does I/O: [`crate::transport`] moves the frames, [`crate::session`] decides
//! what they mean. Spec: <https://jupyter-client.readthedocs.io/en/latest/messaging.html>.

mod connection;
mod content;
mod error;
mod frames;
mod header;
mod signing;

pub use connection::{ConnectionInfo, TransportKind};
pub use content::*;
pub use error::WireError;
pub use frames::{DELIMITER, Message, RawMessage};
pub use header::{Header, PROTOCOL_VERSION};
pub use signing::Signer;

/// One multipart ZeroMQ message: a list of frames.
pub type Frames = Vec<Vec<u8>>;

#[cfg(test)]
mod golden_tests;
