//! Typed contents of every message kettle sends or understands, one struct per message type,
//! and [`Content`], the enum over all of them with an [`Content::Unknown`] fallback: a message
//! type we do not know is data to log and ignore, never a crash.
//!
//! Parsing is lenient: fields that real clients leave out get `serde(default)`, with a comment
//! naming who leaves them out. Spec sections are named on each struct.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A MIME bundle: `{"text/plain": "...", "text/html": "..."}`.
pub type MimeBundle = Map<String, Value>;
/// Free-form metadata dict.
pub type Metadata = Map<String, Value>;

/// The `In[n]` prompt number.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct ExecutionCount(pub u32);

/// The error triple carried by error replies, the iopub `error` message and failed
/// `user_expressions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ErrorInfo {
    pub ename: String,
    pub evalue: String,
    // ipykernel always sends it; minimal kernels (and evcxr_jupyter) have sent errors without.
    #[serde(default)]
    pub traceback: Vec<String>,
}

/// The `status` field every reply has, with the error fields when it is `error`.
/// Spec: "Request-Reply". Flattened into each reply struct.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum ReplyStatus {
    #[default]
    Ok,
    Error(ErrorInfo),
    /// Deprecated since 5.1 but still what ipykernel sends for execute requests skipped after an
    /// error (`stop_on_error`), and what clients expect there.
    Aborted,
}

fn yes() -> bool {
    true
}

// ---------------------------------------------------------------- shell: requests and replies

/// `execute_request`. Spec: "Execute".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecuteRequest {
    pub code: String,
    // All five flags are optional in the spec with the defaults below; jupyter_client's
    // `execute()` sends them all, raw ZeroMQ clients (and the spec's own examples) often don't.
    #[serde(default)]
    pub silent: bool,
    #[serde(default = "yes")]
    pub store_history: bool,
    /// Name -> expression to evaluate after the cell.
    #[serde(default)]
    pub user_expressions: BTreeMap<String, String>,
    #[serde(default = "yes")]
    pub allow_stdin: bool,
    #[serde(default = "yes")]
    pub stop_on_error: bool,
}

impl ExecuteRequest {
    /// The spec: "silent=True forces store_history to be False".
    pub fn stores_history(&self) -> bool {
        self.store_history && !self.silent
    }
}

/// One evaluated `user_expressions` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum ExpressionResult {
    Ok {
        data: MimeBundle,
        #[serde(default)]
        metadata: Metadata,
    },
    Error(ErrorInfo),
}

/// `execute_reply`. Spec: "Execution results"; `execution_count` is present whatever the status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecuteReply {
    #[serde(flatten)]
    pub status: ReplyStatus,
    pub execution_count: ExecutionCount,
    // Required for status ok (jupyter_client's message-spec tests check them); ipykernel omits
    // them from error replies, so parsing must not insist.
    #[serde(default)]
    pub user_expressions: BTreeMap<String, ExpressionResult>,
    #[serde(default)]
    pub payload: Vec<Value>,
}

/// `inspect_request`. Spec: "Introspection".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InspectRequest {
    pub code: String,
    /// Code points. Old clients sent `null` meaning "end of code".
    #[serde(default)]
    pub cursor_pos: Option<usize>,
    // 0 or 1; jupyter_console leaves it out for plain `?`.
    #[serde(default)]
    pub detail_level: u8,
}

/// `inspect_reply`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InspectReply {
    #[serde(flatten)]
    pub status: ReplyStatus,
    pub found: bool,
    #[serde(default)]
    pub data: MimeBundle,
    #[serde(default)]
    pub metadata: Metadata,
}

/// `complete_request`. Spec: "Completion".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompleteRequest {
    pub code: String,
    /// Code points (spec 5.2). Old clients sent `null` meaning "end of code".
    #[serde(default)]
    pub cursor_pos: Option<usize>,
}

/// `complete_reply`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompleteReply {
    #[serde(flatten)]
    pub status: ReplyStatus,
    pub matches: Vec<String>,
    pub cursor_start: usize,
    pub cursor_end: usize,
    #[serde(default)]
    pub metadata: Metadata,
}

/// `hist_access_type` of a `history_request`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum HistAccessType {
    // jupyter_client's `history()` defaults to "range".
    #[default]
    Range,
    Tail,
    Search,
    /// Anything newer: answered with an empty history.
    #[serde(other)]
    Other,
}

/// `history_request`. Spec: "History". Only the fields of the chosen access type are sent
/// (jupyter_client's `history()` sends only what the caller passed), hence the defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct HistoryRequest {
    #[serde(default)]
    pub output: bool,
    #[serde(default)]
    pub raw: bool,
    #[serde(default)]
    pub hist_access_type: HistAccessType,
    /// 0 (or our own number) = this session; negative counts back to earlier sessions.
    #[serde(default)]
    pub session: i64,
    #[serde(default)]
    pub start: i64,
    #[serde(default)]
    pub stop: Option<i64>,
    #[serde(default)]
    pub n: Option<u32>,
    #[serde(default)]
    pub pattern: Option<String>,
    #[serde(default)]
    pub unique: bool,
}

/// One history item: `(session, line, input)` or, when `output` was requested,
/// `(session, line, (input, output))`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum HistoryEntry {
    Input(i64, u32, String),
    WithOutput(i64, u32, (String, Option<String>)),
}

/// `history_reply`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryReply {
    #[serde(flatten)]
    pub status: ReplyStatus,
    pub history: Vec<HistoryEntry>,
}

/// `is_complete_request`. Spec: "Code completeness".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IsCompleteRequest {
    pub code: String,
}

/// `is_complete_reply`: the status decides whether `indent` is present.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum IsCompleteReply {
    Complete,
    Incomplete {
        #[serde(default)]
        indent: String,
    },
    Invalid,
    Unknown,
}

/// `comm_info_request`. Spec: "Comm info".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CommInfoRequest {
    // Optional filter; JupyterLab sends none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_name: Option<String>,
}

/// One open comm in a `comm_info_reply`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommInfo {
    pub target_name: String,
}

/// `comm_info_reply`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommInfoReply {
    #[serde(flatten)]
    pub status: ReplyStatus,
    pub comms: BTreeMap<String, CommInfo>,
}

/// `kernel_info_request` (empty). Spec: "Kernel info".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct KernelInfoRequest {}

/// `language_info` of a `kernel_info_reply`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LanguageInfo {
    pub name: String,
    pub version: String,
    pub mimetype: String,
    pub file_extension: String,
    // The next three are "only needed if different from name" in the spec, so other kernels
    // omit them; `codemirror_mode` may be a string or a dict, hence `Value`.
    #[serde(default)]
    pub pygments_lexer: String,
    #[serde(default)]
    pub codemirror_mode: Value,
    #[serde(default)]
    pub nbconvert_exporter: String,
}

/// An entry of the help menu.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelpLink {
    pub text: String,
    pub url: String,
}

/// `kernel_info_reply`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KernelInfoReply {
    #[serde(flatten)]
    pub status: ReplyStatus,
    pub protocol_version: String,
    pub implementation: String,
    pub implementation_version: String,
    pub language_info: LanguageInfo,
    #[serde(default)]
    pub banner: String,
    #[serde(default)]
    pub help_links: Vec<HelpLink>,
    /// Deprecated by `supported_features` (5.5) but still read by JupyterLab 3/4.
    #[serde(default)]
    pub debugger: bool,
    // Added in 5.5; older kernels omit it.
    #[serde(default)]
    pub supported_features: Vec<String>,
}

/// `shutdown_request`, on control (and on shell from clients older than 5.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ShutdownRequest {
    // jupyter_client always sends it; treat a bare request as a final shutdown.
    #[serde(default)]
    pub restart: bool,
}

/// `shutdown_reply`: echoes `restart`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShutdownReply {
    #[serde(flatten)]
    pub status: ReplyStatus,
    pub restart: bool,
}

/// `interrupt_request` (empty), on control. Spec: "Kernel interrupt" (5.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct InterruptRequest {}

/// `interrupt_reply`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct InterruptReply {
    #[serde(flatten)]
    pub status: ReplyStatus,
}

// ---------------------------------------------------------------- comms (shell and iopub)

/// `comm_open`. Spec: "Custom Messages".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommOpen {
    pub comm_id: String,
    pub target_name: String,
    // ipywidgets always sends `data`; the spec's minimal examples don't.
    #[serde(default)]
    pub data: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_module: Option<String>,
}

/// `comm_msg`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommMsg {
    pub comm_id: String,
    #[serde(default)]
    pub data: Map<String, Value>,
}

/// `comm_close`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommClose {
    pub comm_id: String,
    #[serde(default)]
    pub data: Map<String, Value>,
}

// ---------------------------------------------------------------- iopub

/// The kernel's state in a `status` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutionState {
    Starting,
    Busy,
    Idle,
}

/// `status`. Spec: "Kernel status".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub execution_state: ExecutionState,
}

/// `execute_input`: the code being run, re-broadcast to all clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecuteInput {
    pub code: String,
    pub execution_count: ExecutionCount,
}

/// `transient` of display messages: data not stored in the notebook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Transient {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_id: Option<String>,
}

/// `execute_result`: the value of a cell's final expression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecuteResult {
    pub execution_count: ExecutionCount,
    pub data: MimeBundle,
    #[serde(default)]
    pub metadata: Metadata,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transient: Option<Transient>,
}

/// Which stream a `stream` message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamName {
    Stdout,
    Stderr,
}

/// `stream`: text on stdout or stderr.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stream {
    pub name: StreamName,
    pub text: String,
}

/// `display_data`: rich output; with a `transient.display_id` it can be updated later.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DisplayData {
    pub data: MimeBundle,
    #[serde(default)]
    pub metadata: Metadata,
    // 5.1 addition; absent from older kernels' messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transient: Option<Transient>,
}

/// `update_display_data`: replaces the output shown under `transient.display_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateDisplayData {
    pub data: MimeBundle,
    #[serde(default)]
    pub metadata: Metadata,
    pub transient: Transient,
}

/// `clear_output`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ClearOutput {
    #[serde(default)]
    pub wait: bool,
}

// ---------------------------------------------------------------- stdin

/// `input_request`, sent by the kernel on the stdin socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputRequest {
    pub prompt: String,
    #[serde(default)]
    pub password: bool,
}

/// `input_reply`, the client's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputReply {
    pub value: String,
}

// ---------------------------------------------------------------- the enum of all contents

macro_rules! contents {
    ($($(#[$doc:meta])* $variant:ident($ty:ty) = $name:literal,)*) => {
        /// The content of any message, chosen by its header's `msg_type`.
        // `kernel_info_reply` makes the enum ~400 bytes; a message lives for one request, so
        // boxing it would only cost clarity.
        #[allow(clippy::large_enum_variant)]
        #[derive(Debug, Clone, PartialEq)]
        pub enum Content {
            $($(#[$doc])* $variant($ty),)*
            /// A message type kettle does not know: kept as raw JSON.
            Unknown { msg_type: String, content: Value },
        }

        impl Content {
            /// The `msg_type` this content travels under.
            pub fn msg_type(&self) -> &str {
                match self {
                    $(Content::$variant(_) => $name,)*
                    Content::Unknown { msg_type, .. } => msg_type,
                }
            }

            /// Parses `content` as the struct for `msg_type`; unknown types become
            /// [`Content::Unknown`], a known type with bad content is an error.
            pub fn from_type_and_content(
                msg_type: &str,
                content: Value,
            ) -> Result<Content, serde_json::Error> {
                Ok(match msg_type {
                    $($name => Content::$variant(serde_json::from_value(content)?),)*
                    _ => Content::Unknown { msg_type: msg_type.to_string(), content },
                })
            }

            /// The content as JSON.
            pub fn to_value(&self) -> Value {
                let value = match self {
                    $(Content::$variant(c) => serde_json::to_value(c),)*
                    Content::Unknown { content, .. } => Ok(content.clone()),
                };
                // Our structs have string keys and no fallible Serialize impls.
                value.expect("message contents always serialize")
            }
        }

        $(impl From<$ty> for Content {
            fn from(c: $ty) -> Content {
                Content::$variant(c)
            }
        })*
    };
}

contents! {
    ExecuteRequest(ExecuteRequest) = "execute_request",
    ExecuteReply(ExecuteReply) = "execute_reply",
    InspectRequest(InspectRequest) = "inspect_request",
    InspectReply(InspectReply) = "inspect_reply",
    CompleteRequest(CompleteRequest) = "complete_request",
    CompleteReply(CompleteReply) = "complete_reply",
    HistoryRequest(HistoryRequest) = "history_request",
    HistoryReply(HistoryReply) = "history_reply",
    IsCompleteRequest(IsCompleteRequest) = "is_complete_request",
    IsCompleteReply(IsCompleteReply) = "is_complete_reply",
    CommInfoRequest(CommInfoRequest) = "comm_info_request",
    CommInfoReply(CommInfoReply) = "comm_info_reply",
    KernelInfoRequest(KernelInfoRequest) = "kernel_info_request",
    KernelInfoReply(KernelInfoReply) = "kernel_info_reply",
    ShutdownRequest(ShutdownRequest) = "shutdown_request",
    ShutdownReply(ShutdownReply) = "shutdown_reply",
    InterruptRequest(InterruptRequest) = "interrupt_request",
    InterruptReply(InterruptReply) = "interrupt_reply",
    CommOpen(CommOpen) = "comm_open",
    CommMsg(CommMsg) = "comm_msg",
    CommClose(CommClose) = "comm_close",
    Status(Status) = "status",
    ExecuteInput(ExecuteInput) = "execute_input",
    ExecuteResult(ExecuteResult) = "execute_result",
    Stream(Stream) = "stream",
    DisplayData(DisplayData) = "display_data",
    UpdateDisplayData(UpdateDisplayData) = "update_display_data",
    ClearOutput(ClearOutput) = "clear_output",
    /// The iopub `error` message.
    Error(ErrorInfo) = "error",
    InputRequest(InputRequest) = "input_request",
    InputReply(InputReply) = "input_reply",
}
