//! Protocol policy: what the kernel does with each message. It wires the transport's sockets
//! to two session threads and runs until shutdown:
//!
//! ```text
//! shell ROUTER thread ──ShellInput──▶ shell session thread (owns Engine, counter, history)
//!                                       │ ▲ input_request / input_reply
//! stdin ROUTER thread ──StdinInput─────────┘
//! control ROUTER thread ──Frames──▶ control session thread (Interrupter; never waits)
//! both session threads ──frames──▶ iopub thread (one owner)      heartbeat thread: echo
//! ```
//!
//! The control thread reaches the shell thread only through channels (a `Shutdown` input, a
//! stdin `Cancel`) and the engine only through its [`Interrupter`](crate::engine::Interrupter), so
//! control requests are served while a cell runs. This module does not import evcxr; it uses
//! [`crate::engine::Engine`]. Spec: Jupyter messaging 5.4.

mod control;
mod history;
mod kernel_info;
mod log;
mod outgoing;
mod shell;
mod signals;

use crate::engine::{Completions, Engine, EngineConfig, Event, Inspection, NOTEBOOK_ENV, Outcome};
use crate::transport::{Inboxes, Listeners, Transport};
use crate::wire::{ConnectionInfo, ExecutionState, Frames, Message, Signer, WireError};
use anyhow::Context;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub use history::SESSION as HISTORY_SESSION;
pub use kernel_info::{COURSE_README_URL, kernel_info};

/// What reaches the shell thread from the stdin socket and the control thread.
enum StdinInput {
    /// A multipart message from the stdin socket (an `input_reply`).
    Frames(Frames),
    /// Stop waiting for input (interrupt or shutdown).
    Cancel,
}

/// How long, after a shutdown, we wait for the shell thread to stop the engine before closing
/// the sockets anyway (Jupyter kills a kernel that takes longer than ~5 s).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(4);

/// What the session needs from an engine: [`Engine`] in the kernel, a scripted fake in the
/// session's tests (the real engine re-executes the current binary, which a test harness must
/// not do).
pub(crate) trait Evaluator: Send + 'static {
    fn execute(&self, code: &str, allow_stdin: bool, on_event: &mut dyn FnMut(Event)) -> Outcome;
    fn complete(&self, code: &str, cursor_pos: usize) -> Completions;
    fn inspect(&self, code: &str, cursor_pos: usize, detail_level: u8) -> Inspection;
    fn shutdown(&self);
    /// Output produced between cells, if the engine reports it.
    fn late_output(&self) -> Option<mpsc::Receiver<Event>> {
        None
    }
}

impl Evaluator for Engine {
    fn execute(&self, code: &str, allow_stdin: bool, on_event: &mut dyn FnMut(Event)) -> Outcome {
        Engine::execute(self, code, allow_stdin, on_event)
    }
    fn complete(&self, code: &str, cursor_pos: usize) -> Completions {
        Engine::complete(self, code, cursor_pos)
    }
    fn inspect(&self, code: &str, cursor_pos: usize, detail_level: u8) -> Inspection {
        Engine::inspect(self, code, cursor_pos, detail_level)
    }
    fn shutdown(&self) {
        Engine::shutdown(self)
    }
    fn late_output(&self) -> Option<mpsc::Receiver<Event>> {
        Some(Engine::late_output(self))
    }
}

/// An engine plus the function that interrupts it from another thread.
type Started<E> = (E, Box<dyn Fn() + Send>);

/// Reads and parses a connection file.
pub fn read_connection_file(connection_file: &Path) -> anyhow::Result<ConnectionInfo> {
    let text = std::fs::read_to_string(connection_file)
        .with_context(|| format!("cannot read connection file {}", connection_file.display()))?;
    ConnectionInfo::from_json(&text)
        .with_context(|| format!("bad connection file {}", connection_file.display()))
}

/// Runs a kernel for `connection_file` until a `shutdown_request`, on `listeners` if they were
/// bound already.
pub fn run_kernel(
    connection_file: &Path,
    engine_config: EngineConfig,
    listeners: Listeners,
) -> anyhow::Result<()> {
    let info = read_connection_file(connection_file)?;

    // `kernel_info_reply` carries the Rust version; ask for it now, off the critical path, so
    // the first reply does not wait for `rustc --version`.
    std::thread::spawn(Engine::language_version);

    // Engine::start returns at once; the evaluation context is built in the background and only
    // the first execute waits for it.
    serve(&info, listeners, move || {
        let engine = Engine::start(engine_config)?;
        if let Ok(cwd) = std::env::current_dir() {
            engine.read_ahead(std::env::var_os(NOTEBOOK_ENV).as_deref(), &cwd);
        }
        with_interrupts(engine)
    })
}

/// Serves `info` with an engine that is already running (a spare kernel's, see
/// [`crate::spare`]), on the launcher's `listeners` if it passed them; `bound` is called once
/// the sockets are bound.
pub fn run_with_engine(
    info: &ConnectionInfo,
    listeners: Listeners,
    engine: Engine,
    bound: impl FnOnce(),
) -> anyhow::Result<()> {
    serve(info, listeners, move || {
        // SIGINT handling first: the launcher forwards Ctrl-C as soon as it hears "bound".
        let started = with_interrupts(engine);
        bound();
        started
    })
}

/// The engine with its interrupt function; SIGINT interrupts too.
fn with_interrupts(engine: Engine) -> anyhow::Result<Started<Engine>> {
    let interrupter = engine.interrupter();
    let by_signal = engine.interrupter();
    if let Err(e) = signals::forward_sigint(move || by_signal.interrupt()) {
        log::warn(format_args!("SIGINT will end the kernel: {e}"));
    }
    let interrupt: Box<dyn Fn() + Send> = Box::new(move || interrupter.interrupt());
    Ok((engine, interrupt))
}

/// Binds the sockets of `info` (or takes over `listeners`), starts the engine with `start` and
/// serves until shutdown.
fn serve<E: Evaluator>(
    info: &ConnectionInfo,
    listeners: Listeners,
    start: impl FnOnce() -> anyhow::Result<Started<E>>,
) -> anyhow::Result<()> {
    let signer = Signer::new(&info.signature_scheme, &info.key)?;
    let (shell_tx, shell_rx) = mpsc::channel();
    let (control_tx, control_rx) = mpsc::channel();
    let (stdin_tx, stdin_rx) = mpsc::channel();
    let inboxes = Inboxes {
        shell: Box::new({
            let tx = shell_tx.clone();
            move |frames| {
                let _ = tx.send(shell::ShellInput::Frames(frames));
            }
        }),
        control: Box::new(move |frames| {
            let _ = control_tx.send(frames);
        }),
        stdin: Box::new({
            let tx = stdin_tx.clone();
            move |frames| {
                let _ = tx.send(StdinInput::Frames(frames));
            }
        }),
    };
    let transport = Transport::bind(info, inboxes, listeners)?;
    let out = outgoing::Outgoing::new(signer, transport.iopub.clone());
    out.status(None, ExecutionState::Starting);

    let (engine, interrupt) = match start() {
        Ok(started) => started,
        Err(e) => {
            transport.shutdown();
            return Err(e);
        }
    };
    let control = control::Control {
        out: out.clone(),
        control: transport.control.clone(),
        inbox: control_rx,
        interrupt,
        shell: shell_tx,
        stdin: stdin_tx,
    };
    let late = engine.late_output();
    let shell = shell::Shell::new(
        engine,
        out.clone(),
        transport.shell.clone(),
        transport.stdin.clone(),
        shell_rx,
        stdin_rx,
    );
    if let Some(late) = late {
        // Output of threads that outlive their cell: published as it comes, with the parent
        // header of the last cell, so the frontend shows it under that cell.
        let last_parent = shell.last_parent.clone();
        std::thread::Builder::new()
            .name("kettle-late-output".into())
            .spawn(move || {
                for event in late {
                    let parent = last_parent
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .clone();
                    if let Some(parent) = parent {
                        shell::publish_event(&out, &parent, event);
                    }
                }
            })?;
    }

    // The first of the two session threads to finish means "shut down".
    let (done_tx, done_rx) = mpsc::channel::<&'static str>();
    let shell_thread = std::thread::Builder::new()
        .name("kettle-session-shell".into())
        .spawn({
            let done = done_tx.clone();
            move || {
                shell.run();
                let _ = done.send("shell");
            }
        })?;
    std::thread::Builder::new()
        .name("kettle-session-control".into())
        .spawn(move || {
            if control.run() {
                let _ = done_tx.send("control");
            }
        })?;

    let by = done_rx.recv().unwrap_or("nobody");
    log::debug(format_args!("shutdown requested on {by}"));
    // The shell thread stops the engine (after an interrupted cell returns); give it time,
    // but do not hang on a stuck engine.
    let deadline = Instant::now() + SHUTDOWN_GRACE;
    while !shell_thread.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    if !shell_thread.is_finished() {
        log::warn(format_args!(
            "the engine did not stop within {SHUTDOWN_GRACE:?}; exiting anyway"
        ));
    }
    // Sends what is still queued (the shutdown reply, the last idle), then closes the sockets.
    transport.shutdown();
    Ok(())
}

/// Decodes frames from `socket`, logging (one line) and dropping what is bad.
fn decode(frames: Frames, signer: &Signer, socket: &str) -> Option<Message> {
    match Message::decode(frames, signer) {
        Ok(message) => {
            log::debug(format_args!(
                "{socket}: {} {}",
                message.header.msg_type, message.header.msg_id
            ));
            Some(message)
        }
        Err(WireError::BadSignature) => {
            log::warn(format_args!(
                "{socket}: dropped a message with an invalid signature"
            ));
            None
        }
        Err(e) => {
            log::warn(format_args!("{socket}: dropped a malformed message: {e}"));
            None
        }
    }
}

#[cfg(test)]
mod tests;
