//! `kernel_info_request`: the reply's fields, and that it does not wait for the engine.

use crate::util::{Channel, EXECUTE_TIMEOUT, Kernel, REQUEST_TIMEOUT, SharedKernel};
use serde_json::json;
use std::time::Duration;

static KERNEL: SharedKernel = SharedKernel::new(1);

#[test]
fn kernel_info_reply_describes_kettle_and_rust() {
    let mut k = KERNEL.take();
    let reply = k.request(Channel::Shell, "kernel_info_request", json!({}));
    assert_eq!(reply.msg_type(), "kernel_info_reply");
    let c = &reply.content;
    assert_eq!(c["status"], "ok", "{c:#}");
    let protocol = c["protocol_version"].as_str().unwrap_or_default();
    assert!(protocol.starts_with("5."), "protocol_version: {c:#}");
    assert_eq!(c["implementation"], "kettle", "{c:#}");
    assert!(c["implementation_version"].is_string(), "{c:#}");
    assert!(c["banner"].is_string(), "{c:#}");

    let lang = &c["language_info"];
    assert_eq!(lang["name"], "rust", "{c:#}");
    assert_eq!(lang["mimetype"], "text/rust", "{c:#}");
    assert_eq!(lang["file_extension"], ".rs", "{c:#}");
    assert_eq!(lang["pygments_lexer"], "rust", "{c:#}");
    assert_eq!(lang["codemirror_mode"], "rust", "{c:#}");
    assert_eq!(lang["nbconvert_exporter"], "script", "{c:#}");
    assert!(lang["version"].is_string(), "{c:#}");

    let links = c["help_links"].as_array().expect("help_links is a list");
    assert!(!links.is_empty(), "{c:#}");
    for link in links {
        assert!(
            link["text"].is_string() && link["url"].is_string(),
            "{link}"
        );
    }
}

#[test]
fn fresh_kernel_answers_kernel_info_before_its_first_execute_which_is_count_one() {
    let mut k = Kernel::spawn();
    k.wait_heartbeat(Duration::from_secs(60));
    // The first execute waits for the engine to come up (seconds); kernel_info must not.
    let info = k.send(Channel::Shell, "kernel_info_request", json!({}));
    let exec = k.send_execute(json!({ "code": "1" }));
    let info_reply = k.reply(Channel::Shell, &info, REQUEST_TIMEOUT);
    let exec_reply = k.reply(Channel::Shell, &exec, EXECUTE_TIMEOUT);
    assert!(
        info_reply.arrived < exec_reply.arrived,
        "kernel_info_reply came after the first execute_reply"
    );
    assert_eq!(
        exec_reply.content["status"], "ok",
        "{:#}",
        exec_reply.content
    );
    assert_eq!(
        exec_reply.content["execution_count"], 1,
        "{:#}",
        exec_reply.content
    );

    // A subscriber may miss `starting` (it is published as the kernel binds), but when it is
    // seen it must precede everything else.
    let iopub = k.iopub_until_idle(&exec, EXECUTE_TIMEOUT);
    if let Some(input) = iopub.iter().find(|m| m.msg_type() == "execute_input") {
        assert_eq!(input.content["execution_count"], 1, "{:#}", input.content);
    }
    let later = k.execute("2");
    assert_eq!(
        later.reply.content["execution_count"],
        2,
        "{}",
        later.describe()
    );
}
