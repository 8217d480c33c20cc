//! `history_request`: tail, range and search over the cells of the current session.

use crate::util::{Channel, SharedKernel};
use serde_json::{Value, json};

static KERNEL: SharedKernel = SharedKernel::new(3);

/// `(line, input)` pairs of a history reply, checking each entry's shape on the way.
fn entries(reply: &Value) -> Vec<(i64, String)> {
    assert_eq!(reply["status"], "ok", "{reply:#}");
    let history = reply["history"].as_array().expect("history list");
    history
        .iter()
        .map(|e| {
            let e = e.as_array().expect("entry is [session, line, input]");
            assert_eq!(e.len(), 3, "{e:?}");
            assert!(e[0].is_i64(), "session number {e:?}");
            (
                e[1].as_i64().expect("line"),
                e[2].as_str().expect("input").to_owned(),
            )
        })
        .collect()
}

fn marked_cell(k: &mut crate::util::Kernel, tag: &str) -> (i64, String) {
    let code = format!("1 // {tag}-{}", uuid::Uuid::new_v4().simple());
    let c = k.execute(&code);
    let n = c.reply.content["execution_count"].as_i64().expect("count");
    (n, code)
}

#[test]
fn history_tail_ends_with_the_last_cell() {
    let mut k = KERNEL.take();
    let (n, code) = marked_cell(&mut k, "tail");
    let reply = k.request(
        Channel::Shell,
        "history_request",
        json!({ "output": false, "raw": true, "hist_access_type": "tail", "n": 5 }),
    );
    let got = entries(&reply.content);
    assert!(got.len() <= 5, "{got:?}");
    assert_eq!(got.last(), Some(&(n, code)), "{got:?}");
}

#[test]
fn history_range_returns_the_cells_between_two_counts() {
    let mut k = KERNEL.take();
    let (first, first_code) = marked_cell(&mut k, "range-a");
    let (second, second_code) = marked_cell(&mut k, "range-b");
    let reply = k.request(
        Channel::Shell,
        "history_request",
        json!({
            "output": false, "raw": true, "hist_access_type": "range",
            "session": 0, "start": first, "stop": second + 1,
        }),
    );
    let got = entries(&reply.content);
    assert!(got.contains(&(first, first_code)), "{got:?}");
    assert!(got.contains(&(second, second_code)), "{got:?}");
    assert!(
        got.iter()
            .all(|(line, _)| (first..=second + 1).contains(line)),
        "{got:?}"
    );
}

#[test]
fn history_search_finds_cells_by_glob_pattern() {
    let mut k = KERNEL.take();
    let (n, code) = marked_cell(&mut k, "search");
    let tag = code.rsplit('-').next().expect("tag").to_owned();
    let reply = k.request(
        Channel::Shell,
        "history_request",
        json!({
            "output": false, "raw": true, "hist_access_type": "search",
            "pattern": format!("*{tag}*"), "unique": true, "n": 10,
        }),
    );
    let got = entries(&reply.content);
    assert_eq!(got, vec![(n, code)], "{got:?}");
}
