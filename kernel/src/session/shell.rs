//! The shell thread: serves shell requests one at a time (execute, complete, inspect,
//! is_complete, history, comm_info, kernel_info, comms, and shutdown from pre-5.4 clients). It
//! owns the engine, the execution counter and the history, and is the only thread that
//! talks to the client's stdin socket.
//!
//! Every request is wrapped in `busy`/`idle` with the request as parent, and everything a
//! request publishes is queued on iopub before its `idle` (iopub has one owner thread, so the
//! order holds). Spec: "Messages on the shell (ROUTER/DEALER) channel", "Messages on the stdin
//! (ROUTER/DEALER) channel".

use super::Evaluator;
use super::history::History;
use super::kernel_info::kernel_info;
use super::log;
use super::outgoing::Outgoing;
use super::{StdinInput, decode};
use crate::completeness::{IsComplete, is_complete};
use crate::engine::{self, Event, Outcome};
use crate::transport::Outbox;
use crate::wire::{
    ClearOutput, CommClose, CommInfoReply, CompleteReply, Content, DisplayData, ErrorInfo,
    ExecuteInput, ExecuteReply, ExecuteRequest, ExecuteResult, ExecutionCount, ExecutionState,
    ExpressionResult, Frames, HistoryReply, InputRequest, InspectReply, IsCompleteReply, Message,
    Metadata, ReplyStatus, ShutdownReply, Stream, StreamName, Transient, UpdateDisplayData,
};
use std::collections::{BTreeMap, VecDeque};
use std::sync::mpsc::Receiver;

/// What reaches the shell thread.
pub enum ShellInput {
    /// A multipart message from the shell socket.
    Frames(Frames),
    /// The control thread took a `shutdown_request`: stop the engine and return.
    Shutdown,
}

/// Whether the shell loop goes on after a request.
#[derive(PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

/// The shell thread's state.
pub struct Shell<E: Evaluator> {
    pub engine: E,
    pub out: Outgoing,
    pub shell: Outbox,
    pub stdin: Outbox,
    pub inbox: Receiver<ShellInput>,
    pub stdin_inbox: Receiver<StdinInput>,
    /// Inputs taken off `inbox` early by `stop_on_error`; `true` marks those to abort.
    backlog: VecDeque<(ShellInput, bool)>,
    execution_count: u32,
    history: History,
    /// The header of the last cell that published output: output arriving between cells
    /// (threads a cell left running) is published with it.
    pub last_parent: LastParent,
}

/// Shared between the shell thread and the late-output thread.
pub type LastParent = std::sync::Arc<std::sync::Mutex<Option<crate::wire::Header>>>;

impl<E: Evaluator> Shell<E> {
    pub fn new(
        engine: E,
        out: Outgoing,
        shell: Outbox,
        stdin: Outbox,
        inbox: Receiver<ShellInput>,
        stdin_inbox: Receiver<StdinInput>,
    ) -> Shell<E> {
        Shell {
            engine,
            out,
            shell,
            stdin,
            inbox,
            stdin_inbox,
            backlog: VecDeque::new(),
            execution_count: 0,
            history: History::default(),
            last_parent: LastParent::default(),
        }
    }

    /// Serves requests until a shutdown (from either socket) or until the socket closes; stops
    /// the engine on the way out.
    pub fn run(mut self) {
        loop {
            let (input, abort) = match self.backlog.pop_front() {
                Some(queued) => queued,
                None => match self.inbox.recv() {
                    Ok(input) => (input, false),
                    Err(_) => break,
                },
            };
            let frames = match input {
                ShellInput::Shutdown => break,
                ShellInput::Frames(frames) => frames,
            };
            let Some(message) = decode(frames, self.out.signer(), "shell") else {
                continue;
            };
            if self.handle(&message, abort) == Flow::Stop {
                break;
            }
        }
        self.engine.shutdown();
    }

    fn handle(&mut self, message: &Message, abort: bool) -> Flow {
        let parent = &message.header;
        self.out.status(Some(parent), ExecutionState::Busy);
        let mut flow = Flow::Continue;
        match &message.content {
            Content::ExecuteRequest(_) if abort => {
                log::debug(format_args!("aborted {} after an error", parent.msg_id));
                self.reply(message, self.execute_reply(ReplyStatus::Aborted));
            }
            Content::ExecuteRequest(request) => self.execute(message, request),
            Content::KernelInfoRequest(_) => self.reply(message, kernel_info()),
            Content::CompleteRequest(request) => {
                let cursor = request
                    .cursor_pos
                    .unwrap_or_else(|| request.code.chars().count());
                let found = self.engine.complete(&request.code, cursor);
                self.reply(
                    message,
                    CompleteReply {
                        status: ReplyStatus::Ok,
                        matches: found.matches,
                        cursor_start: found.cursor_start,
                        cursor_end: found.cursor_end,
                        metadata: Metadata::new(),
                    },
                );
            }
            Content::InspectRequest(request) => {
                let cursor = request
                    .cursor_pos
                    .unwrap_or_else(|| request.code.chars().count());
                let found = self
                    .engine
                    .inspect(&request.code, cursor, request.detail_level);
                self.reply(
                    message,
                    InspectReply {
                        status: ReplyStatus::Ok,
                        found: found.is_some(),
                        data: found.unwrap_or_default(),
                        metadata: Metadata::new(),
                    },
                );
            }
            Content::IsCompleteRequest(request) => {
                self.reply(message, completeness_reply(&request.code))
            }
            Content::HistoryRequest(request) => {
                let history = self.history.query(request);
                self.reply(
                    message,
                    HistoryReply {
                        status: ReplyStatus::Ok,
                        history,
                    },
                );
            }
            Content::CommInfoRequest(_) => self.reply(message, empty_comm_info()),
            Content::CommOpen(open) => {
                // kettle has no comm targets: the spec says to close a comm we cannot open, so
                // the frontend does not wait on it forever.
                log::debug(format_args!("no comm target {:?}", open.target_name));
                self.out.publish(
                    Some(parent),
                    CommClose {
                        comm_id: open.comm_id.clone(),
                        data: Default::default(),
                    },
                );
            }
            // Messages for comms we never opened: nothing to do.
            Content::CommMsg(_) | Content::CommClose(_) => {}
            Content::ShutdownRequest(request) => {
                // Deprecated on shell since 5.4, still sent by older clients.
                self.reply(
                    message,
                    ShutdownReply {
                        status: ReplyStatus::Ok,
                        restart: request.restart,
                    },
                );
                flow = Flow::Stop;
            }
            other => {
                // The spec: kernels need not reply to messages they don't handle.
                log::warn(format_args!(
                    "shell: ignored a {} message",
                    other.msg_type()
                ));
            }
        }
        self.out.status(Some(parent), ExecutionState::Idle);
        flow
    }

    fn reply(&self, request: &Message, content: impl Into<Content>) {
        self.out.reply(&self.shell, request, content);
    }

    fn execute_reply(&self, status: ReplyStatus) -> ExecuteReply {
        ExecuteReply {
            status,
            execution_count: ExecutionCount(self.execution_count),
            user_expressions: BTreeMap::new(),
            payload: Vec::new(),
        }
    }

    /// Runs one cell; after an error with `stop_on_error`, the queued execute requests are
    /// marked to be aborted.
    fn execute(&mut self, message: &Message, request: &ExecuteRequest) {
        let parent = &message.header;
        let store = request.stores_history();
        // Spec: the counter counts requests that store history; others see its current value.
        if store {
            self.execution_count += 1;
        }
        let count = ExecutionCount(self.execution_count);
        if !request.silent {
            *self.last_parent.lock().unwrap_or_else(|p| p.into_inner()) = Some(parent.clone());
            self.out.publish(
                Some(parent),
                ExecuteInput {
                    code: request.code.clone(),
                    execution_count: count,
                },
            );
        }

        let outcome = if let Some(target) = doc_command(&request.code) {
            // `:doc <path>`: the documentation rust-analyzer has for <path>, in the frontend's
            // pager (the `page` payload), the way `?` works in IPython.
            match self.engine.inspect(target, target.chars().count(), 1) {
                Some(data) => {
                    let mut reply = self.execute_reply(ReplyStatus::Ok);
                    reply.payload.push(serde_json::json!({
                        "source": "page",
                        "data": data,
                        "start": 0,
                    }));
                    if store {
                        self.history.record(count.0, &request.code, None);
                    }
                    self.reply(message, reply);
                    return;
                }
                None => Outcome::Error {
                    ename: "NotFound".to_owned(),
                    evalue: format!("no documentation found for `{target}`"),
                    traceback: vec![format!("no documentation found for `{target}`")],
                },
            }
        } else {
            let out = &self.out;
            let stdin = &self.stdin;
            let stdin_inbox = &self.stdin_inbox;
            let mut on_event = |event: Event| match event {
                Event::InputRequest {
                    prompt,
                    password,
                    reply,
                } => {
                    let answer = if request.allow_stdin {
                        ask_input(out, stdin, stdin_inbox, message, prompt, password)
                    } else {
                        None
                    };
                    let _ = reply.send(answer);
                }
                // Spec: silent requests broadcast nothing on iopub.
                _ if request.silent => {}
                other => publish_event(out, parent, other),
            };
            self.engine
                .execute(&request.code, request.allow_stdin, &mut on_event)
        };

        match outcome {
            Outcome::Ok { result } => {
                let result = result.filter(|data| !data.is_empty());
                let text = result
                    .as_ref()
                    .and_then(|data| data.get("text/plain"))
                    .and_then(|v| v.as_str())
                    .map(str::to_string);
                if let Some(data) = result
                    && !request.silent
                {
                    self.out.publish(
                        Some(parent),
                        ExecuteResult {
                            execution_count: count,
                            data,
                            metadata: Metadata::new(),
                            transient: None,
                        },
                    );
                }
                if store {
                    self.history.record(count.0, &request.code, text);
                }
                let mut reply = self.execute_reply(ReplyStatus::Ok);
                reply.user_expressions = self.evaluate(&request.user_expressions);
                self.reply(message, reply);
            }
            Outcome::Error {
                ename,
                evalue,
                traceback,
            } => {
                let error = ErrorInfo {
                    ename,
                    evalue,
                    traceback,
                };
                if !request.silent {
                    self.out.publish(Some(parent), error.clone());
                }
                if store {
                    self.history.record(count.0, &request.code, None);
                }
                // What is queued *now* is aborted, before the reply goes out: a request the
                // client sends after seeing the error is a new decision and must run.
                if request.stop_on_error {
                    self.take_queue_for_abort();
                }
                self.reply(message, self.execute_reply(ReplyStatus::Error(error)));
            }
        }
    }

    /// Evaluates `user_expressions` (after a successful cell, as ipykernel does); their output
    /// is dropped, only the value or error is returned.
    fn evaluate(
        &self,
        expressions: &BTreeMap<String, String>,
    ) -> BTreeMap<String, ExpressionResult> {
        expressions
            .iter()
            .map(|(name, code)| {
                let mut sink = |event: Event| {
                    if let Event::InputRequest { reply, .. } = event {
                        let _ = reply.send(None);
                    }
                };
                let result = match self.engine.execute(code, false, &mut sink) {
                    Outcome::Ok { result } => ExpressionResult::Ok {
                        data: result.unwrap_or_default(),
                        metadata: Metadata::new(),
                    },
                    Outcome::Error {
                        ename,
                        evalue,
                        traceback,
                    } => ExpressionResult::Error(ErrorInfo {
                        ename,
                        evalue,
                        traceback,
                    }),
                };
                (name.clone(), result)
            })
            .collect()
    }

    /// `stop_on_error`: whatever is queued on the shell socket right now is taken; its
    /// execute requests will be answered "aborted" without running, everything else is
    /// served normally and in order.
    fn take_queue_for_abort(&mut self) {
        while let Ok(input) = self.inbox.try_recv() {
            self.backlog.push_back((input, true));
        }
    }
}

/// The path of a `:doc <path>` cell, if the cell is one.
fn doc_command(code: &str) -> Option<&str> {
    let rest = code.trim().strip_prefix(":doc")?;
    let target = rest.trim();
    let separated = rest.starts_with([' ', '\t']);
    (separated && !target.is_empty() && !target.contains('\n')).then_some(target)
}

/// Publishes one output event of a running cell.
pub(super) fn publish_event(out: &Outgoing, parent: &crate::wire::Header, event: Event) {
    match event {
        Event::Stream { name, text } => out.publish(
            Some(parent),
            Stream {
                name: match name {
                    engine::StreamName::Stdout => StreamName::Stdout,
                    engine::StreamName::Stderr => StreamName::Stderr,
                },
                text,
            },
        ),
        Event::Display {
            data,
            metadata,
            display_id,
            update,
        } => match display_id {
            Some(display_id) if update => out.publish(
                Some(parent),
                UpdateDisplayData {
                    data,
                    metadata,
                    transient: Transient {
                        display_id: Some(display_id),
                    },
                },
            ),
            // An update without an id cannot target anything: show it as new output.
            display_id => out.publish(
                Some(parent),
                DisplayData {
                    data,
                    metadata,
                    transient: display_id.map(|id| Transient {
                        display_id: Some(id),
                    }),
                },
            ),
        },
        Event::ClearOutput { wait } => out.publish(Some(parent), ClearOutput { wait }),
        // Answered by the caller; never published.
        Event::InputRequest { reply, .. } => {
            let _ = reply.send(None);
        }
    }
}

/// Sends `input_request` to the client that sent `request` (same identities, `request` as
/// parent, spec: "Messages on the stdin channel") and waits for its `input_reply`. `None` when
/// the wait is cancelled (interrupt, shutdown) or the socket is gone.
fn ask_input(
    out: &Outgoing,
    stdin: &Outbox,
    stdin_inbox: &Receiver<StdinInput>,
    request: &Message,
    prompt: String,
    password: bool,
) -> Option<String> {
    // A cancel or a reply left over from an earlier prompt must not answer this one.
    while stdin_inbox.try_recv().is_ok() {}
    out.request(stdin, request, InputRequest { prompt, password });
    loop {
        match stdin_inbox.recv() {
            Ok(StdinInput::Frames(frames)) => {
                let Some(message) = decode(frames, out.signer(), "stdin") else {
                    continue;
                };
                match message.content {
                    Content::InputReply(reply) => return Some(reply.value),
                    other => log::warn(format_args!(
                        "stdin: ignored a {} message",
                        other.msg_type()
                    )),
                }
            }
            Ok(StdinInput::Cancel) | Err(_) => return None,
        }
    }
}

/// `is_complete_reply` from the completeness checker.
pub fn completeness_reply(code: &str) -> IsCompleteReply {
    match is_complete(code) {
        IsComplete::Complete => IsCompleteReply::Complete,
        IsComplete::Incomplete { indent } => IsCompleteReply::Incomplete { indent },
        IsComplete::Invalid => IsCompleteReply::Invalid,
    }
}

/// kettle opens no comms, so the map is always empty.
pub fn empty_comm_info() -> CommInfoReply {
    CommInfoReply {
        status: ReplyStatus::Ok,
        comms: BTreeMap::new(),
    }
}

#[cfg(test)]
mod doc_tests {
    use super::doc_command;

    #[test]
    fn doc_takes_one_path_after_a_space() {
        assert_eq!(doc_command(":doc Vec::new"), Some("Vec::new"));
        assert_eq!(
            doc_command("  :doc   std::thread::spawn \n"),
            Some("std::thread::spawn")
        );
        assert_eq!(doc_command(":docs x"), None);
        assert_eq!(doc_command(":doc"), None);
        assert_eq!(doc_command(":doc a\nb"), None);
        assert_eq!(doc_command("let doc = 1;"), None);
    }
}
