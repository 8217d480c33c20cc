//! A small blocking HTTP/1.1 client over `std::net::TcpStream`, enough to talk to the
//! stand-ins: one `GET`, `Connection: close`, read to the end.
//!
//! Why not `reqwest` or `ureq`: they would add a minute of compile time to a learner's first
//! `:dep kettle-lab` cell, and the point of C4–C5 is the threads around the request, not the
//! request. The JSON "parsing" is a targeted scan for one number in a flat object; it reads our
//! server's replies (and the real OpenWeatherMap's), not arbitrary JSON.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::LabError;
use crate::http::percent_encode;
use crate::weather::WEATHER_PATH;

/// The API key the helpers send. The stand-in accepts any non-empty key; it must merely be there.
pub const DEMO_APPID: &str = "kettle-demo";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// The URL of the current weather of `city` (in Canada, °C), the way the book's TempGetter
/// builds it: `{base_url}/data/2.5/weather?q={city},CA&units=metric&appid=...`.
///
/// ```
/// let url = kettle_lab::weather_url("http://127.0.0.1:8000", "St. John's");
/// assert_eq!(url, "http://127.0.0.1:8000/data/2.5/weather?q=St.%20John%27s,CA&units=metric&appid=kettle-demo");
/// ```
pub fn weather_url(base_url: &str, city: &str) -> String {
    format!(
        "{}{WEATHER_PATH}?q={},CA&units=metric&appid={DEMO_APPID}",
        base_url.trim_end_matches('/'),
        percent_encode(city)
    )
}

/// Sends `GET url` and returns the response body, or [`LabError::Status`] with the body for a
/// non-2xx answer. Only `http://host[:port]/path` URLs are supported. Blocks for the whole
/// round trip, which is exactly what the TempGetter threads are for.
///
/// ```
/// let server = kettle_lab::WeatherServer::builder().no_latency().start()?;
/// let json = kettle_lab::fetch_json(&server.weather_url("Regina"))?;
/// assert!(json.contains("\"name\":\"Regina\""));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn fetch_json(url: &str) -> Result<String, LabError> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| LabError::InvalidUrl(url.to_owned()))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(LabError::InvalidUrl(url.to_owned()));
    }
    let with_port = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let addrs = with_port
        .to_socket_addrs()
        .map_err(|_| LabError::InvalidUrl(url.to_owned()))?;
    let mut last_err = None;
    let mut stream = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last_err = Some(e),
        }
    }
    let mut stream = match (stream, last_err) {
        (Some(s), _) => s,
        (None, Some(e)) => return Err(e.into()),
        (None, None) => return Err(LabError::InvalidUrl(url.to_owned())),
    };
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes())?;
    // The server closes after one response, so "read to the end" is the whole framing.
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw)
}

/// Splits a raw response into status and body; 2xx gives the body, others an error.
fn parse_response(raw: &[u8]) -> Result<String, LabError> {
    let bad = |what: &str| LabError::BadResponse(what.to_owned());
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| bad("headers are not text"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let code: u16 = status_line
        .strip_prefix("HTTP/1.")
        .and_then(|s| s.get(2..5))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no HTTP status line"))?;
    let mut body = &raw[end + 4..];
    let length = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok());
    if let Some(n) = length {
        body = body
            .get(..n)
            .ok_or_else(|| bad("body shorter than Content-Length"))?;
    }
    let body = String::from_utf8(body.to_vec()).map_err(|_| bad("body is not UTF-8"))?;
    if (200..300).contains(&code) {
        Ok(body)
    } else {
        Err(LabError::Status { code, body })
    }
}

/// Asks the weather server at `base_url` for the current temperature of `city` in °C.
///
/// This is the body of the book's `TempGetter.run()`: one HTTP GET, then `main.temp` from the
/// JSON reply.
///
/// ```
/// let server = kettle_lab::WeatherServer::builder().no_latency().start()?;
/// let t = kettle_lab::get_temperature(&server.url(), "Edmonton")?;
/// assert_eq!(format!("it is {t:.0}°C in Edmonton"), "it is 3°C in Edmonton");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn get_temperature(base_url: &str, city: &str) -> Result<f64, LabError> {
    let body = fetch_json(&weather_url(base_url, city))?;
    number_in_object(&body, "main", "temp")
        .ok_or_else(|| LabError::BadResponse(format!("no main.temp in {body}")))
}

/// Finds `"object": { ... "field": <number> ... }` and returns the number.
///
/// Skips a `"main"` that is not an object (OpenWeatherMap also has `weather[0].main: "Clear"`)
/// and stops at the object's first `}` (fine for flat objects such as `main`).
fn number_in_object(json: &str, object: &str, field: &str) -> Option<f64> {
    let object_key = format!("\"{object}\"");
    let field_key = format!("\"{field}\"");
    let mut from = 0;
    while let Some(found) = json[from..].find(&object_key) {
        let after = from + found + object_key.len();
        from = after;
        let Some(inner) = json[after..].trim_start().strip_prefix(':') else {
            continue;
        };
        let Some(inner) = inner.trim_start().strip_prefix('{') else {
            continue;
        };
        let inner = &inner[..inner.find('}')?];
        let at = inner.find(&field_key)?;
        let value = inner[at + field_key.len()..]
            .trim_start()
            .strip_prefix(':')?
            .trim_start();
        let len = value
            .find(|c: char| !(c.is_ascii_digit() || "+-.eE".contains(c)))
            .unwrap_or(value.len());
        return value[..len].parse().ok();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_main_temp_not_weather_main() {
        let owm = r#"{"weather":[{"id":800,"main":"Clear"}],"main" : { "temp_min":1,"temp": -4.25 ,"x":2},"cod":200}"#;
        assert_eq!(number_in_object(owm, "main", "temp"), Some(-4.25));
        assert_eq!(number_in_object(r#"{"main":"x"}"#, "main", "temp"), None);
        assert_eq!(
            number_in_object(r#"{"main":{"temp":"warm"}}"#, "main", "temp"),
            None
        );
    }

    #[test]
    fn parses_responses() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}trailing";
        assert_eq!(parse_response(ok).unwrap(), "{}");
        let not_found = b"HTTP/1.1 404 Not Found\r\n\r\n{\"cod\":\"404\"}";
        assert!(matches!(
            parse_response(not_found),
            Err(LabError::Status { code: 404, .. })
        ));
        assert!(matches!(
            parse_response(b"garbage"),
            Err(LabError::BadResponse(_))
        ));
    }

    #[test]
    fn rejects_urls_it_cannot_speak() {
        for url in [
            "https://example.com/",
            "ftp://x",
            "http:///path",
            "127.0.0.1:80/",
        ] {
            assert!(
                matches!(fetch_json(url), Err(LabError::InvalidUrl(_))),
                "{url}"
            );
        }
    }
}
