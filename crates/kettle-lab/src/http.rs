//! The sliver of HTTP/1.1 (RFC 9112) and URL encoding (RFC 3986) the stand-ins need.
//!
//! Server side: read one request head with a size limit, parse the request line strictly enough
//! to reject garbage with a 400, decode a query string, write a `Connection: close` response.
//! Client side: percent-encode a query value. Bodies of requests are never read (only `GET` is
//! served), and every response closes the connection, so no chunking or keep-alive is needed.

use std::io::{self, Read, Write};

/// Longest request head accepted; real browsers stay far below this, garbage may not.
pub(crate) const MAX_HEAD: usize = 8 * 1024;

/// The parts of a request line we act on.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct RequestHead {
    /// `GET`, `POST`, ... (case-sensitive, RFC 9110 §9.1).
    pub method: String,
    /// The origin-form target: `/path?query`.
    pub target: String,
}

/// Why no request head could be read.
#[derive(Debug)]
pub(crate) enum HeadError {
    /// The peer closed (or reset) before sending a byte: nothing to answer.
    Closed,
    /// Reading failed or timed out; the connection is unusable.
    Io,
    /// Bytes arrived but they are not an HTTP/1.x request head; answer 400 with this reason.
    Malformed(&'static str),
    /// No end of head within [`MAX_HEAD`] bytes; answer 431.
    TooLarge,
}

/// Reads from `stream` until the blank line that ends a request head, then parses it.
///
/// Bare `\n` line ends are accepted as well as `\r\n` (RFC 9112 §2.2 allows it), which keeps
/// hand-typed requests from `nc` working.
pub(crate) fn read_head(stream: &mut impl Read) -> Result<RequestHead, HeadError> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        let n = match stream.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if buf.is_empty() && e.kind() == io::ErrorKind::ConnectionReset => {
                return Err(HeadError::Closed);
            }
            Err(_) => return Err(HeadError::Io),
        };
        if n == 0 {
            // A half-closed connection: the client will not send more, but may still read.
            return Err(if buf.is_empty() {
                HeadError::Closed
            } else {
                HeadError::Malformed("connection closed before the end of the request head")
            });
        }
        buf.extend_from_slice(&chunk[..n]);
        match head_end(&buf) {
            Some(end) if end <= MAX_HEAD => return parse_head(&buf[..end]),
            Some(_) => return Err(HeadError::TooLarge),
            None => {}
        }
        if buf.len() > MAX_HEAD {
            return Err(HeadError::TooLarge);
        }
    }
}

/// Index just before the blank line, if the head is complete.
fn head_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n");
    let lf = buf.windows(2).position(|w| w == b"\n\n");
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Parses a complete head (without its final blank line).
pub(crate) fn parse_head(head: &[u8]) -> Result<RequestHead, HeadError> {
    let text =
        std::str::from_utf8(head).map_err(|_| HeadError::Malformed("request head is not text"))?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let request_line = lines.next().unwrap_or("");
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HeadError::Malformed(
            "request line must be METHOD SP TARGET SP VERSION",
        ));
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(HeadError::Malformed("invalid method"));
    }
    if !target.starts_with('/') {
        return Err(HeadError::Malformed("request target must start with '/'"));
    }
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(HeadError::Malformed(
            "only HTTP/1.0 and HTTP/1.1 are spoken",
        ));
    }
    // Header values are not needed, but a line without a colon means we are not reading HTTP.
    if lines.any(|l| !l.is_empty() && !l.contains(':')) {
        return Err(HeadError::Malformed("header line without ':'"));
    }
    Ok(RequestHead {
        method: method.to_owned(),
        target: target.to_owned(),
    })
}

/// A decoded query string: `(name, value)` pairs in their original order.
pub(crate) type Query = Vec<(String, String)>;

/// Splits `path?query` and decodes the query into `(name, value)` pairs, in order.
///
/// Fails (-> 400) on a broken `%` escape or on bytes that do not decode to UTF-8.
pub(crate) fn split_target(target: &str) -> Result<(&str, Query), &'static str> {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut pairs = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        pairs.push((percent_decode(name)?, percent_decode(value)?));
    }
    Ok((path, pairs))
}

/// Decodes `%XX` escapes and `+` (a space in HTML-form query strings, as browsers send it).
pub(crate) fn percent_decode(s: &str) -> Result<String, &'static str> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).ok_or("truncated % escape")?;
                let hex = std::str::from_utf8(hex).map_err(|_| "invalid % escape")?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| "invalid % escape")?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| "query is not UTF-8 after decoding")
}

/// Percent-encodes everything except RFC 3986 "unreserved" characters, so that a city such as
/// `St. John's` travels as `St.%20John%27s` and cannot break the `q=<city>,CA` syntax.
pub(crate) fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Escapes `s` for use inside a JSON string literal (RFC 8259 §7).
pub(crate) fn json_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// The reason phrase for the statuses the stand-ins send.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// Writes a complete JSON response and flushes it. The connection is closed by the caller, as
/// announced by `Connection: close`; `Content-Length` still lets clients stop reading early.
pub(crate) fn write_json_response(
    stream: &mut impl Write,
    status: u16,
    body: &str,
) -> io::Result<()> {
    let mut response = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\nServer: kettle-lab\r\n",
        reason(status),
        body.len()
    );
    if status == 405 {
        response.push_str("Allow: GET\r\n");
    }
    response.push_str("\r\n");
    response.push_str(body);
    stream.write_all(response.as_bytes())?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<RequestHead, HeadError> {
        read_head(&mut s.as_bytes())
    }

    #[test]
    fn parses_a_request_line_with_headers() {
        let head = parse("GET /a?b=c HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        assert_eq!(
            head,
            RequestHead {
                method: "GET".into(),
                target: "/a?b=c".into()
            }
        );
        assert!(
            parse("GET / HTTP/1.0\n\n").is_ok(),
            "bare LF line ends are accepted"
        );
    }

    #[test]
    fn rejects_what_is_not_http() {
        for bad in [
            "GET\r\n\r\n",
            "GET / \r\n\r\n",
            "GET x HTTP/1.1\r\n\r\n",
            "GET / HTTP/2\r\n\r\n",
            "\r\n\r\n",
        ] {
            assert!(
                matches!(parse(bad), Err(HeadError::Malformed(_))),
                "{bad:?} accepted"
            );
        }
        assert!(matches!(
            parse("GET / HTTP/1.1\r\nno colon\r\n\r\n"),
            Err(HeadError::Malformed(_))
        ));
        assert!(matches!(
            read_head(&mut &b"\xff\xfe\r\n\r\n"[..]),
            Err(HeadError::Malformed(_))
        ));
        assert!(matches!(parse("GET /half"), Err(HeadError::Malformed(_))));
        assert!(matches!(parse(""), Err(HeadError::Closed)));
        let huge = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_HEAD + 10));
        assert!(matches!(parse(&huge), Err(HeadError::TooLarge)));
    }

    #[test]
    fn decodes_queries() {
        let (path, q) = split_target("/w?q=St.%20John%27s,CA&units=metric&appid=&flag").unwrap();
        assert_eq!(path, "/w");
        let q: Vec<(&str, &str)> = q.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        assert_eq!(
            q,
            [
                ("q", "St. John's,CA"),
                ("units", "metric"),
                ("appid", ""),
                ("flag", "")
            ]
        );
        assert_eq!(percent_decode("Qu%C3%A9bec+City").unwrap(), "Québec City");
        assert!(percent_decode("%4").is_err());
        assert!(percent_decode("%zz").is_err());
        assert!(percent_decode("%ff").is_err(), "invalid UTF-8");
    }

    #[test]
    fn encode_round_trips() {
        for s in ["St. John's", "Québec City", "a&b=c,d"] {
            assert_eq!(percent_decode(&percent_encode(s)).unwrap(), s);
        }
        assert_eq!(percent_encode("St. John's"), "St.%20John%27s");
    }

    #[test]
    fn escapes_json() {
        assert_eq!(json_escape("a\"b\\c\n\u{1}"), "a\\\"b\\\\c\\n\\u0001");
    }
}
