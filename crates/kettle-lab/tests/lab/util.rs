//! Helpers shared by the test modules: raw socket exchanges that bypass the crate's client, so
//! a bug shared by client and server cannot hide.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

/// Sends `bytes` as-is (optionally half-closing afterwards) and returns everything the server
/// sends back before closing, as lossy text.
pub fn raw_exchange(addr: SocketAddr, bytes: &[u8], half_close: bool) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(bytes).expect("write");
    if half_close {
        stream.shutdown(Shutdown::Write).expect("half-close");
    }
    let mut reply = Vec::new();
    // A reset after the response is fine for these tests; keep what arrived.
    let _ = stream.read_to_end(&mut reply);
    String::from_utf8_lossy(&reply).into_owned()
}

/// The status code of a raw HTTP response, if it has a status line.
pub fn status_of(response: &str) -> Option<u16> {
    response.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}
