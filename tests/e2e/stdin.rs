//! stdin from any thread (issue 4, item 2): a read of fd 0 in the cell or in a spawned thread
//! becomes an `input_request` on the stdin channel (spec: "Messages on the stdin channel"), the
//! client's `input_reply` reaches the code, and with `allow_stdin: false` the read ends at once.

use crate::util::{Channel, Collected, EXECUTE_TIMEOUT, Kernel, Msg, SharedKernel};
use serde_json::json;
use std::time::{Duration, Instant};

static KERNEL: SharedKernel = SharedKernel::new(6);

/// Runs `code` with `allow_stdin: true`, answering the kernel's input requests with `answers`
/// in order; returns the exchange and the input requests seen.
fn execute_answering(k: &mut Kernel, code: &str, answers: &[&str]) -> (Collected, Vec<Msg>) {
    let id = k.send_execute(json!({ "code": code, "allow_stdin": true }));
    let mut requests = Vec::new();
    let deadline = Instant::now() + EXECUTE_TIMEOUT;
    let reply = loop {
        if let Some(request) = k.try_reply(Channel::Stdin, &id, Duration::from_millis(100)) {
            assert_eq!(request.msg_type(), "input_request", "{:#}", request.content);
            let answer = answers.get(requests.len()).unwrap_or_else(|| {
                panic!(
                    "unexpected input_request #{}: {:#}",
                    requests.len() + 1,
                    request.content
                )
            });
            k.answer_input(&request, answer);
            requests.push(request);
        }
        if let Some(reply) = k.try_reply(Channel::Shell, &id, Duration::from_millis(100)) {
            break reply;
        }
        assert!(
            Instant::now() < deadline,
            "no execute_reply within {EXECUTE_TIMEOUT:?}\n{}",
            k.stderr_tail()
        );
    };
    let iopub = k.iopub_until_idle(&id, EXECUTE_TIMEOUT);
    let c = Collected {
        msg_id: id,
        reply,
        iopub,
    };
    (c, requests)
}

#[test]
fn read_line_in_the_cell_asks_the_frontend_and_gets_the_answer() {
    let mut k = KERNEL.take();
    let (c, requests) = execute_answering(
        &mut k,
        "let mut line = String::new();\n\
         std::io::stdin().read_line(&mut line).unwrap();\n\
         println!(\"got [{}]\", line.trim_end());",
        &["forty two"],
    );
    assert_eq!(c.status(), "ok", "{}", c.describe());
    assert_eq!(requests.len(), 1, "{}", c.describe());
    assert_eq!(requests[0].content["password"], false);
    assert!(
        c.stream("stdout").contains("got [forty two]"),
        "{}",
        c.describe()
    );
}

#[test]
fn read_line_in_a_spawned_thread_asks_the_frontend_and_gets_the_answer() {
    let mut k = KERNEL.take();
    let (c, requests) = execute_answering(
        &mut k,
        "let line = std::thread::spawn(|| {\n\
             let mut line = String::new();\n\
             std::io::stdin().read_line(&mut line).unwrap();\n\
             line\n\
         }).join().unwrap();\n\
         println!(\"thread got [{}]\", line.trim_end());",
        &["from a thread"],
    );
    assert_eq!(c.status(), "ok", "{}", c.describe());
    assert_eq!(requests.len(), 1, "{}", c.describe());
    assert!(
        c.stream("stdout").contains("thread got [from a thread]"),
        "{}",
        c.describe()
    );
}

/// The notebook's cells, found by what they contain (so the test runs them unchanged).
fn notebook_cell(cells: &[String], needle: &str) -> String {
    cells
        .iter()
        .find(|c| c.contains(needle))
        .unwrap_or_else(|| panic!("no cell of notebooks/01-threads.ipynb contains {needle:?}"))
        .clone()
}

#[test]
fn the_chapters_input_reader_cell_runs_unchanged_with_the_typed_text() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../notebooks/01-threads.ipynb");
    let notebook: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("read the notebook"))
            .expect("notebook JSON");
    let cells: Vec<String> = notebook["cells"]
        .as_array()
        .expect("cells")
        .iter()
        .filter(|c| c["cell_type"] == "code")
        .map(|c| match &c["source"] {
            serde_json::Value::Array(lines) => lines.iter().filter_map(|l| l.as_str()).collect(),
            other => other.as_str().unwrap_or_default().to_owned(),
        })
        .collect();

    let mut k = KERNEL.take();
    k.execute_ok(&notebook_cell(&cells, ":course"));
    k.execute_ok(&notebook_cell(&cells, "struct InputReader"));
    let (c, requests) = execute_answering(
        &mut k,
        &notebook_cell(&cells, "InputReader::default().start("),
        &["hello kettle"],
    );
    assert_eq!(c.status(), "ok", "{}", c.describe());
    assert_eq!(requests.len(), 1, "{}", c.describe());
    let out = c.stream("stdout");
    assert!(out.contains("while you typed 'hello kettle'"), "{out}");
    assert!(out.contains("calculated squares up to"), "{out}");
}

#[test]
fn without_allow_stdin_a_read_sees_end_of_file_at_once() {
    let mut k = KERNEL.take();
    let id = k.send_execute(json!({
        "code": "let started = std::time::Instant::now();\n\
                 let mut line = String::new();\n\
                 let n = std::io::stdin().read_line(&mut line).unwrap();\n\
                 println!(\"read {n} bytes in {} ms\", started.elapsed().as_millis());",
        "allow_stdin": false,
    }));
    let c = k.collect(&id);
    assert_eq!(c.status(), "ok", "{}", c.describe());
    let out = c.stream("stdout");
    assert!(out.contains("read 0 bytes"), "{}", c.describe());
    // "At once": the kernel notices the blocked read within its /proc scan (10-20 ms); allow
    // for a loaded machine, but far less than a frontend's patience.
    let ms: u64 = out
        .split("bytes in ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no duration in {out:?}"));
    assert!(ms < 2_000, "the read waited {ms} ms for end of file");
    assert!(
        k.try_reply(Channel::Stdin, &id, Duration::from_millis(200))
            .is_none(),
        "an input_request was sent although the request did not allow stdin"
    );
}

#[test]
fn input_helper_sends_its_prompt_and_returns_the_answer() {
    let mut k = KERNEL.take();
    let (c, requests) = execute_answering(
        &mut k,
        ":course\n\
         let name = kettle_display::input(\"Name: \");\n\
         println!(\"hello {name}!\");",
        &["Ada"],
    );
    assert_eq!(c.status(), "ok", "{}", c.describe());
    assert_eq!(requests.len(), 1, "{}", c.describe());
    assert_eq!(requests[0].content["prompt"], "Name: ");
    assert_eq!(requests[0].content["password"], false);
    assert!(
        c.stream("stdout").contains("hello Ada!"),
        "{}",
        c.describe()
    );
}

#[test]
fn input_password_helper_asks_for_a_password() {
    let mut k = KERNEL.take();
    let (c, requests) = execute_answering(
        &mut k,
        ":course\n\
         let secret = kettle_display::input_password(\"Password: \");\n\
         println!(\"{} characters\", secret.len());",
        &["hunter2"],
    );
    assert_eq!(c.status(), "ok", "{}", c.describe());
    assert_eq!(requests.len(), 1, "{}", c.describe());
    assert_eq!(requests[0].content["prompt"], "Password: ");
    assert_eq!(requests[0].content["password"], true);
    assert!(
        c.stream("stdout").contains("7 characters"),
        "{}",
        c.describe()
    );
}
