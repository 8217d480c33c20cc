//! A raw Jupyter client for the end-to-end tests: it spawns the real `kettle` binary and talks to
//! it over ZeroMQ with hand-built frames and `serde_json::Value`s.
//!
//! It deliberately shares no types with the kernel (wire protocol 5.4,
//! <https://jupyter-client.readthedocs.io/en/latest/messaging.html>), so a bug in the kernel's
//! typed messages cannot hide behind the same bug in the test. Every wait has a timeout and
//! panics with everything seen so far plus the tail of the kernel's stderr.

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use std::collections::VecDeque;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a cell may take: evcxr compiles every cell, and two test threads share two cores.
pub const EXECUTE_TIMEOUT: Duration = Duration::from_secs(240);
/// How long a non-executing request (kernel_info, complete, history...) may take. Completion and
/// inspection go through rust-analyzer, which is slow on its first query.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(90);
/// How long we listen to conclude that *no* reply is coming.
pub const SILENCE: Duration = Duration::from_secs(3);

const DELIMITER: &[u8] = b"<IDS|MSG>";

/// The sockets a client talks to; `Hb` is only used through [`Kernel::heartbeat`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Shell,
    Control,
    Stdin,
    Iopub,
}

/// One received message, with the moment our client read it off the socket.
#[derive(Debug, Clone)]
pub struct Msg {
    pub channel: Channel,
    pub header: Value,
    pub parent_header: Value,
    pub metadata: Value,
    pub content: Value,
    pub arrived: Instant,
}

impl Msg {
    pub fn msg_type(&self) -> &str {
        self.header["msg_type"].as_str().unwrap_or("")
    }

    pub fn parent_id(&self) -> &str {
        self.parent_header["msg_id"].as_str().unwrap_or("")
    }

    /// `content.execution_state` for a status message.
    pub fn state(&self) -> &str {
        self.content["execution_state"].as_str().unwrap_or("")
    }

    /// Whether this is (an update of) the kernel's dependency-build display.
    pub fn is_build_display(&self) -> bool {
        self.content["transient"]["display_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("kettle-build-"))
    }

    fn summary(&self) -> String {
        let mut content = self.content.to_string();
        if content.len() > 300 {
            let mut cut = 300;
            while !content.is_char_boundary(cut) {
                cut -= 1;
            }
            content.truncate(cut);
            content.push_str("...");
        }
        format!("{:?} {} {}", self.channel, self.msg_type(), content)
    }
}

/// The reply to one execute_request and every iopub message for it, from busy to idle.
#[derive(Debug, Clone)]
pub struct Collected {
    pub msg_id: String,
    pub reply: Msg,
    pub iopub: Vec<Msg>,
}

impl Collected {
    /// `reply.content.status`: "ok", "error" or "aborted".
    pub fn status(&self) -> &str {
        self.reply.content["status"].as_str().unwrap_or("")
    }

    /// iopub messages of one type, in arrival order, without the kernel's display of a
    /// dependency build (a cell that adds dependencies shows it when cargo has to build them,
    /// which depends on what earlier runs left built; see [`Collected::build_displays`]).
    pub fn of_type(&self, msg_type: &str) -> Vec<&Msg> {
        self.iopub
            .iter()
            .filter(|m| m.msg_type() == msg_type && !m.is_build_display())
            .collect()
    }

    /// The kernel's dependency-build display: its `display_data` and `update_display_data`
    /// messages, in arrival order.
    pub fn build_displays(&self) -> Vec<&Msg> {
        self.iopub.iter().filter(|m| m.is_build_display()).collect()
    }

    /// Everything written to one stream (`"stdout"` / `"stderr"`), concatenated.
    pub fn stream(&self, name: &str) -> String {
        self.of_type("stream")
            .iter()
            .filter(|m| m.content["name"] == name)
            .map(|m| m.content["text"].as_str().unwrap_or(""))
            .collect()
    }

    /// `data["text/plain"]` of the execute_result, if there was one.
    pub fn result_text(&self) -> Option<String> {
        self.of_type("execute_result")
            .first()
            .and_then(|m| m.content["data"]["text/plain"].as_str())
            .map(str::to_owned)
    }

    /// The single iopub `error` message; panics with the whole exchange if there is none.
    pub fn error(&self) -> &Msg {
        let errors = self.of_type("error");
        assert_eq!(
            errors.len(),
            1,
            "expected one iopub error\n{}",
            self.describe()
        );
        errors[0]
    }

    /// Asserts that the cell failed with error `ename` (e.g. "Interrupted").
    pub fn assert_error_named(&self, ename: &str) {
        assert_eq!(self.status(), "error", "{}", self.describe());
        assert_eq!(self.error().content["ename"], ename, "{}", self.describe());
    }

    /// A readable dump of the whole exchange, for assertion messages.
    pub fn describe(&self) -> String {
        let mut out = format!(
            "request {}\nreply: {}\niopub:\n",
            self.msg_id,
            self.reply.summary()
        );
        for m in &self.iopub {
            out.push_str("  ");
            out.push_str(&m.summary());
            out.push('\n');
        }
        out
    }
}

/// How to start a kernel beyond the defaults: more arguments after the connection file, more
/// environment variables, another working directory.
#[derive(Default, Clone)]
pub struct Launch {
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: Option<PathBuf>,
}

/// A running kernel process plus a connected client. Dropping it kills the kernel.
pub struct Kernel {
    child: Option<Child>,
    dir: PathBuf,
    key: Vec<u8>,
    session: String,
    shell: zmq::Socket,
    control: zmq::Socket,
    stdin: zmq::Socket,
    iopub: zmq::Socket,
    hb: zmq::Socket,
    /// Received but not yet consumed, per channel, in arrival order.
    inbox: Vec<(Channel, VecDeque<Msg>)>,
    /// Whether a panic message already carried the kernel's stderr (so `Drop` need not).
    stderr_reported: std::cell::Cell<bool>,
    // Keeps the sockets' context alive as long as the sockets.
    _ctx: zmq::Context,
}

impl Kernel {
    /// Spawns a kernel and waits until the heartbeat round-trips, `kernel_info` answers and iopub
    /// delivers (a SUB socket misses whatever is published before its subscription lands).
    pub fn start() -> Kernel {
        Kernel::start_with(&Launch::default())
    }

    /// The kernel's process id (for signals).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Spawns a kernel and connects, without waiting for anything.
    pub fn spawn() -> Kernel {
        Kernel::spawn_with(&Launch::default())
    }

    /// Like [`Kernel::start`], with extra arguments, environment or directory.
    pub fn start_with(launch: &Launch) -> Kernel {
        // The ports are found free, then bound by the kernel; in between, another socket of this
        // busy run can take one (each outgoing connection, ZeroMQ's retries included, takes a
        // port from the same range). A kernel that could not bind is started again on new
        // ports.
        for _ in 0..3 {
            let mut kernel = Kernel::spawn_with(launch);
            if kernel.wait_heartbeat_unless_port_taken(Duration::from_secs(60)) {
                kernel.wait_iopub_ready();
                return kernel;
            }
        }
        panic!("three kernels in a row found a port taken");
    }

    /// [`Kernel::wait_heartbeat`], except that it returns false when the kernel exited because
    /// a port of its connection file was taken.
    fn wait_heartbeat_unless_port_taken(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.heartbeat(Duration::from_millis(500)) {
                return true;
            }
            let exited = self
                .child
                .as_mut()
                .is_some_and(|child| matches!(child.try_wait(), Ok(Some(_))));
            let log = std::fs::read_to_string(self.dir.join("kernel.log")).unwrap_or_default();
            if exited && log.contains("Address already in use") {
                self.stderr_reported.set(true);
                return false;
            }
            self.assert_running("waiting for the heartbeat");
        }
        panic!("heartbeat never answered\n{}", self.stderr_tail());
    }

    /// Like [`Kernel::spawn`], with extra arguments, environment or directory.
    pub fn spawn_with(launch: &Launch) -> Kernel {
        let dir = temp_dir("kettle-e2e");
        let config_dir = dir.join("evcxr-config");
        std::fs::create_dir_all(&config_dir).expect("create evcxr config dir");
        let ports: Vec<u16> = (0..5).map(|_| free_port()).collect();
        let key = uuid::Uuid::new_v4().simple().to_string();
        let connection = json!({
            "ip": "127.0.0.1",
            "transport": "tcp",
            "shell_port": ports[0],
            "iopub_port": ports[1],
            "stdin_port": ports[2],
            "control_port": ports[3],
            "hb_port": ports[4],
            "key": key,
            "signature_scheme": "hmac-sha256",
            "kernel_name": "kettle",
        });
        let connection_file = dir.join("connection.json");
        std::fs::write(&connection_file, connection.to_string()).expect("write connection file");

        let log = std::fs::File::create(dir.join("kernel.log")).expect("create kernel log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_kettle"));
        command
            .arg("kernel")
            .arg("--connection-file")
            .arg(&connection_file)
            .args(&launch.args)
            .env("EVCXR_CONFIG_DIR", &config_dir)
            .envs(launch.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log);
        if let Some(cwd) = &launch.cwd {
            command.current_dir(cwd);
        }
        let child = spawn_tied_to_test_process(command);

        let ctx = zmq::Context::new();
        let session = uuid::Uuid::new_v4().to_string();
        let url = |port: u16| format!("tcp://127.0.0.1:{port}");
        // Shell and stdin must share one identity: the kernel routes input_request to the
        // identity that sent the execute_request.
        let identity = session.as_bytes();
        let dealer = |port: u16| {
            let s = ctx.socket(zmq::DEALER).expect("dealer socket");
            s.set_identity(identity).expect("set identity");
            s.set_linger(0).expect("linger");
            s.connect(&url(port)).expect("connect dealer");
            s
        };
        let shell = dealer(ports[0]);
        let stdin = dealer(ports[2]);
        let control = dealer(ports[3]);
        let iopub = ctx.socket(zmq::SUB).expect("sub socket");
        iopub.set_linger(0).expect("linger");
        // Unlimited queue on our side: the flood test must not lose output in the client.
        iopub.set_rcvhwm(0).expect("rcvhwm");
        iopub.set_subscribe(b"").expect("subscribe");
        iopub.connect(&url(ports[1])).expect("connect iopub");
        let hb = ctx.socket(zmq::REQ).expect("req socket");
        hb.set_linger(0).expect("linger");
        // Relaxed + correlate: a ping that timed out must not wedge the REQ state machine.
        hb.set_req_relaxed(true).expect("req relaxed");
        hb.set_req_correlate(true).expect("req correlate");
        hb.connect(&url(ports[4])).expect("connect hb");

        Kernel {
            child: Some(child),
            dir,
            key: key.into_bytes(),
            session,
            shell,
            control,
            stdin,
            iopub,
            hb,
            inbox: [
                Channel::Shell,
                Channel::Control,
                Channel::Stdin,
                Channel::Iopub,
            ]
            .into_iter()
            .map(|c| (c, VecDeque::new()))
            .collect(),
            stderr_reported: std::cell::Cell::new(false),
            _ctx: ctx,
        }
    }

    /// Sends one ping on the heartbeat socket and reports whether it echoed within `timeout`.
    pub fn heartbeat(&mut self, timeout: Duration) -> bool {
        let ping = uuid::Uuid::new_v4().to_string();
        self.hb.send(ping.as_bytes(), 0).expect("send ping");
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if self.hb.poll(zmq::POLLIN, millis(left)).expect("poll hb") == 0 {
                return false;
            }
            let echo = self.hb.recv_bytes(0).expect("recv pong");
            if echo == ping.as_bytes() {
                return true;
            }
        }
    }

    /// Pings until the heartbeat answers; panics after `timeout`.
    pub fn wait_heartbeat(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.heartbeat(Duration::from_millis(500)) {
                return;
            }
            self.assert_running("waiting for the heartbeat");
        }
        panic!("heartbeat never answered\n{}", self.stderr_tail());
    }

    fn wait_iopub_ready(&mut self) {
        // kernel_info must not wait for the engine, so this is quick for a healthy kernel; the
        // overall bound keeps a broken one from stalling the suite.
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let id = self.send(Channel::Shell, "kernel_info_request", json!({}));
            self.reply(Channel::Shell, &id, REQUEST_TIMEOUT);
            let settle = Instant::now() + Duration::from_millis(500);
            while Instant::now() < settle {
                self.pump(Duration::from_millis(50));
                if self.peek(Channel::Iopub, &id) {
                    self.take_all(Channel::Iopub, &id);
                    return;
                }
            }
        }
        panic!(
            "iopub never delivered a status message\n{}",
            self.seen_so_far()
        );
    }

    /// A fresh header for a request of `msg_type`.
    pub fn header(&self, msg_type: &str) -> Value {
        json!({
            "msg_id": uuid::Uuid::new_v4().to_string(),
            "session": self.session,
            "username": "e2e",
            "date": iso8601_now(),
            "msg_type": msg_type,
            "version": "5.4",
        })
    }

    /// The hex HMAC-SHA256 of the four signed frames.
    pub fn sign(&self, parts: &[&[u8]]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("hmac key");
        for part in parts {
            mac.update(part);
        }
        hex::encode(mac.finalize().into_bytes())
    }

    /// The frames of a correctly signed request (without routing identities: our DEALER's
    /// identity is added by the kernel's ROUTER).
    pub fn frames(&self, header: &Value, content: &Value) -> Vec<Vec<u8>> {
        let parts: [Vec<u8>; 4] = [
            header.to_string().into_bytes(),
            b"{}".to_vec(),
            b"{}".to_vec(),
            content.to_string().into_bytes(),
        ];
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        let signature = self.sign(&refs);
        let mut frames = vec![DELIMITER.to_vec(), signature.into_bytes()];
        frames.extend(parts);
        frames
    }

    /// Answers an `input_request` (received on [`Channel::Stdin`]) with an `input_reply` whose
    /// parent header is that request's header, as a frontend does.
    pub fn answer_input(&mut self, request: &Msg, value: &str) {
        let header = self.header("input_reply");
        let parts: [Vec<u8>; 4] = [
            header.to_string().into_bytes(),
            request.header.to_string().into_bytes(),
            b"{}".to_vec(),
            json!({ "value": value }).to_string().into_bytes(),
        ];
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        let signature = self.sign(&refs);
        let mut frames = vec![DELIMITER.to_vec(), signature.into_bytes()];
        frames.extend(parts);
        self.send_frames(Channel::Stdin, frames);
    }

    /// Sends a signed request and returns its msg_id.
    pub fn send(&mut self, channel: Channel, msg_type: &str, content: Value) -> String {
        let header = self.header(msg_type);
        let frames = self.frames(&header, &content);
        self.send_frames(channel, frames);
        header["msg_id"].as_str().expect("msg_id").to_owned()
    }

    /// Sends arbitrary frames, for tests that misbehave on purpose.
    pub fn send_frames(&mut self, channel: Channel, frames: Vec<Vec<u8>>) {
        self.socket(channel)
            .send_multipart(frames, 0)
            .expect("send frames");
    }

    fn socket(&self, channel: Channel) -> &zmq::Socket {
        match channel {
            Channel::Shell => &self.shell,
            Channel::Control => &self.control,
            Channel::Stdin => &self.stdin,
            Channel::Iopub => &self.iopub,
        }
    }

    fn queue(&mut self, channel: Channel) -> &mut VecDeque<Msg> {
        &mut self
            .inbox
            .iter_mut()
            .find(|(c, _)| *c == channel)
            .expect("known channel")
            .1
    }

    /// Waits up to `timeout` for socket activity, then reads everything that is ready on every
    /// socket, stamping each message with its arrival time.
    fn pump(&mut self, timeout: Duration) {
        let channels = [
            Channel::Shell,
            Channel::Control,
            Channel::Stdin,
            Channel::Iopub,
        ];
        let ready = {
            let mut items: Vec<zmq::PollItem> = channels
                .iter()
                .map(|c| self.socket(*c).as_poll_item(zmq::POLLIN))
                .collect();
            zmq::poll(&mut items, millis(timeout)).expect("poll");
            items.iter().any(|i| i.is_readable())
        };
        if !ready {
            return;
        }
        for channel in channels {
            while let Ok(frames) = self.socket(channel).recv_multipart(zmq::DONTWAIT) {
                let msg = self.parse(channel, frames);
                self.queue(channel).push_back(msg);
            }
        }
    }

    fn parse(&self, channel: Channel, frames: Vec<Vec<u8>>) -> Msg {
        let arrived = Instant::now();
        let at = frames
            .iter()
            .position(|f| f == DELIMITER)
            .unwrap_or_else(|| panic!("kernel sent a message without delimiter on {channel:?}"));
        let rest = &frames[at + 1..];
        assert!(
            rest.len() >= 5,
            "kernel sent a short message on {channel:?}"
        );
        let signed: Vec<&[u8]> = rest[1..5].iter().map(Vec::as_slice).collect();
        let expected = self.sign(&signed);
        assert_eq!(
            String::from_utf8_lossy(&rest[0]),
            expected,
            "kernel sent a wrongly signed message on {channel:?}"
        );
        let json = |bytes: &[u8]| -> Value {
            serde_json::from_slice(bytes).unwrap_or_else(|e| {
                panic!(
                    "kernel sent invalid JSON on {channel:?}: {e}: {}",
                    String::from_utf8_lossy(bytes)
                )
            })
        };
        Msg {
            channel,
            header: json(&rest[1]),
            parent_header: json(&rest[2]),
            metadata: json(&rest[3]),
            content: json(&rest[4]),
            arrived,
        }
    }

    fn peek(&mut self, channel: Channel, parent: &str) -> bool {
        self.queue(channel).iter().any(|m| m.parent_id() == parent)
    }

    fn take_first(&mut self, channel: Channel, parent: &str) -> Option<Msg> {
        let queue = self.queue(channel);
        let at = queue.iter().position(|m| m.parent_id() == parent)?;
        queue.remove(at)
    }

    fn take_all(&mut self, channel: Channel, parent: &str) -> Vec<Msg> {
        let queue = self.queue(channel);
        let (mine, others): (VecDeque<Msg>, VecDeque<Msg>) =
            queue.drain(..).partition(|m| m.parent_id() == parent);
        *queue = others;
        mine.into()
    }

    /// Waits for the reply to `parent` on `channel`; `None` after `timeout`.
    pub fn try_reply(&mut self, channel: Channel, parent: &str, timeout: Duration) -> Option<Msg> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(msg) = self.take_first(channel, parent) {
                return Some(msg);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.pump(left.min(Duration::from_millis(200)));
        }
    }

    /// Waits for the reply to `parent` on `channel`; panics after `timeout`.
    pub fn reply(&mut self, channel: Channel, parent: &str, timeout: Duration) -> Msg {
        match self.try_reply(channel, parent, timeout) {
            Some(msg) => msg,
            None => panic!(
                "no reply on {channel:?} to {parent} within {timeout:?}\n{}",
                self.seen_so_far()
            ),
        }
    }

    /// Sends a request and waits for its reply on the same channel.
    pub fn request(&mut self, channel: Channel, msg_type: &str, content: Value) -> Msg {
        let id = self.send(channel, msg_type, content);
        self.reply(channel, &id, REQUEST_TIMEOUT)
    }

    /// Collects iopub messages for `parent` until its `idle` status (inclusive).
    pub fn iopub_until_idle(&mut self, parent: &str, timeout: Duration) -> Vec<Msg> {
        match self.try_iopub_until_idle(parent, timeout) {
            Ok(got) => got,
            Err(got) => {
                let seen: Vec<String> = got.iter().map(Msg::summary).collect();
                panic!(
                    "no idle for {parent} within {timeout:?}; got for it:\n{}\n{}",
                    seen.join("\n"),
                    self.seen_so_far()
                );
            }
        }
    }

    /// Like [`Kernel::iopub_until_idle`], but returns what arrived (as `Err`) on timeout.
    pub fn try_iopub_until_idle(
        &mut self,
        parent: &str,
        timeout: Duration,
    ) -> Result<Vec<Msg>, Vec<Msg>> {
        let deadline = Instant::now() + timeout;
        let mut got = Vec::new();
        loop {
            got.extend(self.take_all(Channel::Iopub, parent));
            if got
                .iter()
                .any(|m| m.msg_type() == "status" && m.state() == "idle")
            {
                return Ok(got);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(got);
            }
            self.pump(left.min(Duration::from_millis(200)));
        }
    }

    /// Waits until an iopub message for `parent` satisfies `pred`, leaving it queued for a later
    /// [`Kernel::collect`]. Returns whether it came within `timeout`.
    pub fn wait_for_iopub(
        &mut self,
        parent: &str,
        timeout: Duration,
        pred: impl Fn(&Msg) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self
                .queue(Channel::Iopub)
                .iter()
                .any(|m| m.parent_id() == parent && pred(m))
            {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            self.pump(left.min(Duration::from_millis(200)));
        }
    }

    /// Sends an execute_request with default options and collects everything it produced.
    pub fn execute(&mut self, code: &str) -> Collected {
        self.execute_with(json!({ "code": code }))
    }

    /// Sends an execute_request whose content is the protocol defaults overridden by `content`.
    pub fn execute_with(&mut self, content: Value) -> Collected {
        let id = self.send_execute(content);
        self.collect(&id)
    }

    /// Sends an execute_request without waiting for it.
    pub fn send_execute(&mut self, overrides: Value) -> String {
        let mut content = json!({
            "code": "",
            "silent": false,
            "store_history": true,
            "user_expressions": {},
            "allow_stdin": false,
            "stop_on_error": true,
        });
        for (k, v) in overrides.as_object().expect("object").clone() {
            content[k] = v;
        }
        self.send(Channel::Shell, "execute_request", content)
    }

    /// The shell reply and iopub messages (until idle) of an already sent request.
    pub fn collect(&mut self, msg_id: &str) -> Collected {
        let reply = self.reply(Channel::Shell, msg_id, EXECUTE_TIMEOUT);
        let iopub = self.iopub_until_idle(msg_id, EXECUTE_TIMEOUT);
        Collected {
            msg_id: msg_id.to_owned(),
            reply,
            iopub,
        }
    }

    /// Runs `code` and checks that its `text/plain` result is `expected` (the "kernel still
    /// works" check after a fault), showing everything the cell published when it is not.
    pub fn assert_result(&mut self, code: &str, expected: &str) -> Collected {
        let c = self.execute(code);
        assert_eq!(
            c.result_text().as_deref(),
            Some(expected),
            "{}",
            c.describe()
        );
        c
    }

    /// Executes `code` and panics unless it succeeded; for setup cells.
    pub fn execute_ok(&mut self, code: &str) -> Collected {
        let c = self.execute(code);
        assert_eq!(
            c.status(),
            "ok",
            "setup cell {code:?} failed\n{}",
            c.describe()
        );
        c
    }

    /// Sends `shutdown_request` on control, checks the reply, and waits for the process to
    /// exit with status 0.
    pub fn shut_down(&mut self, restart: bool) {
        let reply = self.request(
            Channel::Control,
            "shutdown_request",
            json!({ "restart": restart }),
        );
        assert_eq!(reply.msg_type(), "shutdown_reply");
        assert_eq!(reply.content["status"], "ok", "{:#}", reply.content);
        assert_eq!(reply.content["restart"], restart, "{:#}", reply.content);
        let status = self.wait_exit(Duration::from_secs(30)).unwrap_or_else(|| {
            panic!(
                "kernel still running after shutdown\n{}",
                self.stderr_tail()
            )
        });
        assert!(
            status.success(),
            "exit status {status}\n{}",
            self.stderr_tail()
        );
    }

    /// Runs a cell that sleeps for two minutes, sends SIGINT to `pid` once it runs (what a
    /// terminal's Ctrl-C or `interrupt_mode: "signal"` does) and checks that the cell ends as
    /// `Interrupted`.
    pub fn interrupt_sleeping_cell_with_sigint_to(&mut self, pid: u32) {
        let id = self.send_execute(json!({ "code": "println!(\"sleeping\");\nstd::thread::sleep(std::time::Duration::from_secs(120));" }));
        let running = self.wait_for_iopub(&id, EXECUTE_TIMEOUT, |m| {
            m.msg_type() == "stream"
                && m.content["text"]
                    .as_str()
                    .unwrap_or("")
                    .contains("sleeping")
        });
        assert!(running, "the cell never started\n{}", self.stderr_tail());
        // SAFETY: kill(2) on a process of this test.
        let rc = unsafe { libc::kill(pid as libc::pid_t, libc::SIGINT) };
        assert_eq!(rc, 0);
        self.collect(&id).assert_error_named("Interrupted");
    }

    /// Waits for the process to exit on its own.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    fn assert_running(&mut self, doing: &str) {
        if let Some(child) = self.child.as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            panic!(
                "kernel exited ({status}) while {doing}\n{}",
                self.stderr_tail()
            );
        }
    }

    /// The last lines the kernel wrote to stdout/stderr.
    pub fn stderr_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("kernel.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = &lines[lines.len().saturating_sub(40)..];
        self.stderr_reported.set(true);
        format!("--- kernel stderr (last 40 lines) ---\n{}", tail.join("\n"))
    }

    fn seen_so_far(&mut self) -> String {
        self.pump(Duration::ZERO);
        let mut out = String::from("--- unconsumed messages ---\n");
        for (_, queue) in &self.inbox {
            for m in queue.iter().rev().take(30) {
                out.push_str(&format!("  (parent {}) {}\n", m.parent_id(), m.summary()));
            }
        }
        out.push_str(&self.stderr_tail());
        out
    }
}

impl Drop for Kernel {
    fn drop(&mut self) {
        if std::thread::panicking() && !self.stderr_reported.get() {
            eprintln!("{}", self.stderr_tail());
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One kernel shared by the tests of a module, which take turns (a test holds it for its whole
/// body, so its cells and counters are not interleaved with another test's). The kernel is
/// dropped when the module's last test finishes; if a filter runs fewer tests, it lives until
/// the test process exits (and dies with it, see [`spawn_tied_to_test_process`]).
pub struct SharedKernel {
    tests: usize,
    state: Mutex<(Option<Kernel>, usize)>,
}

/// Borrow of a [`SharedKernel`]; derefs to the [`Kernel`].
pub struct KernelTurn<'a> {
    guard: MutexGuard<'a, (Option<Kernel>, usize)>,
    tests: usize,
}

impl SharedKernel {
    /// `tests` is how many tests in the module use it.
    pub const fn new(tests: usize) -> SharedKernel {
        SharedKernel {
            tests,
            state: Mutex::new((None, 0)),
        }
    }

    /// Waits for this module's kernel (starting it on first use).
    pub fn take(&self) -> KernelTurn<'_> {
        // A test that panicked poisons the mutex; the kernel itself is still usable because
        // every wait filters by parent msg_id.
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if guard.0.is_none() {
            guard.0 = Some(Kernel::start());
        }
        if let Some(kernel) = guard.0.as_ref() {
            kernel.stderr_reported.set(false);
        }
        KernelTurn {
            guard,
            tests: self.tests,
        }
    }
}

impl std::ops::Deref for KernelTurn<'_> {
    type Target = Kernel;
    fn deref(&self) -> &Kernel {
        self.guard.0.as_ref().expect("kernel")
    }
}

impl std::ops::DerefMut for KernelTurn<'_> {
    fn deref_mut(&mut self) -> &mut Kernel {
        self.guard.0.as_mut().expect("kernel")
    }
}

impl Drop for KernelTurn<'_> {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Some(kernel) = self.guard.0.as_ref()
            && !kernel.stderr_reported.get()
        {
            eprintln!("{}", kernel.stderr_tail());
        }
        self.guard.1 += 1;
        if self.guard.1 >= self.tests {
            self.guard.0 = None;
        }
    }
}

/// Spawns `command` from one long-lived thread whose children get SIGKILL when it dies (Linux
/// `PR_SET_PDEATHSIG` follows the *thread* that forked). Shared kernels live in statics, whose
/// destructors never run; this way they still die with the test process.
fn spawn_tied_to_test_process(mut command: Command) -> Child {
    type Job = (Command, mpsc::Sender<std::io::Result<Child>>);
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::spawn(move || {
            for (mut command, answer) in rx {
                let _ = answer.send(command.spawn());
            }
            // The channel's sender lives in a static, so this thread lives as long as the
            // process.
        });
        Mutex::new(tx)
    });
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let (tx, rx) = mpsc::channel();
    spawner
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send((command, tx))
        .expect("spawner thread alive");
    rx.recv()
        .expect("spawner answered")
        .expect("spawn the kettle binary")
}

/// A port that was free a moment ago (bind to port 0, read it, release it).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port()
}

/// Writes a notebook (nbformat 4) of code cells with these sources to `path`; returns `path`.
pub fn write_notebook(path: &Path, cells: &[&str]) -> PathBuf {
    let cells: Vec<_> = cells
        .iter()
        .map(|source| json!({"cell_type": "code", "source": source, "metadata": {}, "outputs": []}))
        .collect();
    let notebook = json!({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells});
    std::fs::write(path, notebook.to_string()).expect("write notebook");
    path.to_owned()
}

/// A new, empty, uniquely named directory under the system temp dir.
pub fn temp_dir(prefix: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("{prefix}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Now as an ISO 8601 UTC timestamp, as the header's `date` field wants; written by hand to keep
/// the client's dependencies to the wire essentials.
fn iso8601_now() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    let secs = now.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_micros()
    )
}
