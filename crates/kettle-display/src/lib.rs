//! Rich output from Rust code running in the **kettle** Jupyter kernel: HTML, SVG, Markdown,
//! JSON and PNG, shown while a cell runs, updated in place, from any thread.
//!
//! ```
//! use kettle_display::{display, html, markdown, clear_output};
//!
//! display(markdown("## Fetching weather"));
//! let status = display(html("<i>starting…</i>"));
//! for city in ["Edmonton", "Calgary"] {
//!     status.update(html(format!("fetching <b>{city}</b>")));
//! }
//! status.update("done");
//! clear_output(true);
//! ```
//!
//! Outside the kernel (`cargo run`, tests, doc tests) the same calls print each output's
//! `text/plain` fallback to stdout, updates prefixed with `[update]`, so programs stay useful
//! in a terminal.
//!
//! # Which call should I use?
//!
//! - [`display`] shows something *now*, any number of times per cell, and returns a
//!   [`DisplayHandle`] whose [`update`](DisplayHandle::update) replaces it in place (progress,
//!   live charts).
//! - [`Rich`] makes your own type show richly when it is the *value* of a cell (with
//!   [`RichValue`] in scope, as `use kettle_display::*` brings it).
//! - [`interrupted`] lets a long loop stop politely when the learner interrupts the cell.
//!
//! # Kernel contract
//!
//! This is the interface between this crate (running inside the user's code) and the kernel.
//!
//! **`KETTLE_DISPLAY_FD`** — a decimal file descriptor number, open for writing for the life of
//! the process (the kernel's side channel, never closed by this crate). When it is set, every
//! operation is written to it as exactly one line of JSON, newline-terminated, in a single
//! `write_all` under a process-wide lock, so lines from different threads never interleave:
//!
//! ```text
//! {"op":"display","data":{"text/plain":"…","text/html":"…"},"metadata":{},"display_id":"…"}
//! {"op":"update","data":{…},"metadata":{…},"display_id":"…"}
//! {"op":"clear","wait":false}
//! {"op":"input","prompt":"Your name: ","password":false}
//! ```
//!
//! After an `input` line the process reads one line from stdin; the kernel asks the frontend
//! for it (an `input_request` with that prompt) and writes the answer there.
//!
//! `data` and `metadata` have the shape of Jupyter's `display_data` content; `data` always
//! contains `text/plain` (first); string values are JSON strings, `application/json` is a JSON
//! value; `display_id` of a `display` is a string today (the field may be `null`). The kernel
//! maps `display` to `display_data` (with `transient.display_id`), `update` to
//! `update_display_data`, `clear` to `clear_output`. Lines that are not valid JSON or have an
//! unknown `op` should be ignored. When the variable is unset or not a number, output goes to
//! stdout as text.
//!
//! **`KETTLE_INTERRUPT_FILE`** — a path. The kernel creates this file to ask the running cell
//! to stop and removes it before the next cell starts; [`interrupted`] returns `true` while it
//! exists (checked with one `stat`, at most every 10 ms).
//!
//! Value display uses evcxr's convention instead: see [`show_as_value`].

mod bundle;
mod handle;
mod input;
mod interrupt;
mod json_text;
mod transport;
mod value;

pub use bundle::{Bundle, Rich, base64, html, json, markdown, png, svg, text};
pub use handle::{DisplayHandle, clear_output, display};
pub use input::{input, input_password};
pub use interrupt::{INTERRUPT_FILE_VAR, interrupted};
pub use transport::{DISPLAY_FD_VAR, in_kernel};
pub use value::{RichValue, show_as_value};

#[cfg(test)]
mod wire_tests {
    //! Golden tests for the side-channel lines, parsed back with serde_json.
    use super::*;
    use crate::transport::Op;
    use serde_json::{Value, json};

    fn parse(op: &Op<'_>) -> Value {
        let line = op.to_json_line();
        assert!(line.ends_with('\n'));
        assert_eq!(line.matches('\n').count(), 1, "exactly one line: {line:?}");
        serde_json::from_str(&line).unwrap()
    }

    #[test]
    fn display_line_has_data_metadata_and_id() {
        let b = html("<b>hi</b>\n\"there\"").with_metadata("text/html", "{\"isolated\":\ntrue}");
        let v = parse(&Op::Display {
            bundle: &b,
            display_id: Some("abc"),
        });
        assert_eq!(
            v,
            json!({
                "op": "display",
                "data": {"text/plain": "hi \"there\"", "text/html": "<b>hi</b>\n\"there\""},
                "metadata": {"text/html": {"isolated": true}},
                "display_id": "abc"
            })
        );
    }

    #[test]
    fn display_without_id_sends_null() {
        let v = parse(&Op::Display {
            bundle: &text("x"),
            display_id: None,
        });
        assert_eq!(v["display_id"], Value::Null);
    }

    #[test]
    fn update_line_carries_json_values_verbatim() {
        let b = json("{\n  \"a\": [1, 2],\n  \"s\": \"x\\ny\"\n}");
        let v = parse(&Op::Update {
            bundle: &b,
            display_id: "id-1",
        });
        assert_eq!(v["op"], "update");
        assert_eq!(v["display_id"], "id-1");
        assert_eq!(
            v["data"]["application/json"],
            json!({"a": [1, 2], "s": "x\ny"})
        );
        assert_eq!(v["metadata"], json!({}));
    }

    #[test]
    fn clear_line() {
        assert_eq!(
            parse(&Op::Input {
                prompt: "Name: \"x\"",
                password: true
            }),
            json!({"op": "input", "prompt": "Name: \"x\"", "password": true})
        );
        assert_eq!(
            parse(&Op::Clear { wait: true }),
            json!({"op": "clear", "wait": true})
        );
        assert_eq!(
            parse(&Op::Clear { wait: false }),
            json!({"op": "clear", "wait": false})
        );
    }

    #[test]
    fn png_is_base64() {
        let v = parse(&Op::Display {
            bundle: &png(b"\x89PNG"),
            display_id: None,
        });
        assert_eq!(v["data"]["image/png"], "iVBORw==");
    }
}
