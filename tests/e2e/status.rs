//! `status` on iopub: every request is wrapped in `busy` ... `idle`, with its outputs between.

use crate::util::{Channel, REQUEST_TIMEOUT, SharedKernel};
use serde_json::json;

static KERNEL: SharedKernel = SharedKernel::new(2);

#[test]
fn execute_outputs_are_published_between_busy_and_idle() {
    let mut k = KERNEL.take();
    let c = k.execute(r#"println!("between"); 5"#);
    let first = c.iopub.first().expect("some iopub");
    let last = c.iopub.last().expect("some iopub");
    assert!(
        first.msg_type() == "status" && first.state() == "busy",
        "first iopub message is not busy\n{}",
        c.describe()
    );
    assert!(
        last.msg_type() == "status" && last.state() == "idle",
        "last iopub message is not idle\n{}",
        c.describe()
    );
    assert_eq!(c.of_type("status").len(), 2, "{}", c.describe());
    for kind in ["execute_input", "stream", "execute_result"] {
        assert!(!c.of_type(kind).is_empty(), "no {kind}\n{}", c.describe());
    }
}

#[test]
fn non_execute_requests_are_wrapped_in_busy_and_idle() {
    let mut k = KERNEL.take();
    let requests = [
        ("kernel_info_request", json!({})),
        ("is_complete_request", json!({ "code": "1" })),
        ("comm_info_request", json!({})),
        (
            "history_request",
            json!({ "output": false, "raw": true, "hist_access_type": "tail", "n": 1 }),
        ),
    ];
    for (msg_type, content) in requests {
        let id = k.send(Channel::Shell, msg_type, content);
        k.reply(Channel::Shell, &id, REQUEST_TIMEOUT);
        let iopub = k.iopub_until_idle(&id, REQUEST_TIMEOUT);
        let states: Vec<&str> = iopub.iter().map(|m| m.state()).collect();
        assert_eq!(states, ["busy", "idle"], "{msg_type}: {iopub:#?}");
    }
}
