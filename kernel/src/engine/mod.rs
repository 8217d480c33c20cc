//! The evaluation engine: the only module that imports evcxr.
//!
//! An actor thread owns evcxr's `CommandContext` (created in the background, so the kernel can
//! answer `kernel_info` before the context is ready). Callers talk to it through [`Engine`],
//! whose methods block the *calling* thread only; [`Interrupter`] never waits for the engine.
//!
//! Cursor positions in this API are Unicode code points, as in the Jupyter protocol; the
//! conversion to evcxr's byte offsets happens here.

use serde_json::{Map, Value};

/// A MIME bundle: `{"text/plain": "...", "text/html": "..."}`.
pub type MimeBundle = Map<String, Value>;

/// Which standard stream a piece of output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamName {
    Stdout,
    Stderr,
}

impl StreamName {
    /// The protocol's name for the stream.
    pub fn as_str(self) -> &'static str {
        match self {
            StreamName::Stdout => "stdout",
            StreamName::Stderr => "stderr",
        }
    }
}

/// Something a running cell produced, delivered while the cell runs.
#[derive(Debug)]
pub enum Event {
    /// Text on stdout or stderr (already coalesced; may be a partial line).
    Stream { name: StreamName, text: String },
    /// Rich output. `display_id` is set when the display can be updated later; `update` marks an
    /// `update_display_data` rather than a new `display_data`.
    Display {
        data: MimeBundle,
        metadata: Map<String, Value>,
        display_id: Option<String>,
        update: bool,
    },
    /// `clear_output` from user code.
    ClearOutput { wait: bool },
    /// User code is waiting on stdin. Answer through `reply`: `Some(line)` (without newline) or
    /// `None` when the request did not allow stdin (the read then sees end of file).
    InputRequest {
        prompt: String,
        password: bool,
        reply: std::sync::mpsc::Sender<Option<String>>,
    },
}

/// How an execution ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Success, with the value of the final expression when there was one.
    Ok { result: Option<MimeBundle> },
    /// Compile error, panic, crash or interrupt.
    Error {
        ename: String,
        evalue: String,
        traceback: Vec<String>,
    },
}

/// Completion matches; `cursor_start`/`cursor_end` are code-point offsets into the code.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Completions {
    pub matches: Vec<String>,
    pub cursor_start: usize,
    pub cursor_end: usize,
}

/// What an inspection found: a MIME bundle (`text/plain`, maybe `text/markdown`), or `None`.
pub type Inspection = Option<MimeBundle>;

mod actor;
mod ahead;
mod build_progress;
mod cell_cache;
pub mod channel;
mod commands;
pub mod course;
mod link;
mod network;
mod offsets;
mod output;
mod prelude;
mod report;
pub mod runtime;
mod stdin;
mod value_display;
pub mod warm;
pub mod workdir;

pub use actor::{Engine, EngineConfig, Interrupter, OnIdle};
pub use ahead::NOTEBOOK_ENV;

/// Makes `fd` the kernel's stderr (its log) from now on; see [`crate::spare`].
pub fn redirect_stderr(fd: std::os::fd::RawFd) -> std::io::Result<()> {
    build_progress::redirect_stderr(fd)
}
