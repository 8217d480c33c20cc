//! MIME bundles: what one rich output *is* (a map from MIME type to data, plus metadata), the
//! constructors learners call (`html`, `svg`, ...), and the [`Rich`] trait for their own types.
//!
//! Follows the `data`/`metadata` shape of Jupyter's `display_data` message
//! (<https://jupyter-client.readthedocs.io/en/stable/messaging.html#display-data>).

use crate::json_text;

/// The data stored for one MIME type.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Data {
    /// Sent as a JSON string (HTML, SVG, text, base64 PNG, ...).
    Text(String),
    /// Already-valid JSON text, embedded verbatim (Jupyter wants `application/json` as a value,
    /// not as a string containing JSON).
    Json(String),
}

/// One rich output: several representations of the same thing, keyed by MIME type.
///
/// A bundle always carries a `text/plain` fallback, so a terminal, a log or a front end that
/// does not understand the rich types still shows something readable.
///
/// ```
/// use kettle_display::Bundle;
/// let b = Bundle::text("3 rows")
///     .with_html("<b>3</b> rows")
///     .with_markdown("**3** rows");
/// assert_eq!(b.plain(), "3 rows");
/// assert!(b.get("text/html").is_some());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    /// Kept in insertion order with `text/plain` first: deterministic output for golden tests.
    data: Vec<(String, Data)>,
    metadata: Vec<(String, String)>,
}

impl Bundle {
    /// A bundle that only has the `text/plain` representation.
    pub fn text(plain: impl Into<String>) -> Self {
        Bundle {
            data: vec![("text/plain".to_owned(), Data::Text(plain.into()))],
            metadata: Vec::new(),
        }
    }

    /// Adds (or replaces) the representation for `mime`, given as text.
    ///
    /// Binary formats (`image/png`, ...) are sent base64-encoded, as Jupyter expects; use
    /// [`Bundle::with_png`] for PNG so the encoding is done for you.
    pub fn with(mut self, mime: &str, data: impl Into<String>) -> Self {
        self.set(mime, Data::Text(data.into()));
        self
    }

    /// Replaces the `text/plain` fallback.
    pub fn with_text(self, plain: impl Into<String>) -> Self {
        self.with("text/plain", plain)
    }

    /// Adds a `text/html` representation.
    pub fn with_html(self, html: impl Into<String>) -> Self {
        self.with("text/html", html)
    }

    /// Adds an `image/svg+xml` representation.
    pub fn with_svg(self, svg: impl Into<String>) -> Self {
        self.with("image/svg+xml", svg)
    }

    /// Adds a `text/markdown` representation.
    pub fn with_markdown(self, md: impl Into<String>) -> Self {
        self.with("text/markdown", md)
    }

    /// Adds an `image/png` representation from the raw PNG bytes (base64-encoded here).
    pub fn with_png(self, png: &[u8]) -> Self {
        self.with("image/png", base64(png))
    }

    /// Adds an `application/json` representation from a string that holds JSON.
    ///
    /// The string is checked; text that is not valid JSON is sent as a JSON *string* instead,
    /// so a typo can never corrupt the message that carries it.
    pub fn with_json(mut self, json_text: impl Into<String>) -> Self {
        let text = json_text.into();
        let data = if json_text::is_valid(&text) {
            Data::Json(text)
        } else {
            Data::Text(text)
        };
        self.set("application/json", data);
        self
    }

    /// Adds metadata for `mime`; `json_value` must be JSON text such as `{"width": 320}`
    /// (invalid JSON is ignored, for the same reason as in [`Bundle::with_json`]).
    pub fn with_metadata(mut self, mime: &str, json_value: impl Into<String>) -> Self {
        let value = json_value.into();
        if json_text::is_valid(&value) {
            self.metadata.retain(|(m, _)| m != mime);
            self.metadata.push((mime.to_owned(), value));
        }
        self
    }

    /// The `text/plain` fallback.
    pub fn plain(&self) -> &str {
        self.get("text/plain").unwrap_or("")
    }

    /// The data for `mime` as text (for `application/json`, the JSON text).
    pub fn get(&self, mime: &str) -> Option<&str> {
        self.data
            .iter()
            .find(|(m, _)| m == mime)
            .map(|(_, d)| match d {
                Data::Text(s) | Data::Json(s) => s.as_str(),
            })
    }

    /// The MIME types present, `text/plain` first.
    pub fn mimes(&self) -> impl Iterator<Item = &str> {
        self.data.iter().map(|(m, _)| m.as_str())
    }

    fn set(&mut self, mime: &str, data: Data) {
        match self.data.iter_mut().find(|(m, _)| m == mime) {
            Some(slot) => slot.1 = data,
            None => self.data.push((mime.to_owned(), data)),
        }
    }

    /// Writes `"data":{...},"metadata":{...}` (no surrounding braces) into `out`.
    pub(crate) fn write_json_fields(&self, out: &mut String) {
        out.push_str("\"data\":{");
        for (i, (mime, data)) in self.data.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            json_text::push_str(out, mime);
            out.push(':');
            match data {
                Data::Text(s) => json_text::push_str(out, s),
                // Trim: the validator allowed surrounding whitespace, which may include
                // newlines, and a newline would end our one-line message early.
                Data::Json(s) => push_json_one_line(out, s),
            }
        }
        out.push_str("},\"metadata\":{");
        for (i, (mime, value)) in self.metadata.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            json_text::push_str(out, mime);
            out.push(':');
            push_json_one_line(out, value);
        }
        out.push('}');
    }
}

/// Copies valid JSON text, turning the whitespace newlines between tokens into spaces (inside
/// strings newlines are already escaped, so every raw `\n` or `\r` is insignificant whitespace).
fn push_json_one_line(out: &mut String, s: &str) {
    out.extend(
        s.trim()
            .chars()
            .map(|c| if c == '\n' || c == '\r' { ' ' } else { c }),
    );
}

/// A type that knows how to show itself richly in a notebook.
///
/// Implement it for your own types, then pass them to [`display`](crate::display) or make them
/// show as a cell's value with [`show_as_value`](crate::show_as_value):
///
/// ```
/// use kettle_display::{Bundle, Rich};
///
/// struct Temperature(f64);
///
/// impl Rich for Temperature {
///     fn bundle(&self) -> Bundle {
///         Bundle::text(format!("{:.1} °C", self.0))
///             .with_html(format!("<span style='color:tomato'>{:.1} °C</span>", self.0))
///     }
/// }
///
/// kettle_display::display(&Temperature(21.5)); // prints "21.5 °C" outside the kernel
/// ```
pub trait Rich {
    /// The representations of `self`; always include a `text/plain` fallback.
    fn bundle(&self) -> Bundle;
}

impl Rich for Bundle {
    fn bundle(&self) -> Bundle {
        self.clone()
    }
}

impl Rich for str {
    fn bundle(&self) -> Bundle {
        Bundle::text(self)
    }
}

impl Rich for String {
    fn bundle(&self) -> Bundle {
        Bundle::text(self.as_str())
    }
}

impl<T: Rich + ?Sized> From<&T> for Bundle {
    fn from(value: &T) -> Self {
        value.bundle()
    }
}

impl From<String> for Bundle {
    fn from(value: String) -> Self {
        Bundle::text(value)
    }
}

/// HTML, with a tag-stripped text fallback.
///
/// ```
/// let b = kettle_display::html("<h3>Results</h3><p>all <b>green</b></p>");
/// assert_eq!(b.plain(), "Results all green");
/// ```
pub fn html(html: impl Into<String>) -> Bundle {
    let html = html.into();
    Bundle::text(strip_tags(&html)).with_html(html)
}

/// An SVG image; the text fallback names its size when the root element declares one.
pub fn svg(svg: impl Into<String>) -> Bundle {
    let svg = svg.into();
    let size = match (attr(&svg, "width"), attr(&svg, "height")) {
        (Some(w), Some(h)) => format!(" {w}×{h}"),
        _ => String::new(),
    };
    Bundle::text(format!("[SVG image{size}]")).with_svg(svg)
}

/// Markdown; the text fallback is the Markdown source itself, which reads well as text.
pub fn markdown(md: impl Into<String>) -> Bundle {
    let md = md.into();
    Bundle::text(md.clone()).with_markdown(md)
}

/// JSON given as text (no serde needed); front ends show it as a collapsible tree.
///
/// ```
/// let b = kettle_display::json(r#"{"city": "Edmonton", "temp": -12}"#);
/// assert_eq!(b.get("application/json"), Some(r#"{"city": "Edmonton", "temp": -12}"#));
/// ```
pub fn json(json_text: impl Into<String>) -> Bundle {
    let text = json_text.into();
    Bundle::text(text.clone()).with_json(text)
}

/// A PNG image from its raw bytes.
pub fn png(bytes: &[u8]) -> Bundle {
    Bundle::text(format!("[PNG image, {} bytes]", bytes.len())).with_png(bytes)
}

/// Plain text.
pub fn text(s: impl Into<String>) -> Bundle {
    Bundle::text(s)
}

/// Standard base64 with padding (RFC 4648, section 4), as Jupyter expects for binary images.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.len();
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= n {
                out.push(ALPHABET[((v >> (18 - 6 * k)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Drops tags and collapses whitespace: good enough for a fallback, not an HTML parser.
fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => {
                in_tag = true;
                out.push(' ');
            }
            '>' if in_tag => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    let text = out.split_whitespace().collect::<Vec<_>>().join(" ");
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&")
}

/// The value of `name="..."` on the first element of `xml` (root attributes only).
fn attr<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let start = xml.find("<svg")?;
    let tag_end = start + xml[start..].find('>')?;
    let tag = &xml[start..tag_end];
    let needle = format!(" {name}=\"");
    let at = tag.find(&needle)? + needle.len();
    let len = tag[at..].find('"')?;
    Some(&tag[at..at + len])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (raw, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(raw.as_bytes()), enc);
        }
    }

    #[test]
    fn constructors_always_have_a_plain_fallback_first() {
        for b in [
            html("<i>x</i>"),
            svg("<svg width=\"10\" height=\"20\"></svg>"),
            markdown("# x"),
            json("[1]"),
            png(&[1, 2, 3]),
            text("x"),
        ] {
            assert_eq!(b.mimes().next(), Some("text/plain"));
            assert!(!b.plain().is_empty());
        }
        assert_eq!(
            svg("<svg width=\"10\" height=\"20\"/>").plain(),
            "[SVG image 10×20]"
        );
        assert_eq!(html("a &lt;b&gt; &amp; c").plain(), "a <b> & c");
    }

    #[test]
    fn invalid_json_is_sent_as_a_string() {
        let mut out = String::from("{");
        json("{oops").write_json_fields(&mut out);
        out.push('}');
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["data"]["application/json"], "{oops");
    }
}
