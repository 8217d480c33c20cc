//! The session's policy, end to end over real ZeroMQ sockets, with a scripted engine (the real
//! one re-executes the current binary, which a test harness must not do). The black-box tests
//! of the real binary live in `tests/`.

use super::{Evaluator, serve};
use crate::engine::{Completions, Event, Inspection, MimeBundle, Outcome, StreamName};
use crate::transport::Listeners;
use crate::wire::{ConnectionInfo, Content, Header, Message, Metadata, Signer, TransportKind};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const KEY: &str = "secret-key";
const TIMEOUT: Duration = Duration::from_secs(10);

/// A scripted engine: the code names what the "cell" does.
struct Fake {
    interrupted: Arc<AtomicBool>,
    shut_down: Arc<AtomicBool>,
}

fn text(s: &str) -> MimeBundle {
    let mut b = MimeBundle::new();
    b.insert("text/plain".into(), json!(s));
    b
}

fn error(ename: &str) -> Outcome {
    Outcome::Error {
        ename: ename.into(),
        evalue: "it failed".into(),
        traceback: vec!["frame 1".into()],
    }
}

impl Evaluator for Fake {
    fn execute(&self, code: &str, _allow_stdin: bool, on_event: &mut dyn FnMut(Event)) -> Outcome {
        match code {
            "print" => {
                on_event(Event::Stream {
                    name: StreamName::Stdout,
                    text: "hi\n".into(),
                });
                Outcome::Ok { result: None }
            }
            "value" => Outcome::Ok {
                result: Some(text("42")),
            },
            "display" => {
                for update in [false, true] {
                    on_event(Event::Display {
                        data: text("d"),
                        metadata: Default::default(),
                        display_id: Some("d1".into()),
                        update,
                    });
                }
                on_event(Event::ClearOutput { wait: true });
                Outcome::Ok { result: None }
            }
            "input" => {
                let (tx, rx) = mpsc::channel();
                on_event(Event::InputRequest {
                    prompt: "name? ".into(),
                    password: false,
                    reply: tx,
                });
                let answer = rx.recv().unwrap();
                Outcome::Ok {
                    result: Some(text(&format!("{answer:?}"))),
                }
            }
            "slow error" => {
                std::thread::sleep(Duration::from_millis(400));
                error("SlowError")
            }
            "wait" => {
                let deadline = Instant::now() + TIMEOUT;
                while !self.interrupted.load(Ordering::SeqCst) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(5));
                }
                error("Interrupted")
            }
            "error" => error("E0425"),
            _ => Outcome::Ok { result: None },
        }
    }

    fn complete(&self, _code: &str, cursor_pos: usize) -> Completions {
        Completions {
            matches: vec!["thread".into()],
            cursor_start: cursor_pos - 2,
            cursor_end: cursor_pos,
        }
    }

    fn inspect(&self, _code: &str, _cursor_pos: usize, _detail_level: u8) -> Inspection {
        Some(text("docs"))
    }

    fn shutdown(&self) {
        self.shut_down.store(true, Ordering::SeqCst);
    }
}

/// A kernel on its own threads plus a client connected to all five sockets.
struct Harness {
    _ctx: zmq::Context,
    shell: zmq::Socket,
    control: zmq::Socket,
    stdin: zmq::Socket,
    iopub: zmq::Socket,
    hb: zmq::Socket,
    signer: Signer,
    kernel: Option<JoinHandle<anyhow::Result<()>>>,
    interrupted: Arc<AtomicBool>,
    shut_down: Arc<AtomicBool>,
    dir: std::path::PathBuf,
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Harness {
    fn start() -> Harness {
        // ipc sockets in a private directory: TCP ports picked in advance can be taken by a
        // test running in parallel before the kernel binds them.
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "kettle-session-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let info = ConnectionInfo {
            transport: TransportKind::Ipc,
            ip: dir.join("kernel").to_string_lossy().into_owned(),
            shell_port: 1,
            iopub_port: 2,
            stdin_port: 3,
            control_port: 4,
            hb_port: 5,
            signature_scheme: "hmac-sha256".into(),
            key: KEY.into(),
            kernel_name: None,
        };
        let interrupted = Arc::new(AtomicBool::new(false));
        let shut_down = Arc::new(AtomicBool::new(false));
        let fake = Fake {
            interrupted: interrupted.clone(),
            shut_down: shut_down.clone(),
        };
        let flag = interrupted.clone();
        let kernel_info = info.clone();
        let kernel = std::thread::spawn(move || {
            serve(&kernel_info, Listeners::default(), move || {
                let interrupt: Box<dyn Fn() + Send> =
                    Box::new(move || flag.store(true, Ordering::SeqCst));
                Ok((fake, interrupt))
            })
        });

        let ctx = zmq::Context::new();
        let dealer = |endpoint: String| {
            let s = ctx.socket(zmq::DEALER).unwrap();
            // jupyter_client gives shell and stdin the same identity; that is how the kernel
            // finds the stdin of the client that asked for the execution.
            s.set_identity(b"test-client").unwrap();
            s.set_rcvtimeo(TIMEOUT.as_millis() as i32).unwrap();
            s.set_linger(0).unwrap();
            s.connect(&endpoint).unwrap();
            s
        };
        let iopub = ctx.socket(zmq::SUB).unwrap();
        iopub.set_subscribe(b"").unwrap();
        iopub.set_rcvtimeo(TIMEOUT.as_millis() as i32).unwrap();
        iopub.connect(&info.iopub_endpoint()).unwrap();
        let hb = ctx.socket(zmq::REQ).unwrap();
        hb.set_rcvtimeo(TIMEOUT.as_millis() as i32).unwrap();
        hb.set_linger(0).unwrap();
        hb.connect(&info.hb_endpoint()).unwrap();
        let h = Harness {
            shell: dealer(info.shell_endpoint()),
            control: dealer(info.control_endpoint()),
            stdin: dealer(info.stdin_endpoint()),
            iopub,
            hb,
            _ctx: ctx,
            signer: Signer::new("hmac-sha256", KEY).unwrap(),
            kernel: Some(kernel),
            interrupted,
            shut_down,
            dir,
        };
        h.wait_for_iopub();
        h
    }

    /// PUB drops messages until our subscription has arrived: ping with kernel_info until an
    /// iopub message shows up, then forget everything seen so far.
    fn wait_for_iopub(&self) {
        self.iopub.set_rcvtimeo(100).unwrap();
        let deadline = Instant::now() + TIMEOUT;
        loop {
            assert!(Instant::now() < deadline, "iopub never connected");
            self.send(&self.shell, "kernel_info_request", json!({}));
            self.recv(&self.shell);
            if self.iopub.recv_multipart(0).is_ok() {
                break;
            }
        }
        while self.iopub.recv_multipart(0).is_ok() {}
        self.iopub.set_rcvtimeo(TIMEOUT.as_millis() as i32).unwrap();
    }

    fn send(&self, socket: &zmq::Socket, msg_type: &str, content: Value) -> Header {
        let header = Header::new(msg_type, "client-session", "tester");
        let message = Message {
            identities: vec![],
            header: header.clone(),
            parent_header: None,
            metadata: Metadata::new(),
            content: Content::from_type_and_content(msg_type, content).unwrap(),
            buffers: vec![],
        };
        socket
            .send_multipart(message.encode(&self.signer), 0)
            .unwrap();
        header
    }

    fn recv(&self, socket: &zmq::Socket) -> Message {
        let frames = socket
            .recv_multipart(0)
            .expect("timed out waiting for a reply");
        Message::decode(frames, &self.signer).unwrap()
    }

    /// iopub messages whose parent is `parent`, from its `busy` to its `idle` (both excluded).
    fn outputs(&self, parent: &Header) -> Vec<Message> {
        let mut seen = Vec::new();
        loop {
            let m = self.recv(&self.iopub);
            if m.parent_header.as_ref().map(|p| &p.msg_id) != Some(&parent.msg_id) {
                continue;
            }
            if let Content::Status(s) = &m.content {
                match s.execution_state {
                    crate::wire::ExecutionState::Busy => {
                        assert!(seen.is_empty(), "busy must come first");
                        continue;
                    }
                    crate::wire::ExecutionState::Idle => return seen,
                    _ => {}
                }
            }
            seen.push(m);
        }
    }

    fn execute(&self, code: &str, extra: Value) -> (Value, Vec<Message>) {
        let mut content = json!({"code": code});
        content
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let header = self.send(&self.shell, "execute_request", content);
        let reply = self.recv(&self.shell);
        assert_eq!(reply.parent_header.as_ref().unwrap().msg_id, header.msg_id);
        (reply.content.to_value(), self.outputs(&header))
    }

    fn shutdown(&mut self) {
        let header = self.send(&self.control, "shutdown_request", json!({"restart": true}));
        let reply = self.recv(&self.control);
        assert_eq!(reply.header.msg_type, "shutdown_reply");
        assert_eq!(reply.parent_header.unwrap().msg_id, header.msg_id);
        assert_eq!(
            reply.content.to_value(),
            json!({"status": "ok", "restart": true})
        );
        let kernel = self.kernel.take().unwrap();
        let deadline = Instant::now() + TIMEOUT;
        while !kernel.is_finished() {
            assert!(Instant::now() < deadline, "kernel did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
        kernel.join().unwrap().unwrap();
        assert!(
            self.shut_down.load(Ordering::SeqCst),
            "engine not shut down"
        );
    }
}

fn types(messages: &[Message]) -> Vec<&str> {
    messages
        .iter()
        .map(|m| m.header.msg_type.as_str())
        .collect()
}

#[test]
fn kernel_info_and_heartbeat_answer_at_once() {
    let mut h = Harness::start();
    let sent = Instant::now();
    let header = h.send(&h.shell, "kernel_info_request", json!({}));
    let reply = h.recv(&h.shell);
    assert!(
        sent.elapsed() < Duration::from_secs(1),
        "{:?}",
        sent.elapsed()
    );
    let c = reply.content.to_value();
    assert_eq!(reply.header.msg_type, "kernel_info_reply");
    assert_eq!(reply.header.version, "5.4");
    assert_eq!(c["status"], "ok");
    assert_eq!(c["implementation"], "kettle");
    assert_eq!(c["language_info"]["name"], "rust");
    assert!(h.outputs(&header).is_empty());
    // kernel_info also works on control (spec 5.5).
    h.send(&h.control, "kernel_info_request", json!({}));
    assert_eq!(h.recv(&h.control).header.msg_type, "kernel_info_reply");
    h.hb.send("ping", 0).unwrap();
    assert_eq!(h.hb.recv_bytes(0).unwrap(), b"ping");
    h.shutdown();
}

#[test]
fn execute_counts_publishes_and_records_history() {
    let mut h = Harness::start();

    let (reply, out) = h.execute("value", json!({}));
    assert_eq!(
        reply,
        json!({"status": "ok", "execution_count": 1, "user_expressions": {}, "payload": []})
    );
    assert_eq!(types(&out), ["execute_input", "execute_result"]);
    assert_eq!(
        out[0].content.to_value(),
        json!({"code": "value", "execution_count": 1})
    );
    assert_eq!(
        out[1].content.to_value(),
        json!({"execution_count": 1, "data": {"text/plain": "42"}, "metadata": {}})
    );

    // silent: nothing on iopub, counter untouched.
    let (reply, out) = h.execute("print", json!({"silent": true}));
    assert_eq!(reply["execution_count"], 1);
    assert!(out.is_empty(), "{:?}", types(&out));

    // store_history false: runs and publishes, but does not count.
    let (reply, out) = h.execute("print", json!({"store_history": false}));
    assert_eq!(reply["execution_count"], 1);
    assert_eq!(types(&out), ["execute_input", "stream"]);
    assert_eq!(
        out[1].content.to_value(),
        json!({"name": "stdout", "text": "hi\n"})
    );

    let (reply, out) = h.execute("display", json!({}));
    assert_eq!(reply["execution_count"], 2);
    assert_eq!(
        types(&out),
        [
            "execute_input",
            "display_data",
            "update_display_data",
            "clear_output"
        ]
    );
    assert_eq!(
        out[1].content.to_value()["transient"],
        json!({"display_id": "d1"})
    );

    // user_expressions are evaluated after a successful cell.
    let (reply, _) = h.execute(
        "x",
        json!({"user_expressions": {"a": "value", "b": "error"}}),
    );
    assert_eq!(reply["user_expressions"]["a"]["status"], "ok");
    assert_eq!(reply["user_expressions"]["a"]["data"]["text/plain"], "42");
    assert_eq!(reply["user_expressions"]["b"]["status"], "error");
    assert_eq!(reply["user_expressions"]["b"]["ename"], "E0425");

    // errors: iopub `error` and an error reply with the triple.
    let (reply, out) = h.execute("error", json!({}));
    assert_eq!(reply["status"], "error");
    assert_eq!(reply["ename"], "E0425");
    assert_eq!(reply["traceback"], json!(["frame 1"]));
    assert_eq!(reply["execution_count"], 4);
    assert_eq!(types(&out), ["execute_input", "error"]);

    let header = h.send(
        &h.shell,
        "history_request",
        json!({"hist_access_type": "tail", "n": 2, "output": false, "raw": true}),
    );
    let reply = h.recv(&h.shell);
    assert_eq!(
        reply.content.to_value(),
        json!({"status": "ok", "history": [[1, 3, "x"], [1, 4, "error"]]})
    );
    h.outputs(&header);
    h.shutdown();
}

#[test]
fn stop_on_error_aborts_what_is_queued() {
    let mut h = Harness::start();
    let first = h.send(&h.shell, "execute_request", json!({"code": "slow error"}));
    let queued = h.send(&h.shell, "execute_request", json!({"code": "value"}));
    let info = h.send(&h.shell, "kernel_info_request", json!({}));
    let queued2 = h.send(&h.shell, "execute_request", json!({"code": "value"}));

    let replies: Vec<Message> = (0..4).map(|_| h.recv(&h.shell)).collect();
    let parents: Vec<&str> = replies
        .iter()
        .map(|r| r.parent_header.as_ref().unwrap().msg_id.as_str())
        .collect();
    assert_eq!(
        parents,
        [&first.msg_id, &queued.msg_id, &info.msg_id, &queued2.msg_id]
    );
    assert_eq!(replies[0].content.to_value()["status"], "error");
    assert_eq!(replies[1].content.to_value()["status"], "aborted");
    assert_eq!(replies[2].content.to_value()["status"], "ok");
    assert_eq!(replies[3].content.to_value()["status"], "aborted");
    // Every request, aborted or not, gets its busy/idle.
    for header in [&first, &queued, &info, &queued2] {
        h.outputs(header);
    }
    // Aborted cells did not count; the queue runs normally again afterwards.
    let (reply, _) = h.execute("value", json!({}));
    assert_eq!(reply["status"], "ok");
    assert_eq!(reply["execution_count"], 2);

    // stop_on_error false: the next request runs.
    h.send(
        &h.shell,
        "execute_request",
        json!({"code": "slow error", "stop_on_error": false}),
    );
    h.send(&h.shell, "execute_request", json!({"code": "value"}));
    assert_eq!(h.recv(&h.shell).content.to_value()["status"], "error");
    assert_eq!(h.recv(&h.shell).content.to_value()["status"], "ok");
    h.shutdown();
}

#[test]
fn input_requests_go_to_the_requesting_client() {
    let mut h = Harness::start();
    let header = h.send(&h.shell, "execute_request", json!({"code": "input"}));
    let request = h.recv(&h.stdin);
    assert_eq!(request.header.msg_type, "input_request");
    assert_eq!(
        request.parent_header.as_ref().unwrap().msg_id,
        header.msg_id
    );
    assert_eq!(
        request.content.to_value(),
        json!({"prompt": "name? ", "password": false})
    );
    h.send(&h.stdin, "input_reply", json!({"value": "Ferris"}));
    let reply = h.recv(&h.shell);
    assert_eq!(reply.content.to_value()["status"], "ok");
    let out = h.outputs(&header);
    assert_eq!(
        out[1].content.to_value()["data"]["text/plain"],
        "Some(\"Ferris\")"
    );

    // allow_stdin false: the engine hears "no input" at once, no input_request is sent.
    let (_, out) = h.execute("input", json!({"allow_stdin": false}));
    assert_eq!(out[1].content.to_value()["data"]["text/plain"], "None");
    h.shutdown();
}

#[test]
fn control_is_served_while_a_cell_runs() {
    let mut h = Harness::start();
    let header = h.send(&h.shell, "execute_request", json!({"code": "wait"}));
    std::thread::sleep(Duration::from_millis(50));
    let sent = Instant::now();
    h.send(&h.control, "interrupt_request", json!({}));
    let reply = h.recv(&h.control);
    assert_eq!(reply.header.msg_type, "interrupt_reply");
    assert_eq!(reply.content.to_value(), json!({"status": "ok"}));
    assert!(sent.elapsed() < Duration::from_secs(2));
    assert!(h.interrupted.load(Ordering::SeqCst));
    let reply = h.recv(&h.shell);
    assert_eq!(reply.parent_header.unwrap().msg_id, header.msg_id);
    assert_eq!(reply.content.to_value()["ename"], "Interrupted");
    h.shutdown();
}

#[test]
fn shutdown_on_shell_still_works() {
    let mut h = Harness::start();
    h.send(&h.shell, "shutdown_request", json!({"restart": false}));
    let reply = h.recv(&h.shell);
    assert_eq!(
        reply.content.to_value(),
        json!({"status": "ok", "restart": false})
    );
    let kernel = h.kernel.take().unwrap();
    kernel.join().unwrap().unwrap();
    assert!(h.shut_down.load(Ordering::SeqCst));
}

#[test]
fn bad_messages_are_dropped_and_survived() {
    let mut h = Harness::start();
    // Garbage frames.
    h.shell
        .send_multipart([&b"no delimiter"[..], b"at all"], 0)
        .unwrap();
    h.shell
        .send_multipart([&b"<IDS|MSG>"[..], b"sig", b"{not json"], 0)
        .unwrap();
    // A well-formed message with a wrong signature: must not be executed or answered.
    let header = Header::new("execute_request", "s", "u");
    let forged = Message {
        identities: vec![],
        header,
        parent_header: None,
        metadata: Metadata::new(),
        content: Content::from_type_and_content("execute_request", json!({"code": "value"}))
            .unwrap(),
        buffers: vec![],
    };
    let frames = forged.encode(&Signer::new("hmac-sha256", "wrong key").unwrap());
    h.shell.send_multipart(frames, 0).unwrap();
    // Unknown type: busy/idle, no reply.
    let unknown = h.send(&h.shell, "future_request", json!({"x": 1}));
    assert!(h.outputs(&unknown).is_empty());
    // Still alive, and the forged request did not run (the count is still 1 after this).
    let (reply, _) = h.execute("value", json!({}));
    assert_eq!(reply["execution_count"], 1);
    h.shutdown();
}

#[test]
fn completion_inspection_comms_and_completeness() {
    let mut h = Harness::start();
    h.send(
        &h.shell,
        "complete_request",
        json!({"code": "std::th", "cursor_pos": 7}),
    );
    assert_eq!(
        h.recv(&h.shell).content.to_value(),
        json!({"status": "ok", "matches": ["thread"], "cursor_start": 5, "cursor_end": 7,
               "metadata": {}})
    );
    h.send(
        &h.shell,
        "inspect_request",
        json!({"code": "Vec", "cursor_pos": 3}),
    );
    let c = h.recv(&h.shell).content.to_value();
    assert_eq!(c["found"], true);
    assert_eq!(c["data"]["text/plain"], "docs");

    h.send(&h.shell, "comm_info_request", json!({}));
    assert_eq!(
        h.recv(&h.shell).content.to_value(),
        json!({"status": "ok", "comms": {}})
    );
    let open = h.send(
        &h.shell,
        "comm_open",
        json!({"comm_id": "c1", "target_name": "nobody", "data": {}}),
    );
    let out = h.outputs(&open);
    assert_eq!(types(&out), ["comm_close"]);
    assert_eq!(out[0].content.to_value()["comm_id"], "c1");

    h.send(
        &h.shell,
        "is_complete_request",
        json!({"code": "let x = 1;"}),
    );
    let c = h.recv(&h.shell).content.to_value();
    assert!(
        ["complete", "incomplete", "invalid"].contains(&c["status"].as_str().unwrap()),
        "{c}"
    );
    h.shutdown();
}
