//! Hostile input: bad signatures, malformed frames and unknown message types must not stop the
//! kernel from answering the next good request.

use crate::util::{Channel, Kernel, SILENCE, SharedKernel};
use serde_json::json;

static KERNEL: SharedKernel = SharedKernel::new(3);

/// kernel_info still answers on shell and the heartbeat still echoes.
fn assert_alive(k: &mut Kernel) {
    let reply = k.request(Channel::Shell, "kernel_info_request", json!({}));
    assert_eq!(reply.content["status"], "ok", "{:#}", reply.content);
    assert!(
        k.heartbeat(SILENCE),
        "heartbeat stopped\n{}",
        k.stderr_tail()
    );
}

#[test]
fn message_with_a_bad_signature_is_ignored() {
    let mut k = KERNEL.take();
    for channel in [Channel::Shell, Channel::Control] {
        let header = k.header("kernel_info_request");
        let mut frames = k.frames(&header, &json!({}));
        frames[1] = "0".repeat(64).into_bytes();
        k.send_frames(channel, frames);
        let id = header["msg_id"].as_str().expect("id");
        let reply = k.try_reply(channel, id, SILENCE);
        assert!(
            reply.is_none(),
            "kernel answered a forged message: {reply:#?}"
        );
    }
    assert_alive(&mut k);
}

#[test]
fn garbage_frames_are_survived() {
    let mut k = KERNEL.take();
    let random: Vec<u8> = (0..4)
        .flat_map(|_| *uuid::Uuid::new_v4().as_bytes())
        .collect();
    let bad_json = b"{ this is not json".to_vec();
    let signed_bad_json = {
        let sig = k.sign(&[&bad_json, b"{}", b"{}", b"{}"]);
        vec![
            b"<IDS|MSG>".to_vec(),
            sig.into_bytes(),
            bad_json.clone(),
            b"{}".to_vec(),
            b"{}".to_vec(),
            b"{}".to_vec(),
        ]
    };
    let garbage: Vec<Vec<Vec<u8>>> = vec![
        vec![random.clone()],
        vec![random.clone(), b"no delimiter".to_vec(), b"{}".to_vec()],
        vec![b"<IDS|MSG>".to_vec()],
        vec![b"<IDS|MSG>".to_vec(), b"sig".to_vec(), b"{}".to_vec()],
        signed_bad_json,
        vec![Vec::new()],
    ];
    for channel in [Channel::Shell, Channel::Control] {
        for frames in &garbage {
            k.send_frames(channel, frames.clone());
        }
    }
    assert_alive(&mut k);
    // Control is served by its own thread: check that it survived too.
    let reply = k.request(Channel::Control, "kernel_info_request", json!({}));
    assert_eq!(reply.msg_type(), "kernel_info_reply");
}

#[test]
fn unknown_message_type_is_tolerated() {
    let mut k = KERNEL.take();
    let id = k.send(Channel::Shell, "no_such_request", json!({ "x": 1 }));
    // A reply (e.g. an error) is allowed; crashing or wedging is not.
    let _ = k.try_reply(Channel::Shell, &id, SILENCE);
    assert_alive(&mut k);
}
