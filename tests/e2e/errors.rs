//! Failing cells: compile errors, panics, and `stop_on_error` aborting the queue.

use crate::util::{Channel, EXECUTE_TIMEOUT, SharedKernel};
use serde_json::json;

static KERNEL: SharedKernel = SharedKernel::new(5);

#[test]
fn compile_error_reports_ename_evalue_traceback_and_rustc_code() {
    let mut k = KERNEL.take();
    let c = k.execute(r#"let n: i32 = "not a number";"#);
    assert_eq!(c.status(), "error", "{}", c.describe());
    for field in ["ename", "evalue"] {
        assert!(
            c.reply.content[field].is_string(),
            "reply lacks {field}\n{}",
            c.describe()
        );
    }
    assert!(c.reply.content["traceback"].is_array(), "{}", c.describe());

    let error = &c.error().content;
    assert!(
        !error["ename"].as_str().unwrap_or_default().is_empty(),
        "{error:#}"
    );
    let traceback = error["traceback"].as_array().expect("traceback list");
    assert!(!traceback.is_empty(), "{error:#}");
    let everything = format!("{} {}", error["evalue"], json!(traceback));
    assert!(
        everything.contains("E0308"),
        "no rustc code E0308 in {error:#}"
    );
}

#[test]
fn panic_is_an_error_and_earlier_variables_survive() {
    let mut k = KERNEL.take();
    k.execute_ok("let survivor = 5;");
    let c = k.execute(r#"panic!("boom");"#);
    assert_eq!(c.status(), "error", "{}", c.describe());
    let error = &c.error().content;
    let ename = error["ename"].as_str().unwrap_or_default().to_lowercase();
    assert!(ename.contains("panic"), "ename {ename:?}: {error:#}");
    assert!(
        error["evalue"]
            .as_str()
            .unwrap_or_default()
            .contains("boom"),
        "{error:#}"
    );

    k.assert_result("survivor + 1", "6");
}

#[test]
fn stop_on_error_aborts_the_queued_executes() {
    let mut k = KERNEL.take();
    // Both are queued before the first finishes: the second must be aborted, not run.
    let failing = k.send_execute(json!({ "code": "let n: i32 = \"x\";" }));
    let queued = k.send_execute(json!({ "code": "println!(\"must not run\"); 1" }));
    let first = k.reply(Channel::Shell, &failing, EXECUTE_TIMEOUT);
    assert_eq!(first.content["status"], "error", "{:#}", first.content);
    let second = k.reply(Channel::Shell, &queued, EXECUTE_TIMEOUT);
    assert_eq!(second.content["status"], "aborted", "{:#}", second.content);
    let second_out = k.try_iopub_until_idle(&queued, crate::util::SILENCE);
    let second_out = second_out.unwrap_or_else(|got| got);
    assert!(
        !second_out.iter().any(|m| m.msg_type() == "stream"),
        "aborted cell ran: {second_out:#?}"
    );

    // Only what was queued is aborted: the next request runs normally.
    k.assert_result("3", "3");
}

#[test]
fn stop_on_error_false_lets_the_queue_run() {
    let mut k = KERNEL.take();
    let failing = k.send_execute(json!({ "code": "let n: i32 = \"y\";", "stop_on_error": false }));
    let queued = k.send_execute(json!({ "code": "4" }));
    let first = k.collect(&failing);
    assert_eq!(first.status(), "error", "{}", first.describe());
    let second = k.collect(&queued);
    assert_eq!(second.status(), "ok", "{}", second.describe());
    assert_eq!(
        second.result_text().as_deref(),
        Some("4"),
        "{}",
        second.describe()
    );
}

#[test]
fn an_error_returned_with_question_mark_fails_the_cell() {
    let mut k = KERNEL.take();
    let c = k.execute("let n: i32 = \"forty\".parse()?;\nprintln!(\"not reached {n}\");");
    assert_eq!(c.status(), "error", "{}", c.describe());
    assert_eq!(c.error().content["ename"], "Error", "{}", c.describe());
    assert!(
        c.stream("stderr").contains("invalid digit"),
        "{}",
        c.describe()
    );
    assert!(
        !c.stream("stdout").contains("not reached"),
        "{}",
        c.describe()
    );
    k.assert_result("1 + 1", "2");
}
