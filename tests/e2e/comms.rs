//! Comms: the kernel has no comm targets, so it lists none and closes any comm it is offered.

use crate::util::{Channel, REQUEST_TIMEOUT, SharedKernel};
use serde_json::json;

static KERNEL: SharedKernel = SharedKernel::new(2);

#[test]
fn comm_info_lists_no_comms() {
    let mut k = KERNEL.take();
    for content in [json!({}), json!({ "target_name": "jupyter.widget" })] {
        let reply = k.request(Channel::Shell, "comm_info_request", content);
        assert_eq!(reply.msg_type(), "comm_info_reply");
        assert_eq!(reply.content["status"], "ok", "{:#}", reply.content);
        assert_eq!(reply.content["comms"], json!({}), "{:#}", reply.content);
    }
}

#[test]
fn comm_open_to_an_unknown_target_is_answered_with_comm_close() {
    let mut k = KERNEL.take();
    let comm_id = uuid::Uuid::new_v4().to_string();
    let id = k.send(
        Channel::Shell,
        "comm_open",
        json!({ "comm_id": comm_id, "target_name": "no.such.target", "data": {} }),
    );
    let iopub = k.iopub_until_idle(&id, REQUEST_TIMEOUT);
    let close = iopub
        .iter()
        .find(|m| m.msg_type() == "comm_close")
        .unwrap_or_else(|| panic!("no comm_close: {iopub:#?}"));
    assert_eq!(
        close.content["comm_id"],
        comm_id.as_str(),
        "{:#}",
        close.content
    );

    // And the kernel is still fine.
    let info = k.request(Channel::Shell, "comm_info_request", json!({}));
    assert_eq!(info.content["comms"], json!({}), "{:#}", info.content);
}
