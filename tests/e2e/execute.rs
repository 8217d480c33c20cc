//! `execute_request`: inputs, counters, silence, streams, results, state and user_expressions.

use crate::util::{Channel, SILENCE, SharedKernel};
use serde_json::json;

static KERNEL: SharedKernel = SharedKernel::new(7);

fn count(c: &crate::util::Collected) -> i64 {
    c.reply.content["execution_count"]
        .as_i64()
        .unwrap_or_else(|| panic!("no execution_count\n{}", c.describe()))
}

#[test]
fn expression_value_is_published_as_execute_result() {
    let mut k = KERNEL.take();
    let c = k.execute("1 + 2");
    assert_eq!(c.status(), "ok", "{}", c.describe());
    assert_eq!(c.result_text().as_deref(), Some("3"), "{}", c.describe());
    assert!(c.reply.metadata.is_object(), "{}", c.describe());
    let result = c.of_type("execute_result")[0];
    assert_eq!(
        result.content["execution_count"],
        count(&c),
        "{}",
        c.describe()
    );
}

#[test]
fn execute_input_echoes_the_code_and_its_count() {
    let mut k = KERNEL.take();
    let code = "let _unused = 0;\n2 * 21";
    let c = k.execute(code);
    let inputs = c.of_type("execute_input");
    assert_eq!(inputs.len(), 1, "{}", c.describe());
    assert_eq!(inputs[0].content["code"], code, "{}", c.describe());
    assert_eq!(
        inputs[0].content["execution_count"],
        count(&c),
        "{}",
        c.describe()
    );
}

#[test]
fn execution_count_increments_only_when_history_is_stored() {
    let mut k = KERNEL.take();
    let first = count(&k.execute("1"));
    let unstored = k.execute_with(json!({ "code": "2", "store_history": false }));
    assert_eq!(unstored.status(), "ok", "{}", unstored.describe());
    let next = k.execute("3");
    assert_eq!(count(&next), first + 1, "{}", next.describe());
}

#[test]
fn silent_execution_publishes_nothing_and_is_not_counted() {
    let mut k = KERNEL.take();
    let before = count(&k.execute("10"));
    let id = k.send_execute(json!({
        "code": "println!(\"hidden output\"); 7",
        "silent": true,
    }));
    let reply = k.reply(Channel::Shell, &id, crate::util::EXECUTE_TIMEOUT);
    assert_eq!(reply.content["status"], "ok", "{:#}", reply.content);
    // Only status messages may mention a silent request (ipykernel still publishes busy/idle).
    let iopub = k
        .try_iopub_until_idle(&id, SILENCE)
        .unwrap_or_else(|got| got);
    let loud: Vec<_> = iopub.iter().filter(|m| m.msg_type() != "status").collect();
    assert!(loud.is_empty(), "silent execute published {loud:#?}");
    let after = k.execute("11");
    assert_eq!(count(&after), before + 1, "{}", after.describe());
}

#[test]
fn stdout_and_stderr_arrive_as_separate_streams() {
    let mut k = KERNEL.take();
    let c = k.execute(r#"println!("to stdout"); eprintln!("to stderr");"#);
    assert_eq!(c.status(), "ok", "{}", c.describe());
    assert_eq!(c.stream("stdout"), "to stdout\n", "{}", c.describe());
    assert!(
        c.stream("stderr").contains("to stderr\n"),
        "{}",
        c.describe()
    );
    assert!(
        !c.stream("stdout").contains("to stderr"),
        "{}",
        c.describe()
    );
}

#[test]
fn variables_persist_across_cells() {
    let mut k = KERNEL.take();
    k.execute_ok("let persisted_x = 40;");
    k.assert_result("persisted_x + 2", "42");
}

#[test]
fn user_expressions_are_evaluated_after_the_cell() {
    let mut k = KERNEL.take();
    let c = k.execute_with(json!({
        "code": "let ue_base = 20;",
        "user_expressions": { "sum": "ue_base + 1", "broken": "no_such_variable_here" },
    }));
    assert_eq!(c.status(), "ok", "{}", c.describe());
    let ue = &c.reply.content["user_expressions"];
    assert_eq!(ue["sum"]["status"], "ok", "{ue:#}");
    assert_eq!(ue["sum"]["data"]["text/plain"], "21", "{ue:#}");
    assert_eq!(ue["broken"]["status"], "error", "{ue:#}");
    assert!(ue["broken"]["ename"].is_string(), "{ue:#}");
}
