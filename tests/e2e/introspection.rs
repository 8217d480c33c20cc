//! `complete_request`, `inspect_request` and `is_complete_request`. Cursor positions are
//! Unicode code points (messaging spec, "Cursor position"), so the texts include non-ASCII.

use crate::util::{Channel, SharedKernel};
use serde_json::{Value, json};

static KERNEL: SharedKernel = SharedKernel::new(8);

fn chars(s: &str) -> usize {
    s.chars().count()
}

fn matches(reply: &Value) -> Vec<&str> {
    reply["matches"]
        .as_array()
        .map(|m| m.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

#[test]
fn complete_counts_cursor_in_code_points_after_non_ascii_text() {
    let mut k = KERNEL.take();
    let code = r#"let s = "héllo"; let hello_kettle = 1; hello_ke"#;
    let cursor = chars(code);
    let reply = k.request(
        Channel::Shell,
        "complete_request",
        json!({ "code": code, "cursor_pos": cursor }),
    );
    let c = &reply.content;
    assert_eq!(c["status"], "ok", "{c:#}");
    assert!(matches(c).contains(&"hello_kettle"), "{c:#}");
    assert_eq!(c["cursor_start"], cursor - chars("hello_ke"), "{c:#}");
    assert_eq!(c["cursor_end"], cursor, "{c:#}");
}

#[test]
fn complete_finds_a_variable_defined_in_an_earlier_cell() {
    let mut k = KERNEL.take();
    k.execute_ok("let earlier_kettle_value = 3;");
    let code = "earlier_kettle_va";
    let reply = k.request(
        Channel::Shell,
        "complete_request",
        json!({ "code": code, "cursor_pos": chars(code) }),
    );
    let c = &reply.content;
    assert!(matches(c).contains(&"earlier_kettle_value"), "{c:#}");
    assert_eq!(c["cursor_start"], 0, "{c:#}");
}

#[test]
fn inspect_describes_a_function_defined_in_the_cell() {
    let mut k = KERNEL.take();
    let code = "// «doubler»\nfn double_it(x: i32) -> i32 { x * 2 }\nlet y = double_it(2);";
    // Cursor inside the call `double_it` on the last line.
    let cursor = chars(code) - chars("t(2);");
    let (c, text) = inspect_found(&mut k, code, cursor);
    assert!(text.contains("double_it"), "{c:#}");
}

/// Sends `inspect_request` with the cursor at code point `cursor`, checks that something was
/// found, and returns the reply content and its `text/plain`.
fn inspect_found(k: &mut crate::util::Kernel, code: &str, cursor: usize) -> (Value, String) {
    let reply = k.request(
        Channel::Shell,
        "inspect_request",
        json!({ "code": code, "cursor_pos": cursor, "detail_level": 0 }),
    );
    let c = reply.content;
    assert_eq!(c["status"], "ok", "{c:#}");
    assert_eq!(c["found"], true, "{c:#}");
    let text = c["data"]["text/plain"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (c, text)
}

#[test]
fn inspect_describes_a_std_function() {
    let mut k = KERNEL.take();
    let code = "let v: Vec<u8> = Vec::new();";
    // Cursor inside `new`.
    let cursor = chars("let v: Vec<u8> = Vec::ne");
    let (c, text) = inspect_found(&mut k, code, cursor);
    assert!(text.contains("fn new"), "{c:#}");
}

#[test]
fn inspect_of_blank_code_finds_nothing() {
    let mut k = KERNEL.take();
    let reply = k.request(
        Channel::Shell,
        "inspect_request",
        json!({ "code": "   ", "cursor_pos": 1, "detail_level": 0 }),
    );
    assert_eq!(reply.content["status"], "ok", "{:#}", reply.content);
    assert_eq!(reply.content["found"], false, "{:#}", reply.content);
}

fn is_complete(k: &mut crate::util::Kernel, code: &str) -> Value {
    k.request(
        Channel::Shell,
        "is_complete_request",
        json!({ "code": code }),
    )
    .content
}

#[test]
fn is_complete_says_complete_for_a_finished_statement() {
    let mut k = KERNEL.take();
    let c = is_complete(&mut k, "let x = 1;\nx + 1");
    assert_eq!(c["status"], "complete", "{c:#}");
}

#[test]
fn is_complete_says_incomplete_with_an_indent_inside_an_open_block() {
    let mut k = KERNEL.take();
    let c = is_complete(&mut k, "fn f() {\n    let s = \"é\";");
    assert_eq!(c["status"], "incomplete", "{c:#}");
    let indent = c["indent"].as_str().expect("indent string");
    assert!(!indent.is_empty() && indent.trim().is_empty(), "{c:#}");
}

#[test]
fn is_complete_says_invalid_for_an_unmatched_closing_brace() {
    let mut k = KERNEL.take();
    let c = is_complete(&mut k, "let x = 1; }");
    assert_eq!(c["status"], "invalid", "{c:#}");
}
