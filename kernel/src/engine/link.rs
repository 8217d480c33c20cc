//! The kernel's end of the child runtime's connections (see [`super::runtime`] for the child's).
//!
//! One Unix socket in a private directory; every connection starts with `<token> <kind>`.
//! - `stdout`/`stderr`: read raw, split into user text (published live: partial lines too,
//!   coalesced by the sink's publisher, see [`super::output`]) and evcxr's bookkeeping
//!   lines, which go back to evcxr through `control` at the end of the cell.
//!   `EVCXR_BEGIN_CONTENT` blocks become displays, one per block (several MIME types printed
//!   together form one display).
//! - `display`: JSON lines from `kettle-display` (display, update, clear).
//! - the ordered channel (a second, `SOCK_SEQPACKET` socket, see [`super::channel`]): what
//!   cells write to stdout, stderr and display through std, in the order it was written. The
//!   three connections above then carry only what bypasses std (C code, child processes) and
//!   the end-of-cell sentinels.
//! - `control`: the child says a cell started / finished; once the end-of-cell sentinel has come
//!   through stdout, stderr, display and the channel we answer with evcxr's lines, so nothing a
//!   cell printed can arrive after its reply.
//! - `stdin`: one connection per cell, answered on demand by [`super::stdin`].

use super::channel::{self, Tag};
use super::output::{SharedSink, Sink};
use super::runtime::{
    CELL_DONE, CELL_STARTED, GO, PRELUDE_FAILED, REPLY_END, SENTINEL_END, SENTINEL_START, SETUP,
};
use super::{Event, MimeBundle, StreamName, prelude};
use serde_json::Value;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Longest wait for the end-of-cell sentinels once the child says the cell is done. Only a cell
/// that closed its own stdout/stderr can make us wait this long; a shorter wait would, on a
/// busy machine, hand evcxr its bookkeeping lines before they were read.
const SENTINEL_TIMEOUT: Duration = Duration::from_secs(10);
/// The streams that carry a sentinel at the end of each cell, by index.
const STDOUT: usize = 0;
const STDERR: usize = 1;
const DISPLAY: usize = 2;
/// The ordered channel, one sentinel for its three streams.
const CHANNEL: usize = 3;
const SENTINEL_STREAMS: usize = 4;

const EVCXR_PREFIX: &str = "EVCXR_";
const BEGIN_CONTENT: &str = "EVCXR_BEGIN_CONTENT ";
const END_CONTENT: &str = "EVCXR_END_CONTENT";
const INPUT_REQUEST: &str = "EVCXR_INPUT_REQUEST";
/// Printed by evcxr's generated code when `?` returned an error from the cell.
const QUESTION_MARK_ERROR: &str = "EVCXR_ERROR_OCCURRED";
/// evcxr's own bookkeeping lines, handed back to it unchanged.
const EVCXR_BOOKKEEPING: [&str; 3] = [
    "EVCXR_PANIC_NOTIFICATION",
    "EVCXR_ERROR_OCCURRED",
    "EVCXR_VARIABLE_CHANGED_TYPE:",
];

/// What the link knows about the cell the child is running.
#[derive(Default)]
pub(super) struct CellState {
    /// Between the child's `started` and `done`.
    pub child_running: bool,
    /// The id of the cell the child runs (from its `started` line).
    current: String,
    /// The id in the last sentinel each stream delivered. A stream is in the running cell
    /// until it delivers that cell's sentinel. Kept per stream rather than checked against
    /// `current` on arrival: on a busy machine a quick cell's sentinel can be read before its
    /// `started` line.
    last_sentinel: [String; SENTINEL_STREAMS],
    evcxr_lines: Vec<String>,
    /// The kernel's end of this cell's stdin connection.
    pub stdin: Option<UnixStream>,
    /// Rich content printed last, held back: it may be the cell's value.
    pub trailing_bundle: Option<MimeBundle>,
    /// Set by `evcxr_input` (`EVCXR_INPUT_REQUEST:`) lines, taken by the stdin watcher.
    pub input_request: Option<(String, bool)>,
    /// The cell ended early through `?` (evcxr's `EVCXR_ERROR_OCCURRED`); the error itself was
    /// printed on stderr by evcxr's generated code.
    pub question_mark_error: bool,
    /// The prelude library, named to the child in every `go` (it loads it once).
    pub prelude_library: Option<String>,
    /// The child could not load the prelude library: the engine runs the prelude as a cell.
    pub prelude_failed: bool,
    /// Directory and environment for cells (JSON), sent in a `setup` line to each new child
    /// before its first cell; see `Engine::adopt_environment`.
    pub child_setup: Option<String>,
    /// The child process that already got `child_setup`.
    setup_pid: String,
}

pub(super) struct Shared {
    pub sink: SharedSink,
    pub cell: Mutex<CellState>,
    pub changed: Condvar,
}

impl Shared {
    pub fn cell(&self) -> MutexGuard<'_, CellState> {
        self.cell.lock().unwrap_or_else(|p| p.into_inner())
    }
    fn sink(&self) -> MutexGuard<'_, Sink> {
        self.sink.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The listening socket and its private directory (removed on drop).
pub(super) struct Link {
    pub dir: PathBuf,
    pub socket: PathBuf,
    pub token: String,
    pub shared: Arc<Shared>,
}

impl Drop for Link {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Link {
    pub fn start(sink: SharedSink) -> std::io::Result<Link> {
        let token = uuid::Uuid::new_v4().simple().to_string();
        let dir =
            std::env::temp_dir().join(format!("kettle-{}-{}", std::process::id(), &token[..8]));
        std::fs::create_dir_all(&dir)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        let socket = dir.join("runtime.sock");
        let listener = UnixListener::bind(&socket)?;
        let shared = Arc::new(Shared {
            sink,
            cell: Mutex::new(CellState::default()),
            changed: Condvar::new(),
        });
        let accept_shared = Arc::clone(&shared);
        let accept_token = token.clone();
        std::thread::Builder::new()
            .name("kettle-runtime-accept".into())
            .spawn(move || accept_loop(listener, &accept_token, accept_shared))?;
        let channels = channel::Listener::bind(&dir.join(channel::SOCKET_NAME))?;
        let accept_shared = Arc::clone(&shared);
        let accept_token = token.clone();
        std::thread::Builder::new()
            .name("kettle-channel-accept".into())
            .spawn(move || accept_channels(channels, &accept_token, accept_shared))?;
        Ok(Link {
            dir,
            socket,
            token,
            shared,
        })
    }

    /// Path of the file whose existence asks cooperative code to stop (`kettle-display`'s
    /// `interrupted()`).
    pub fn interrupt_file(&self) -> PathBuf {
        self.dir.join("interrupt")
    }
}

fn accept_loop(listener: UnixListener, token: &str, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let shared = Arc::clone(&shared);
        let token = token.to_owned();
        // Each connection gets its own thread: a slow hello must not hold up the others.
        let _ = std::thread::Builder::new()
            .name("kettle-runtime-conn".into())
            .spawn(move || serve_connection(stream, &token, shared));
    }
}

fn accept_channels(listener: channel::Listener, token: &str, shared: Arc<Shared>) {
    loop {
        let connection = match listener.accept() {
            Ok(connection) => connection,
            // Out of descriptors or buffers for a moment: a restarted child still needs us.
            Err(_) => {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let shared = Arc::clone(&shared);
        let token = token.to_owned();
        let _ = std::thread::Builder::new()
            .name("kettle-channel".into())
            .spawn(move || read_channel(connection, &token, &shared));
    }
}

/// Reads one child's ordered channel: every packet is handled before the next is read, so
/// the sink's queue receives stdout, stderr and displays in the order the cell wrote them.
fn read_channel(connection: channel::Connection, token: &str, shared: &Shared) {
    let mut buf = Vec::new();
    let hello_ok = match connection.receive(&mut buf) {
        Ok(Some((Tag::Hello, _, hello))) => hello
            .strip_suffix(b" channel")
            .is_some_and(|given| constant_time_eq(given, token.as_bytes())),
        _ => false,
    };
    if !hello_ok {
        eprintln!("kettle: rejected a channel connection without the right token");
        return;
    }
    let mut stdout = StreamParser::on(StreamName::Stdout, CHANNEL);
    let mut stderr = StreamParser::on(StreamName::Stderr, CHANNEL);
    let mut display = Vec::new();
    while let Ok(Some((tag, more, payload))) = connection.receive(&mut buf) {
        match tag {
            Tag::Stdout | Tag::Stderr => {
                let parser = if tag == Tag::Stdout {
                    &mut stdout
                } else {
                    &mut stderr
                };
                parser.feed_write(payload, !more, shared);
                parser.flush_text(shared);
            }
            Tag::Display => {
                display.extend_from_slice(payload);
                while let Some(end) = display.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = display.drain(..=end).collect();
                    display_line(String::from_utf8_lossy(&line).trim_end(), CHANNEL, shared);
                }
            }
            Tag::Sentinel => {
                stdout.finish(shared);
                stderr.finish(shared);
                let line = payload.strip_suffix(b"\n").unwrap_or(payload);
                sentinel_arrived(shared, CHANNEL, sentinel_id(line).unwrap_or_default());
            }
            Tag::Hello => {}
        }
    }
    // The child is gone: whatever it wrote last is still shown.
    stdout.finish(shared);
    stderr.finish(shared);
}

/// Reads the hello line byte by byte (no buffering past it: what follows is the payload).
fn read_hello(stream: &mut UnixStream) -> Option<String> {
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while line.len() < 256 {
        stream.read_exact(&mut byte).ok()?;
        if byte[0] == b'\n' {
            stream.set_read_timeout(None).ok()?;
            return String::from_utf8(line).ok();
        }
        line.push(byte[0]);
    }
    None
}

fn serve_connection(mut stream: UnixStream, token: &str, shared: Arc<Shared>) {
    let Some(hello) = read_hello(&mut stream) else {
        return;
    };
    let Some((given, kind)) = hello.split_once(' ') else {
        return;
    };
    if !constant_time_eq(given.as_bytes(), token.as_bytes()) {
        eprintln!("kettle: rejected a runtime connection with a wrong token");
        return;
    }
    match kind {
        "control" => serve_control(stream, &shared),
        "stdout" => read_stream(stream, StreamName::Stdout, &shared),
        "stderr" => read_stream(stream, StreamName::Stderr, &shared),
        "display" => read_display(stream, &shared),
        "stdin" => {
            let mut cell = shared.cell();
            // Replacing the previous cell's connection closes it: readers left from that
            // cell see end of file rather than this cell's input.
            cell.stdin = Some(stream);
        }
        other => eprintln!("kettle: unknown runtime connection kind {other:?}"),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Records that stream `stream` delivered the sentinel of cell `id`.
fn sentinel_arrived(shared: &Shared, stream: usize, id: &str) {
    let mut cell = shared.cell();
    cell.last_sentinel[stream] = id.to_owned();
    shared.changed.notify_all();
}

impl CellState {
    fn all_streams_ended(&self, id: &str) -> bool {
        self.last_sentinel.iter().all(|seen| seen == id)
    }
}

/// The id inside a sentinel line (without its final newline), if it is one.
fn sentinel_id(line: &[u8]) -> Option<&str> {
    let end = &SENTINEL_END[..SENTINEL_END.len() - 1];
    std::str::from_utf8(line.strip_prefix(SENTINEL_START)?.strip_suffix(end)?).ok()
}

/// Whether output read now on `stream` is late: printed while the child runs no cell (by
/// threads an earlier cell left running), or after this stream already ended the cell.
fn is_late(shared: &Shared, stream: usize) -> bool {
    let cell = shared.cell();
    !(cell.child_running && cell.last_sentinel[stream] != cell.current)
}

fn serve_control(stream: UnixStream, shared: &Shared) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    for line in BufReader::new(stream).lines() {
        let Ok(line) = line else { break };
        if let Some(id) = line.strip_prefix(CELL_STARTED).map(str::trim) {
            let mut cell = shared.cell();
            cell.child_running = true;
            cell.current = id.to_owned();
            let mut go = match &cell.prelude_library {
                Some(path) => format!("{GO} {path}"),
                None => GO.to_owned(),
            };
            // Cell ids are `<child pid>-<n>`: a new pid is a new process, which needs the setup.
            let pid = id.split('-').next().unwrap_or_default().to_owned();
            if let Some(setup) = &cell.child_setup
                && cell.setup_pid != pid
            {
                go = format!("{SETUP} {setup}\n{go}");
                cell.setup_pid = pid;
            }
            shared.changed.notify_all();
            drop(cell);
            if writeln!(writer, "{go}").is_err() {
                break;
            }
        } else if let Some(rest) = line.strip_prefix(CELL_DONE) {
            let mut words = rest.split_whitespace();
            let id = words.next().unwrap_or_default();
            if words.any(|word| word == PRELUDE_FAILED) {
                let mut cell = shared.cell();
                // A broken file must not fail every later kernel too: the next one rebuilds it.
                if let Some(path) = cell.prelude_library.take() {
                    let _ = std::fs::remove_file(path);
                }
                cell.prelude_failed = true;
            }
            let deadline = Instant::now() + SENTINEL_TIMEOUT;
            let mut cell = shared.cell();
            while !cell.all_streams_ended(id) && Instant::now() < deadline {
                let wait = deadline.saturating_duration_since(Instant::now());
                cell = shared
                    .changed
                    .wait_timeout(cell, wait)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
            if !cell.all_streams_ended(id) {
                eprintln!(
                    "kettle: the end of cell {} did not come through all its streams",
                    cell.current
                );
            }
            cell.child_running = false;
            // The cell's input ends with the cell.
            cell.stdin = None;
            let mut reply = String::new();
            for line in cell.evcxr_lines.drain(..) {
                reply.push_str(&line);
                reply.push('\n');
            }
            reply.push_str(REPLY_END);
            reply.push('\n');
            drop(cell);
            if writer.write_all(reply.as_bytes()).is_err() {
                break;
            }
        }
    }
    // The child is gone: a cell it was running is over.
    let mut cell = shared.cell();
    cell.child_running = false;
    cell.stdin = None;
    shared.changed.notify_all();
}

/// Splits a stdout/stderr byte stream into user text and the lines meant for the kernel.
struct StreamParser {
    name: StreamName,
    /// Bytes not yet classified (an incomplete line that might be a marker).
    pending: Vec<u8>,
    /// User text waiting for the next flush.
    text: String,
    /// Inside an `EVCXR_BEGIN_CONTENT` block: its MIME type and lines so far.
    content: Option<(String, String)>,
    /// Blocks printed together, forming one display.
    bundle: MimeBundle,
    /// Where the bytes come from: [`STDOUT`], [`STDERR`] or [`CHANNEL`].
    index: usize,
}

impl StreamParser {
    /// A parser for the fd socket of `name`.
    fn new(name: StreamName) -> StreamParser {
        StreamParser::on(
            name,
            match name {
                StreamName::Stdout => STDOUT,
                StreamName::Stderr => STDERR,
            },
        )
    }

    /// A parser for `name`'s bytes arriving on sentinel stream `index`.
    fn on(name: StreamName, index: usize) -> StreamParser {
        StreamParser {
            name,
            pending: Vec::new(),
            text: String::new(),
            content: None,
            bundle: MimeBundle::new(),
            index,
        }
    }

    /// Feeds bytes read from a byte stream (a write may arrive in pieces); returns how many
    /// end-of-cell sentinels they contained.
    fn feed(&mut self, bytes: &[u8], shared: &Shared) -> u8 {
        self.feed_write(bytes, false, shared)
    }

    /// Feeds bytes; `write_complete` says they end one `write` of the cell (the channel knows).
    /// evcxr prints each marker line with one write, so a tail that merely *looks like* the
    /// start of a marker (`print!("ONE")` ends in `E`) cannot become one when its write is
    /// complete: it is shown now, before whatever the cell writes next to another stream.
    fn feed_write(&mut self, bytes: &[u8], write_complete: bool, shared: &Shared) -> u8 {
        self.pending.extend_from_slice(bytes);
        let mut sentinels = 0;
        while let Some(at) = find(&self.pending, SENTINEL_START) {
            let Some(len) = find(&self.pending[at..], SENTINEL_END) else {
                break; // the rest of the sentinel is still on its way
            };
            let end = at + len + SENTINEL_END.len();
            let sentinel: Vec<u8> = self.pending.drain(at..end).collect();
            let before: Vec<u8> = self.pending.drain(..at).collect();
            self.classify(&before, true, shared);
            self.end_of_cell(shared);
            let id = sentinel_id(&sentinel[..sentinel.len() - 1]).unwrap_or_default();
            sentinel_arrived(shared, self.index, id);
            sentinels += 1;
        }
        // Complete lines can be classified now; an incomplete tail is user text unless it could
        // still become a marker or a sentinel.
        let keep = held_back_len(&self.pending, write_complete);
        let ready: Vec<u8> = self.pending.drain(..self.pending.len() - keep).collect();
        self.classify(&ready, false, shared);
        sentinels
    }

    fn classify(&mut self, bytes: &[u8], complete: bool, shared: &Shared) {
        // Keep an incomplete UTF-8 sequence for the next read.
        let (valid, rest) = split_utf8(bytes, complete);
        if !rest.is_empty() {
            let mut tail = rest.to_vec();
            tail.extend_from_slice(&self.pending);
            self.pending = tail;
        }
        let text = String::from_utf8_lossy(valid).into_owned();
        for line in text.split_inclusive('\n') {
            self.line(line, shared);
        }
    }

    fn line(&mut self, line: &str, shared: &Shared) {
        let bare = line.trim_end_matches('\n');
        if let Some((mime, body)) = &mut self.content {
            if bare == END_CONTENT {
                let mime = std::mem::take(mime);
                let body = std::mem::take(body);
                self.content = None;
                if self.bundle.contains_key(&mime) {
                    self.flush_bundle(shared);
                }
                self.bundle.insert(mime.clone(), mime_value(&mime, body));
            } else {
                if !body.is_empty() {
                    body.push('\n');
                }
                body.push_str(bare);
            }
            return;
        }
        if self.name == StreamName::Stdout {
            if bare.starts_with(prelude::PANIC_MARKER) {
                let mut sink = shared.sink();
                sink.set_panic(prelude::parse_panic(bare));
                return;
            }
            if let Some(at) = bare.find(EVCXR_PREFIX) {
                let marker = &bare[at..];
                let is_marker = marker.starts_with(BEGIN_CONTENT)
                    || marker.starts_with(INPUT_REQUEST)
                    || EVCXR_BOOKKEEPING.iter().any(|m| marker.starts_with(m));
                if is_marker {
                    // Text printed before the marker on the same line (`print!("x")`) is kept.
                    self.text.push_str(&bare[..at]);
                    self.marker(marker, shared);
                    return;
                }
            }
        }
        if !self.bundle.is_empty() {
            self.flush_bundle(shared);
        }
        self.text.push_str(line);
    }

    fn marker(&mut self, marker: &str, shared: &Shared) {
        if let Some(mime) = marker.strip_prefix(BEGIN_CONTENT) {
            self.flush_text(shared);
            self.content = Some((mime.trim().to_owned(), String::new()));
        } else if let Some(rest) = marker.strip_prefix(INPUT_REQUEST) {
            let password = rest.starts_with("_PASSWORD");
            let prompt = rest.split_once(':').map_or("", |(_, p)| p).to_owned();
            self.flush_text(shared);
            let mut cell = shared.cell();
            cell.input_request = Some((prompt, password));
        } else {
            let mut cell = shared.cell();
            if marker == QUESTION_MARK_ERROR {
                cell.question_mark_error = true;
            }
            cell.evcxr_lines.push(marker.to_owned());
        }
    }

    fn flush_text(&mut self, shared: &Shared) {
        if !self.text.is_empty() {
            let text = std::mem::take(&mut self.text);
            let late = is_late(shared, self.index);
            shared.sink().stream(self.name, text, late);
        }
    }

    fn flush_bundle(&mut self, shared: &Shared) {
        self.flush_text(shared);
        let data = std::mem::take(&mut self.bundle);
        let late = is_late(shared, self.index);
        shared.sink().event(
            Event::Display {
                data,
                metadata: Default::default(),
                display_id: None,
                update: false,
            },
            late,
        );
    }

    /// Nothing more can complete a held-back tail (the cell or the child ended): it is
    /// classified as it stands, then the cell's output ends.
    fn finish(&mut self, shared: &Shared) {
        let rest = std::mem::take(&mut self.pending);
        self.classify(&rest, true, shared);
        self.end_of_cell(shared);
    }

    /// At the sentinel: everything of this cell is in; rich content printed last is held back
    /// for the engine, which decides whether it is the cell's value.
    fn end_of_cell(&mut self, shared: &Shared) {
        if let Some((mime, body)) = self.content.take() {
            // An unterminated block (the cell panicked inside it): show what there is.
            self.bundle.insert(mime.clone(), mime_value(&mime, body));
        }
        self.flush_text(shared);
        if !self.bundle.is_empty() {
            let bundle = std::mem::take(&mut self.bundle);
            shared.cell().trailing_bundle = Some(bundle);
        }
    }
}

/// JSON MIME types carry JSON values in a bundle, not strings.
pub(super) fn mime_value(mime: &str, text: String) -> Value {
    if (mime == "application/json" || mime.ends_with("+json"))
        && let Ok(value) = serde_json::from_str(&text)
    {
        return value;
    }
    Value::String(text)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// How many bytes at the end of `pending` must wait for more input: the unfinished last line
/// when it starts (or has, after user text) something that may grow into a marker, or, unless
/// `write_complete`, a prefix of a marker or of the sentinel.
fn held_back_len(pending: &[u8], write_complete: bool) -> usize {
    let line_start = pending
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let tail = &pending[line_start..];
    // A marker anywhere in the unfinished line: hold the line from the marker on.
    for pattern in [
        EVCXR_PREFIX.as_bytes(),
        prelude::PANIC_MARKER.as_bytes(),
        SENTINEL_START,
    ] {
        if let Some(at) = find(tail, pattern) {
            return tail.len() - at;
        }
    }
    if write_complete {
        return 0;
    }
    // The tail ends with the beginning of a marker or of the sentinel.
    let mut keep = 0;
    for pattern in [
        EVCXR_PREFIX.as_bytes(),
        prelude::PANIC_MARKER.as_bytes(),
        SENTINEL_START,
    ] {
        for len in (1..pattern.len()).rev() {
            if len <= tail.len() && tail.ends_with(&pattern[..len]) {
                keep = keep.max(len);
                break;
            }
        }
    }
    keep
}

/// Splits off an incomplete UTF-8 sequence at the end (unless the input is complete).
fn split_utf8(bytes: &[u8], complete: bool) -> (&[u8], &[u8]) {
    if complete {
        return (bytes, &[]);
    }
    match std::str::from_utf8(bytes) {
        Ok(_) => (bytes, &[]),
        Err(e) if e.error_len().is_none() => bytes.split_at(e.valid_up_to()),
        Err(_) => (bytes, &[]),
    }
}

fn read_stream(mut stream: UnixStream, name: StreamName, shared: &Shared) {
    let mut parser = StreamParser::new(name);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                // Into the sink's ordered queue at once: the publisher does the coalescing.
                parser.feed(&buf[..n], shared);
                parser.flush_text(shared);
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    // The child is gone: whatever it printed last is still shown.
    parser.finish(shared);
}

fn read_display(stream: UnixStream, shared: &Shared) {
    for line in BufReader::new(stream).lines() {
        let Ok(line) = line else { break };
        if let Some(id) = sentinel_id(line.as_bytes()) {
            sentinel_arrived(shared, DISPLAY, id);
            continue;
        }
        display_line(&line, DISPLAY, shared);
    }
}

/// One `kettle-display` line that arrived on sentinel stream `index`.
fn display_line(line: &str, index: usize, shared: &Shared) {
    if let Some(request) = input_op(line) {
        shared.cell().input_request = Some(request);
        return;
    }
    match display_event(line) {
        Some(event) => {
            let late = is_late(shared, index);
            shared.sink().event(event, late)
        }
        None => eprintln!("kettle: ignored a malformed display message"),
    }
}

/// An `{"op":"input",...}` line from `kettle_display::input`: the prompt and password flag.
fn input_op(line: &str) -> Option<(String, bool)> {
    let message: Value = serde_json::from_str(line).ok()?;
    if message.get("op")?.as_str()? != "input" {
        return None;
    }
    let prompt = message.get("prompt").and_then(Value::as_str).unwrap_or("");
    let password = message
        .get("password")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Some((prompt.to_owned(), password))
}

/// Decodes one `kettle-display` line (its crate docs define the format).
pub(super) fn display_event(line: &str) -> Option<Event> {
    let message: Value = serde_json::from_str(line).ok()?;
    let op = message.get("op")?.as_str()?;
    let object = |key: &str| {
        message
            .get(key)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    };
    let display_id = message
        .get("display_id")
        .and_then(Value::as_str)
        .map(str::to_owned);
    match op {
        "display" | "update" => Some(Event::Display {
            data: object("data"),
            metadata: object("metadata"),
            update: op == "update" && display_id.is_some(),
            display_id,
        }),
        "clear" => Some(Event::ClearOutput {
            wait: message
                .get("wait")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        }),
        _ => None,
    }
}

/// Bytes we wrote to the cell's stdin that it has not read yet (Linux `SIOCOUTQ`): while any
/// are left, a blocked read is not waiting for the frontend.
pub(super) fn unread_input(shared: &Shared) -> usize {
    use std::os::fd::AsRawFd;
    let cell = shared.cell();
    let Some(stdin) = cell.stdin.as_ref() else {
        return 0;
    };
    let mut queued: libc::c_int = 0;
    // SAFETY: TIOCOUTQ (SIOCOUTQ) writes one c_int through the pointer, which is valid.
    let rc = unsafe { libc::ioctl(stdin.as_raw_fd(), libc::TIOCOUTQ, &mut queued) };
    if rc < 0 { 0 } else { queued.max(0) as usize }
}

/// Answers a pending stdin read for the running cell: `Some(line)` sends the line,
/// `None` ends the cell's input (the read sees end of file).
pub(super) fn answer_stdin(shared: &Shared, answer: Option<String>) {
    // The cell's stdin connection is made just before the cell starts; wait for it briefly.
    let mut cell = shared.cell();
    for _ in 0..100 {
        if cell.stdin.is_some() || !cell.child_running {
            break;
        }
        drop(cell);
        std::thread::sleep(Duration::from_millis(10));
        cell = shared.cell();
    }
    let Some(stdin) = cell.stdin.as_mut() else {
        return;
    };
    match answer {
        Some(mut line) => {
            line.push('\n');
            let _ = stdin.write_all(line.as_bytes());
        }
        None => {
            let _ = stdin.shutdown(std::net::Shutdown::Write);
        }
    }
}

/// The socket path for tests that need one without a child.
#[cfg(test)]
pub(super) fn parser_for_tests(name: StreamName) -> impl FnMut(&[u8], &Shared) -> u8 {
    let mut parser = StreamParser::new(name);
    move |bytes, shared| {
        let n = parser.feed(bytes, shared);
        parser.flush_text(shared);
        shared.sink().publish_queued();
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::output::CellMsg;
    use crate::engine::runtime::sentinel;

    fn shared() -> (Shared, std::sync::mpsc::Receiver<CellMsg>) {
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = SharedSink::default();
        sink.lock().unwrap().open(tx);
        let shared = Shared {
            sink,
            cell: Mutex::new(CellState {
                current: "t-1".to_owned(),
                ..CellState::default()
            }),
            changed: Condvar::new(),
        };
        (shared, rx)
    }

    fn texts(rx: &std::sync::mpsc::Receiver<CellMsg>) -> String {
        rx.try_iter()
            .filter_map(|m| match m {
                CellMsg::Event(Event::Stream { text, .. }) => Some(text),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn partial_lines_are_published_before_the_newline() {
        let (shared, rx) = shared();
        let mut feed = parser_for_tests(StreamName::Stdout);
        feed(b"counting: 1", &shared);
        assert_eq!(texts(&rx), "counting: 1");
        feed(b" 2\n", &shared);
        assert_eq!(texts(&rx), " 2\n");
    }

    #[test]
    fn a_marker_after_partial_text_is_found_and_the_text_kept() {
        let (shared, rx) = shared();
        let mut feed = parser_for_tests(StreamName::Stdout);
        feed(b"xEVCXR_PANIC_NOTIFICATION\nafter\n", &shared);
        assert_eq!(texts(&rx), "xafter\n");
        assert_eq!(
            shared.cell().evcxr_lines,
            vec!["EVCXR_PANIC_NOTIFICATION".to_owned()]
        );
    }

    #[test]
    fn a_complete_write_ending_like_a_marker_is_shown_at_once() {
        let (shared, rx) = shared();
        let mut parser = StreamParser::on(StreamName::Stdout, CHANNEL);
        // From a byte stream, "ONE" might still grow into "EVCXR_...": held back.
        parser.feed(b"ONE", &shared);
        parser.flush_text(&shared);
        shared.sink().publish_queued();
        assert_eq!(texts(&rx), "ON");
        // From the channel, the write is known to be complete: shown whole.
        parser.feed_write(b"TWOE", true, &shared);
        parser.flush_text(&shared);
        shared.sink().publish_queued();
        assert_eq!(texts(&rx), "ETWOE");
        // A marker in a later write is still recognised.
        parser.feed_write(b"EVCXR_ERROR_OCCURRED\n", true, &shared);
        assert_eq!(
            shared.cell().evcxr_lines,
            vec!["EVCXR_ERROR_OCCURRED".to_owned()]
        );
    }

    #[test]
    fn a_marker_split_across_reads_is_not_shown_as_text() {
        let (shared, rx) = shared();
        let mut feed = parser_for_tests(StreamName::Stdout);
        feed(b"EVCX", &shared);
        feed(b"R_ERROR_OCCURRED\n", &shared);
        assert_eq!(texts(&rx), "");
        assert_eq!(
            shared.cell().evcxr_lines,
            vec!["EVCXR_ERROR_OCCURRED".to_owned()]
        );
        assert!(shared.cell().question_mark_error);
    }

    #[test]
    fn each_content_block_is_its_own_display_and_the_last_is_held_back() {
        let (shared, rx) = shared();
        let mut feed = parser_for_tests(StreamName::Stdout);
        let mut input = Vec::new();
        input.extend_from_slice(b"EVCXR_BEGIN_CONTENT text/html\n<b>1</b>\nEVCXR_END_CONTENT\n");
        input.extend_from_slice(b"EVCXR_BEGIN_CONTENT text/html\n<b>2</b>\nEVCXR_END_CONTENT\n");
        input.extend_from_slice(b"EVCXR_BEGIN_CONTENT text/plain\n3\nEVCXR_END_CONTENT\n");
        input.extend_from_slice(&sentinel("t-1"));
        assert_eq!(feed(&input, &shared), 1);
        let displays: Vec<MimeBundle> = rx
            .try_iter()
            .filter_map(|m| match m {
                CellMsg::Event(Event::Display { data, .. }) => Some(data),
                _ => None,
            })
            .collect();
        assert_eq!(displays.len(), 1);
        assert_eq!(displays[0]["text/html"], "<b>1</b>");
        let held = shared.cell().trailing_bundle.take().unwrap();
        assert_eq!(held["text/html"], "<b>2</b>");
        assert_eq!(held["text/plain"], "3");
    }

    #[test]
    fn a_sentinel_split_across_reads_is_found() {
        let (shared, rx) = shared();
        let mut feed = parser_for_tests(StreamName::Stderr);
        let end = sentinel("t-1");
        let (a, b) = end.split_at(5);
        assert_eq!(feed(&[b"warn\n".as_slice(), a].concat(), &shared), 0);
        assert_eq!(feed(b, &shared), 1);
        assert_eq!(texts(&rx), "warn\n");
    }

    #[test]
    fn a_cell_ends_when_every_stream_delivered_its_sentinel() {
        let (shared, _rx) = shared();
        let mut out = parser_for_tests(StreamName::Stdout);
        let mut err = parser_for_tests(StreamName::Stderr);
        out(&sentinel("t-0"), &shared);
        assert!(!shared.cell().all_streams_ended("t-1"));
        out(&sentinel("t-1"), &shared);
        err(&sentinel("t-1"), &shared);
        assert!(!shared.cell().all_streams_ended("t-1"));
        sentinel_arrived(&shared, DISPLAY, "t-1");
        assert!(!shared.cell().all_streams_ended("t-1"));
        sentinel_arrived(&shared, CHANNEL, "t-1");
        assert!(shared.cell().all_streams_ended("t-1"));
    }

    #[test]
    fn multibyte_characters_split_across_reads_survive() {
        let (shared, rx) = shared();
        let mut feed = parser_for_tests(StreamName::Stdout);
        let text = "°C🫖\n".as_bytes();
        feed(&text[..1], &shared);
        feed(&text[1..5], &shared);
        feed(&text[5..], &shared);
        assert_eq!(texts(&rx), "°C🫖\n");
    }

    #[test]
    fn display_lines_decode_to_events() {
        let event = display_event(
            r#"{"op":"update","data":{"text/plain":"7"},"metadata":{},"display_id":"d1"}"#,
        );
        match event {
            Some(Event::Display {
                data,
                display_id,
                update,
                ..
            }) => {
                assert_eq!(data["text/plain"], "7");
                assert_eq!(display_id.as_deref(), Some("d1"));
                assert!(update);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            display_event(r#"{"op":"clear","wait":true}"#),
            Some(Event::ClearOutput { wait: true })
        ));
        assert!(display_event("not json").is_none());
        assert_eq!(
            input_op(r#"{"op":"input","prompt":"Name: ","password":true}"#),
            Some(("Name: ".to_owned(), true))
        );
        assert!(display_event(r#"{"op":"launch"}"#).is_none());
    }
}
