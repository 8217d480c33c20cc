//! The engine actor: one thread owns evcxr's `CommandContext`; [`Engine`] sends it requests and
//! waits for answers on the caller's thread; [`Interrupter`] stops a running cell without
//! waiting for the actor.

use super::link::Link;
use super::output::{self, CellMsg, SharedSink};
use super::runtime::{SOCKET_ENV, TOKEN_ENV};
use super::stdin::{self, Watch};
use super::{
    Completions, Event, Inspection, MimeBundle, Outcome, StreamName, ahead, cell_cache, commands,
    course, network, offsets, prelude, report, value_display,
};
use evcxr::{CommandContext, EvalCallbacks, EvalContext};
use serde_json::{Map, Value};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// How to start the engine.
#[derive(Debug, Clone, Default)]
pub struct EngineConfig {
    /// rustc `-C opt-level` for cells; `None` keeps evcxr's default ("2": timings in the course
    /// are meant to be of optimised code).
    pub opt_level: Option<String>,
    /// Run once the engine is warm and has had nothing to do for [`IDLE_BEFORE_TASK`].
    pub on_idle: OnIdle,
}

/// Work for a quiet moment: set at any time, run at most once, on the engine's thread, after
/// rust-analyzer's warm-up and [`IDLE_BEFORE_TASK`] without requests (the kernel starts its
/// spare kernel this way, see [`crate::spare`], when it would not slow a running cell).
#[derive(Clone, Default)]
pub struct OnIdle(Arc<Mutex<Option<IdleTask>>>);

type IdleTask = Box<dyn FnOnce() + Send>;

impl OnIdle {
    /// Replaces what is to be done.
    pub fn set(&self, task: impl FnOnce() + Send + 'static) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(Box::new(task));
    }

    fn take(&self) -> Option<IdleTask> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

impl std::fmt::Debug for OnIdle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pending = self.0.lock().is_ok_and(|task| task.is_some());
        write!(f, "OnIdle {{ pending: {pending} }}")
    }
}

/// How long the engine must have been idle before it runs its [`OnIdle`] task.
const IDLE_BEFORE_TASK: Duration = Duration::from_secs(2);

enum Request {
    Execute {
        code: String,
        allow_stdin: bool,
        reply: Sender<CellMsg>,
    },
    Complete {
        code: String,
        cursor_pos: usize,
        reply: Sender<Completions>,
    },
    Inspect {
        code: String,
        cursor_pos: usize,
        reply: Sender<Inspection>,
    },
    Late(Sender<Event>),
    /// Add what the notebook declares (see [`ahead`]).
    ReadAhead(ahead::Declared),
    Shutdown,
}

/// How long cooperative code (polling `kettle_display::interrupted()`) gets to stop by itself
/// before the processes running the cell are killed.
const INTERRUPT_GRACE: Duration = Duration::from_millis(400);

/// State shared between the actor and [`Interrupter`]s.
struct Control {
    running: AtomicBool,
    interrupted: AtomicBool,
    /// Counts cells, so a late kill cannot hit the next one.
    cell: AtomicU64,
    /// Its existence asks cooperative code to stop.
    interrupt_file: PathBuf,
    /// The process running cells (changes when evcxr restarts it).
    child_pid: std::sync::atomic::AtomicU32,
    /// evcxr's context could not be created: every request gets the reason.
    failed: AtomicBool,
    link: Arc<super::link::Shared>,
    /// While crates read ahead from the notebook are being added: what they are.
    reading_ahead: Mutex<Option<ahead::ReadingAhead>>,
    /// How the last read-ahead ended, for the note of a cell that waited for it.
    read_ahead_outcome: Mutex<Option<String>>,
    /// Set by an interrupt while crates are read ahead (also one that came before the cell
    /// began to wait), cleared when they are: a cell waiting for them gives up.
    wait_interrupted: AtomicBool,
}

/// Handle to the engine actor. Methods block the calling thread until the answer.
pub struct Engine {
    requests: Sender<Request>,
    control: Arc<Control>,
    finished: Mutex<Receiver<()>>,
}

impl Engine {
    /// Starts the engine thread and returns at once; the evcxr context is created in the
    /// background and the first request waits for it.
    pub fn start(config: EngineConfig) -> anyhow::Result<Engine> {
        let (requests, inbox) = channel();
        let (finished_tx, finished) = channel();
        let sink = SharedSink::default();
        let link = Link::start(Arc::clone(&sink))?;
        output::spawn_publisher(Arc::clone(&sink))?;
        if let Err(error) = super::build_progress::capture_stderr(Arc::clone(&sink)) {
            eprintln!("kettle: no live build progress: {error}");
        }
        let control = Arc::new(Control {
            running: AtomicBool::new(false),
            interrupted: AtomicBool::new(false),
            cell: AtomicU64::new(0),
            interrupt_file: link.interrupt_file(),
            child_pid: std::sync::atomic::AtomicU32::new(0),
            failed: AtomicBool::new(false),
            link: Arc::clone(&link.shared),
            reading_ahead: Mutex::new(None),
            read_ahead_outcome: Mutex::new(None),
            wait_interrupted: AtomicBool::new(false),
        });
        let actor_control = Arc::clone(&control);
        std::thread::Builder::new()
            .name("kettle-engine".into())
            .spawn(move || {
                run_actor(config, inbox, actor_control, sink, link);
                let _ = finished_tx.send(());
            })?;
        // Warm the cached rustc version so kernel_info never waits for it.
        std::thread::spawn(|| {
            let _ = Engine::language_version();
        });
        Ok(Engine {
            requests,
            control,
            finished: Mutex::new(finished),
        })
    }

    /// Runs one cell. Events are delivered on the calling thread while the cell runs; all of a
    /// cell's output is delivered before this returns.
    pub fn execute(
        &self,
        code: &str,
        allow_stdin: bool,
        on_event: &mut dyn FnMut(Event),
    ) -> Outcome {
        if let Some(reading) = self.reading_ahead()
            && let Some(stopped) = self.wait_for_read_ahead(reading, on_event)
        {
            return stopped;
        }
        let (reply, answers) = channel();
        let request = Request::Execute {
            code: code.to_owned(),
            allow_stdin,
            reply,
        };
        if self.requests.send(request).is_ok() {
            for message in answers {
                match message {
                    CellMsg::Event(event) => on_event(event),
                    CellMsg::Done(outcome) => return outcome,
                }
            }
        }
        engine_gone()
    }

    /// Waits, showing a note, until the crates read ahead from the notebook are added: the cell
    /// is sent after them. `Some(outcome)` when an interrupt came meanwhile: the cell does not
    /// run (the crates' build, if it was building, is stopped).
    fn wait_for_read_ahead(
        &self,
        reading: ahead::ReadingAhead,
        on_event: &mut dyn FnMut(Event),
    ) -> Option<Outcome> {
        let note = ahead::WaitNote::show(reading, on_event);
        let mut shown = std::time::Instant::now();
        loop {
            std::thread::sleep(ahead::WAIT_POLL);
            let Some(reading) = self.reading_ahead() else {
                let outcome = lock(&self.control.read_ahead_outcome).clone();
                note.end(outcome.as_deref().unwrap_or("stopped"), on_event);
                return None;
            };
            if self.control.wait_interrupted.swap(false, Ordering::SeqCst) {
                note.end("stopped waiting (interrupted)", on_event);
                let r = report::other(
                    "Interrupted",
                    "the cell was interrupted while the crates its notebook declares were being \
                     added; it did not run"
                        .to_owned(),
                );
                return Some(outcome_of(r));
            }
            if shown.elapsed() >= ahead::WaitNote::TICK {
                note.tick(&reading, on_event);
                shown = std::time::Instant::now();
            }
        }
    }

    /// Adds the crates that the notebook this kernel was started for declares (see [`ahead`]),
    /// before any cell: `session_name` is [`ahead::NOTEBOOK_ENV`] as Jupyter Server set it,
    /// `cwd` the notebook's directory. Cells sent meanwhile wait, and say so. Nothing is read
    /// ahead when the learner decided about cargo's network use (see [`network`]). The notebook
    /// is read here, before the kernel answers anyone: a cell sent at once must find the
    /// crates' request queued before it (0.2 ms for notebook 01, 100 KB with its outputs,
    /// which are skipped).
    pub fn read_ahead(&self, session_name: Option<&std::ffi::OsStr>, cwd: &std::path::Path) {
        let Some(path) = session_name.and_then(|name| ahead::notebook_path(name, cwd)) else {
            return;
        };
        if network_chosen_elsewhere(Some(cwd)) {
            return;
        }
        let Ok(json) = std::fs::read_to_string(&path) else {
            return;
        };
        let declared = ahead::declared(&json);
        if declared.is_empty() {
            return;
        }
        *lock(&self.control.reading_ahead) = Some(ahead::ReadingAhead {
            what: declared.describe(),
            build: None,
        });
        let _ = self.requests.send(Request::ReadAhead(declared));
    }

    fn reading_ahead(&self) -> Option<ahead::ReadingAhead> {
        lock(&self.control.reading_ahead).clone()
    }

    /// Whether the shell must not wait for the engine: it is adding crates read ahead, which can
    /// take a build's time, and the shell waits for completions and inspections (answered
    /// with nothing meanwhile).
    fn busy_reading_ahead(&self) -> bool {
        lock(&self.control.reading_ahead).is_some()
    }

    /// Completions at `cursor_pos` (code points).
    pub fn complete(&self, code: &str, cursor_pos: usize) -> Completions {
        let (reply, answer) = channel();
        let request = Request::Complete {
            code: code.to_owned(),
            cursor_pos,
            reply,
        };
        if !self.busy_reading_ahead()
            && self.requests.send(request).is_ok()
            && let Ok(completions) = answer.recv()
        {
            return completions;
        }
        Completions {
            matches: vec![],
            cursor_start: cursor_pos,
            cursor_end: cursor_pos,
        }
    }

    /// Hover information at `cursor_pos` (code points).
    pub fn inspect(&self, code: &str, cursor_pos: usize, _detail_level: u8) -> Inspection {
        let (reply, answer) = channel();
        let request = Request::Inspect {
            code: code.to_owned(),
            cursor_pos,
            reply,
        };
        if !self.busy_reading_ahead() && self.requests.send(request).is_ok() {
            return answer.recv().ok().flatten();
        }
        None
    }

    /// Output that arrives while no cell runs (threads a cell left running). Call once, before
    /// the first execute; publish what arrives with the parent header of the last cell.
    pub fn late_output(&self) -> Receiver<Event> {
        let (late, receiver) = channel();
        let _ = self.requests.send(Request::Late(late));
        receiver
    }

    /// From the next cell on, cells run in `cwd` with the environment changed by `set` and
    /// `unset`, also in every process that later replaces a crashed one. For a spare kernel
    /// ([`crate::spare`]): its process running cells was started before the kernel knew the
    /// directory and environment Jupyter gave it.
    pub fn adopt_environment(
        &self,
        cwd: &std::path::Path,
        set: &[(String, String)],
        unset: &[String],
    ) {
        let setup = serde_json::json!({ "cwd": cwd, "set": set, "unset": unset });
        self.control.link.cell().child_setup = Some(setup.to_string());
    }

    /// Waits until evcxr's context is up and rust-analyzer has indexed std (what an idle engine
    /// does by itself, see `Actor::warm_analysis`).
    pub fn prepare(&self) {
        self.complete(WARM_UP_CODE, WARM_UP_CODE.chars().count());
    }

    /// Whether evcxr's context is up, as far as is known: false once its creation failed.
    /// (Any request waits for the creation; after one returned, this is the outcome.)
    pub fn is_ready(&self) -> bool {
        !self.control.failed.load(Ordering::SeqCst)
    }

    /// A handle that stops the running cell; never waits for the engine.
    pub fn interrupter(&self) -> Interrupter {
        Interrupter {
            control: Arc::clone(&self.control),
        }
    }

    /// Stops the engine and kills the process running user code (and anything it started).
    /// Waits at most a few seconds for the engine thread.
    pub fn shutdown(&self) {
        self.control.interrupted.store(true, Ordering::SeqCst);
        kill_descendants();
        let _ = self.requests.send(Request::Shutdown);
        if let Ok(finished) = self.finished.lock() {
            let _ = finished.recv_timeout(Duration::from_secs(5));
        }
        kill_descendants();
    }

    /// `rustc --version`'s version number (e.g. "1.95.0"), cached; cheap after the first call.
    pub fn language_version() -> String {
        static VERSION: OnceLock<String> = OnceLock::new();
        VERSION
            .get_or_init(|| {
                std::process::Command::new("rustc")
                    .arg("--version")
                    .output()
                    .ok()
                    .and_then(|out| {
                        let text = String::from_utf8_lossy(&out.stdout).into_owned();
                        text.split_whitespace().nth(1).map(str::to_owned)
                    })
                    .unwrap_or_else(|| "unknown".to_owned())
            })
            .clone()
    }
}

/// Stops the running cell from another thread.
#[derive(Clone)]
pub struct Interrupter {
    control: Arc<Control>,
}

impl Interrupter {
    /// Interrupts the running cell, if any. Returns at once: the processes running the cell
    /// (and the compiler, when the cell is still being built) are killed from a helper thread.
    pub fn interrupt(&self) {
        let control = &self.control;
        if lock(&control.reading_ahead).is_some() {
            control.wait_interrupted.store(true, Ordering::SeqCst);
        }
        if !control.running.load(Ordering::SeqCst) {
            return;
        }
        control.interrupted.store(true, Ordering::SeqCst);
        let _ = std::fs::File::create(&control.interrupt_file);
        let cell = control.cell.load(Ordering::SeqCst);
        let control = Arc::clone(control);
        std::thread::spawn(move || {
            let still_running = || {
                control.running.load(Ordering::SeqCst)
                    && control.cell.load(Ordering::SeqCst) == cell
            };
            // Running user code gets a moment to notice the flag; a build has nothing to save,
            // and stopping it must not cost the variables the child holds.
            if control.link.cell().child_running {
                let deadline = std::time::Instant::now() + INTERRUPT_GRACE;
                while still_running() && std::time::Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(10));
                }
                if still_running() {
                    kill_descendants();
                }
            } else if still_running() {
                kill_descendants_sparing(Some(control.child_pid.load(Ordering::SeqCst)));
            }
        });
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// Ends a read-ahead (as far as waiting cells can tell) when dropped.
struct StopsReadingAhead(Arc<Control>);

impl StopsReadingAhead {
    fn stop(control: &Control) {
        *lock(&control.reading_ahead) = None;
        control.wait_interrupted.store(false, Ordering::SeqCst);
    }
}

impl Drop for StopsReadingAhead {
    fn drop(&mut self) {
        StopsReadingAhead::stop(&self.0);
    }
}

/// Whether the learner decided when cargo may use the network (see [`network`]), for a kernel
/// working in `cwd`.
fn network_chosen_elsewhere(cwd: Option<&std::path::Path>) -> bool {
    network::chosen_elsewhere(
        std::env::var_os("CARGO_NET_OFFLINE").as_deref(),
        cwd,
        evcxr::config_dir().as_deref(),
    )
}

fn engine_gone() -> Outcome {
    let r = report::other(
        "EngineStopped",
        "the evaluation engine is not running (see the kernel log)".to_owned(),
    );
    Outcome::Error {
        ename: r.ename,
        evalue: r.evalue,
        traceback: r.traceback,
    }
}

fn outcome_of(r: report::Report) -> Outcome {
    Outcome::Error {
        ename: r.ename,
        evalue: r.evalue,
        traceback: r.traceback,
    }
}

/// Kills every process below the kernel: the child running cells, cargo and rustc while a cell
/// builds, and whatever user code started. Killing the whole tree matters: a grandchild that
/// keeps the child's pipes open would otherwise keep evcxr waiting for them to close.
fn kill_descendants() {
    kill_descendants_sparing(None);
}

/// Like [`kill_descendants`], but leaves `spare` and its descendants alone: while a cell is
/// still compiling, the child running cells holds the variables of earlier cells and has done
/// nothing wrong; only cargo and rustc need to stop.
fn kill_descendants_sparing(spare: Option<u32>) {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    let mut parent_of = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the command name, which is in parentheses and may contain spaces.
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        if let Some(ppid) = after
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u32>().ok())
        {
            parent_of.push((pid, ppid));
        }
    }
    let mut tree = vec![me];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(
            parent_of
                .iter()
                .filter(|(c, p)| *p == parent && Some(*c) != spare)
                .map(|(c, _)| *c),
        );
        i += 1;
    }
    for pid in tree.into_iter().skip(1) {
        // SAFETY: kill(2) has no memory-safety preconditions; a pid that exited meanwhile is
        // at worst reported as ESRCH.
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGKILL);
        }
    }
}

struct Actor {
    ctx: CommandContext,
    sink: SharedSink,
    control: Arc<Control>,
    link: Link,
    watch: Arc<Watch>,
    /// Whether evcxr runs cells inside a tokio runtime (it switches after the first cell that
    /// uses `.await`).
    async_mode: bool,
    /// The child loads the prelude as a library (see [`prelude::library`]), not as a cell.
    prelude_in_library: bool,
    /// Whether to keep [`value_display::ITEMS`] defined (off after `:fmt` or `:types`).
    value_display: bool,
    /// evcxr's crate directory, where the value display's module lives and cargo builds.
    crate_dir: Option<PathBuf>,
    /// Whether the engine decides when cargo may use the network (see [`network`]); off once
    /// the learner uses `:offline`.
    offline_first: bool,
}

fn run_actor(
    config: EngineConfig,
    inbox: Receiver<Request>,
    control: Arc<Control>,
    sink: SharedSink,
    link: Link,
) {
    let status = Arc::clone(&control);
    // However this thread ends, a cell waiting for crates read ahead must not wait forever.
    let _done_reading = StopsReadingAhead(Arc::clone(&control));
    let mut actor = match Actor::create(&config, sink, control, link) {
        Ok(actor) => actor,
        Err(message) => {
            status.failed.store(true, Ordering::SeqCst);
            *lock(&status.read_ahead_outcome) = Some("the engine did not start".to_owned());
            StopsReadingAhead::stop(&status);
            eprintln!("kettle: the evaluation engine failed to start: {message}");
            serve_failed(&message, inbox);
            return;
        }
    };
    if network_chosen_elsewhere(std::env::current_dir().ok().as_deref()) {
        actor.offline_first = false;
    } else {
        actor.set_offline(true);
    }
    actor.use_cell_cache();
    actor.run_prelude();
    // Before the first cell rather than when idle: "Run All" sends every cell at once, and the
    // engine would not be idle until it ends. ~0.1 s once; each value cell then saves a compile.
    actor.ensure_value_display();
    // rust-analyzer has not indexed std (or the dependencies) yet: see `Actor::warm_analysis`.
    let mut analysis_cold = true;
    loop {
        let request = if analysis_cold {
            match inbox.recv_timeout(IDLE_BEFORE_WARM_UP) {
                Ok(request) => request,
                Err(RecvTimeoutError::Timeout) => {
                    actor.ensure_value_display();
                    actor.warm_analysis();
                    analysis_cold = false;
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        } else {
            match inbox.recv_timeout(IDLE_BEFORE_TASK) {
                Ok(request) => request,
                Err(RecvTimeoutError::Timeout) => {
                    // Again after `:clear`, which drops all items.
                    actor.ensure_value_display();
                    if let Some(task) = config.on_idle.take() {
                        task();
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        };
        match request {
            Request::Execute {
                code,
                allow_stdin,
                reply,
            } => {
                analysis_cold |= changes_dependencies(&code);
                actor.execute(&code, allow_stdin, reply)
            }
            Request::Complete {
                code,
                cursor_pos,
                reply,
            } => {
                let _ = reply.send(actor.complete(&code, cursor_pos));
            }
            Request::Inspect {
                code,
                cursor_pos,
                reply,
            } => {
                let _ = reply.send(actor.inspect(&code, cursor_pos));
            }
            Request::Late(late) => actor.lock_sink().set_late(late),
            Request::ReadAhead(declared) => {
                if let (Some(reading), Some(dir)) = (
                    lock(&actor.control.reading_ahead).as_mut(),
                    &actor.crate_dir,
                ) {
                    let since = std::time::SystemTime::now() - output::CLOCK_SLACK;
                    reading.build = Some((dir.join("target"), since));
                }
                let outcome = actor.read_ahead(&declared);
                // rust-analyzer indexes std and the new crates now, while cells wait anyway: the
                // first cell defining a variable would pay for it (measured with the crates of
                // notebook 03: 2.5 s here, and that first `let` then takes 0.4 s instead of 2.6).
                analysis_cold = actor.control.interrupted.load(Ordering::SeqCst);
                if !analysis_cold {
                    actor.warm_analysis();
                }
                *lock(&actor.control.read_ahead_outcome) = Some(outcome);
                StopsReadingAhead::stop(&actor.control);
            }
            Request::Shutdown => break,
        }
    }
    kill_descendants();
}

/// The directory evcxr builds the cells' crate in: a kettle work slot (`EVCXR_TMPDIR`), or
/// where an `evcxr.toml` says, or evcxr's own temporary directory. Asked of evcxr, which knows.
fn compile_dir(ctx: &mut CommandContext) -> Option<PathBuf> {
    let outputs = ctx.execute(":last_compile_dir").ok()?;
    let dir = outputs.content_by_mime_type.get("text/plain")?.trim();
    (!dir.is_empty()).then(|| PathBuf::from(dir))
}

/// A new display of `data`, not meant to be updated.
fn display_event(data: MimeBundle) -> Event {
    Event::Display {
        data,
        metadata: Map::new(),
        display_id: None,
        update: false,
    }
}

/// A completion request that makes rust-analyzer index std and the dependencies.
const WARM_UP_CODE: &str = "let kettle_warm_up = vec![1u8]; kettle_warm_up.l";

/// How long the engine waits for a request before it warms rust-analyzer up.
const IDLE_BEFORE_WARM_UP: Duration = Duration::from_millis(200);

/// Whether a cell adds dependencies (`:dep`, `:course`): rust-analyzer then has new crates
/// to index.
fn changes_dependencies(code: &str) -> bool {
    commands::mentioned(code, &[":dep", course::COMMAND])
}

/// Answers every request with the reason the engine could not start.
fn serve_failed(message: &str, inbox: Receiver<Request>) {
    for request in inbox {
        match request {
            Request::Execute { reply, .. } => {
                let r = report::other("EngineFailed", message.to_owned());
                let _ = reply.send(CellMsg::Done(outcome_of(r)));
            }
            Request::Complete {
                cursor_pos, reply, ..
            } => {
                let _ = reply.send(Completions {
                    matches: vec![],
                    cursor_start: cursor_pos,
                    cursor_end: cursor_pos,
                });
            }
            Request::Inspect { reply, .. } => {
                let _ = reply.send(None);
            }
            Request::Late(_) | Request::ReadAhead(_) => {}
            Request::Shutdown => break,
        }
    }
}

impl Actor {
    fn create(
        config: &EngineConfig,
        sink: SharedSink,
        control: Arc<Control>,
        link: Link,
    ) -> Result<Actor, String> {
        let exe =
            std::env::current_exe().map_err(|e| format!("cannot find our own executable: {e}"))?;
        let mut child = std::process::Command::new(exe);
        // evcxr keeps this Command and reuses it when it restarts the child after a crash, so
        // every child finds its way back to the same socket.
        if let Some(lib_dir) = rust_std_dir() {
            // Cell libraries find the shared std through a RUNPATH that rustc computed for
            // `deps/`, but evcxr loads them from one directory up: the relative path is then one
            // `..` short, which only works when the ascent reaches `/` anyway (a work directory
            // under /tmp). Our persistent work directory is not, so say where std is.
            let mut path = std::ffi::OsString::from(lib_dir);
            if let Some(existing) = std::env::var_os("LD_LIBRARY_PATH") {
                path.push(":");
                path.push(existing);
            }
            child.env("LD_LIBRARY_PATH", path);
        }
        child
            .env(SOCKET_ENV, &link.socket)
            .env(TOKEN_ENV, &link.token)
            .env("KETTLE_INTERRUPT_FILE", link.interrupt_file());
        // Built (or found) while evcxr starts, which takes seconds.
        let prelude_build = std::thread::Builder::new()
            .name("kettle-prelude-build".into())
            .spawn(prelude::library);
        let (mut eval, outputs) =
            EvalContext::with_subprocess_command(child).map_err(|e| e.to_string())?;
        let prelude_library = prelude_build.ok().and_then(|b| b.join().ok().flatten());
        link.shared.cell().prelude_library = prelude_library
            .as_ref()
            .map(|path| path.to_string_lossy().into_owned());
        if let Some(level) = &config.opt_level {
            eval.set_opt_level(level).map_err(|e| e.to_string())?;
        }
        output::spawn_pump(StreamName::Stdout, outputs.stdout, Arc::clone(&sink));
        output::spawn_pump(StreamName::Stderr, outputs.stderr, Arc::clone(&sink));
        let watch = Arc::new(Watch::default());
        stdin::spawn_watcher(Arc::clone(&link.shared), Arc::clone(&watch))
            .map_err(|e| format!("cannot start the stdin watcher: {e}"))?;
        let mut ctx = CommandContext::with_eval_context(eval);
        Ok(Actor {
            prelude_in_library: prelude_library.is_some(),
            // KETTLE_VALUE_DISPLAY=0: always evcxr's own two-step way (see value_display).
            value_display: std::env::var_os("KETTLE_VALUE_DISPLAY").is_none_or(|v| v != "0"),
            crate_dir: compile_dir(&mut ctx),
            ctx,
            sink,
            control,
            link,
            watch,
            async_mode: false,
            offline_first: true,
        })
    }

    fn lock_sink(&self) -> std::sync::MutexGuard<'_, output::Sink> {
        self.sink.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Installs the panic hook and the flusher in the (new) child process. Its output, if any,
    /// goes where output between cells goes: it is not part of any cell. With the prelude
    /// library there is nothing to do: the child loads it before its next cell.
    fn run_prelude(&mut self) {
        if self.prelude_in_library {
            return;
        }
        if let Err(error) = self.execute_hidden(&prelude::cell()) {
            eprintln!("kettle: the prelude failed: {error}");
        }
    }

    /// Evaluates code of the engine's own, not a cell of the user's: whatever it printed goes
    /// where output between cells goes, and it has no value.
    fn execute_hidden(&mut self, code: &str) -> Result<(), String> {
        let result = self.ctx.execute(code).map(drop).map_err(|e| e.to_string());
        self.lock_sink().close();
        self.link.shared.cell().trailing_bundle = None;
        result
    }

    fn value_display_defined(&self) -> bool {
        self.ctx
            .defined_item_names()
            .any(|name| name == value_display::MODULE)
    }

    /// Defines [`value_display::ITEMS`] unless they are there or turned off.
    fn ensure_value_display(&mut self) {
        let Some(dir) = self.crate_dir.clone().filter(|_| self.value_display) else {
            return;
        };
        if let Err(error) = value_display::write_source(&dir, true) {
            eprintln!("kettle: values are shown the slow way: {error}");
            self.value_display = false;
            return;
        }
        if !self.value_display_defined()
            && let Err(error) = self.execute_hidden(value_display::ITEMS)
        {
            eprintln!("kettle: values are shown the slow way: {error}");
            self.value_display = false;
        }
    }

    /// Keeps the module's file in place (every cell needs it once it is defined), turned off
    /// after `:fmt` or `:types` (see [`value_display`]).
    fn keep_value_display_file(&self) {
        if let Some(dir) = &self.crate_dir
            && self.value_display_defined()
            && let Err(error) = value_display::write_source(dir, self.value_display)
        {
            eprintln!("kettle: cannot write {}: {error}", value_display::MODULE);
        }
    }

    /// Makes rust-analyzer index std and the notebook's dependencies now, while nobody waits.
    /// evcxr asks it for the type of each variable a cell defines; the first such question after
    /// start-up, or after new dependencies, costs ~1.7 s here (the first `let` of a notebook),
    /// and ~0.3 s once warm. A completion request builds the same indexes. Run only when the
    /// engine has been idle for [`IDLE_BEFORE_WARM_UP`]: a cell that arrives meanwhile waits
    /// for the rest of it, and would otherwise have paid for it anyway if it defines a variable.
    fn warm_analysis(&mut self) {
        let _ = self.ctx.completions(WARM_UP_CODE, WARM_UP_CODE.len());
    }

    /// Adds the crates a notebook declares (see [`ahead`]): all at once, or else each alone (one
    /// crate missing from the cache makes evcxr take none). Quietly: a crate that cannot be
    /// added now is left for its cell, which says why. Interrupt stops it like a cell's build.
    /// Returns how it went, for the note of a cell that waited.
    fn read_ahead(&mut self, declared: &ahead::Declared) -> String {
        if !self.offline_first {
            // The learner decides when cargo goes online: nothing is fetched behind their back.
            return "added nothing: cargo's network use is set elsewhere".to_owned();
        }
        let started = std::time::Instant::now();
        self.control.cell.fetch_add(1, Ordering::SeqCst);
        self.control.interrupted.store(false, Ordering::SeqCst);
        self.control
            .child_pid
            .store(self.child_pid(), Ordering::SeqCst);
        self.control.running.store(true, Ordering::SeqCst);
        let crates_dir = course::crates_dir();
        let stopped = |actor: &Actor| actor.control.interrupted.load(Ordering::SeqCst);
        let (mut added, mut left) = (Vec::new(), Vec::new());
        if self.execute_hidden(&declared.commands(&crates_dir)).is_ok() {
            added.push(declared.describe());
        } else {
            for part in declared.parts() {
                if !stopped(self) && self.execute_hidden(&part.commands(&crates_dir)).is_ok() {
                    added.push(part.describe());
                } else {
                    left.push(part.describe());
                }
            }
        }
        self.control.running.store(false, Ordering::SeqCst);
        let _ = std::fs::remove_file(&self.control.interrupt_file);
        let mut outcome = if added.is_empty() {
            "added none of the crates this notebook declares".to_owned()
        } else {
            format!(
                "added the crates this notebook declares: {}",
                added.join(", ")
            )
        };
        if stopped(self) {
            outcome.push_str(" (interrupted)");
        }
        if !left.is_empty() {
            // Missing from the cache, most likely: their cells will say.
            outcome.push_str(&format!("; left for their cells: {}", left.join(", ")));
        }
        eprintln!(
            "kettle: read ahead from the notebook: {outcome} ({:.1} s)",
            started.elapsed().as_secs_f64()
        );
        outcome
    }

    fn child_pid(&self) -> u32 {
        let handle = self.ctx.process_handle();
        let child = handle.lock().unwrap_or_else(|p| p.into_inner());
        child.id()
    }

    fn execute(&mut self, code: &str, allow_stdin: bool, reply: Sender<CellMsg>) {
        if commands::mentioned(code, &[":quit"]) {
            // evcxr would end this process on the spot, with no reply: Jupyter would see a
            // crashed kernel. The frontend's own commands do it properly.
            let r = report::other(
                "Unsupported",
                "`:quit` would end the kernel without a reply; use Kernel > Shut Down (or \
                 Restart) instead"
                    .to_owned(),
            );
            let _ = reply.send(CellMsg::Done(outcome_of(r)));
            return;
        }
        self.keep_value_display_file();
        self.control.cell.fetch_add(1, Ordering::SeqCst);
        self.control.interrupted.store(false, Ordering::SeqCst);
        let _ = std::fs::remove_file(&self.control.interrupt_file);
        self.control.running.store(true, Ordering::SeqCst);
        let variables_before: Vec<String> = self
            .ctx
            .variables_and_types()
            .map(|(name, _)| name.to_owned())
            .collect();
        if self.async_mode && prelude::spawns_tokio_tasks(code) {
            // Before the cell's output is routed: this step's own output is not the cell's.
            let _ = self.execute_hidden(prelude::FRESH_TOKIO_RUNTIME);
        }
        {
            let mut cell = self.link.shared.cell();
            cell.trailing_bundle = None;
            cell.question_mark_error = false;
        }
        {
            let target = self.crate_dir.as_ref().map(|dir| dir.join("target"));
            let last_cell_compile = target
                .as_deref()
                .and_then(super::build_progress::cell_invoked);
            let mut sink = self.lock_sink();
            sink.open(reply.clone());
            if let Some(target) = target {
                sink.watch_builds(target, last_cell_compile);
            }
        }
        let child_pid = self.child_pid();
        self.watch.child_pid.store(child_pid, Ordering::SeqCst);
        self.control.child_pid.store(child_pid, Ordering::SeqCst);
        self.watch.allow_stdin.store(allow_stdin, Ordering::SeqCst);
        self.watch.active.store(true, Ordering::SeqCst);

        // Input requests reach us through the stdin watcher, not evcxr's callback: with our
        // runtime evcxr never sees an input line. Answer anything that does arrive with EOF.
        let mut callbacks = EvalCallbacks {
            input_reader: &|_request| String::new(),
        };
        if let Some(offline) = network::chosen_by(code) {
            // Before the cell: its own `:dep` lines may need the new mode (see `network`).
            self.set_offline(offline);
            self.offline_first = false;
        }
        let adds_dependencies = changes_dependencies(code);
        let (wants_course, code) = course::take_command(code);
        let code = code.as_str();
        let mut result = self.run_cell(wants_course, code, &mut callbacks);
        if self.offline_first
            && adds_dependencies
            && !self.control.interrupted.load(Ordering::SeqCst)
            && matches!(&result, Err(error) if network::needs_network(error))
        {
            self.lock_sink()
                .stream(StreamName::Stderr, network::GOING_ONLINE.to_owned(), false);
            self.set_offline(false);
            result = self.run_cell(wants_course, code, &mut callbacks);
            self.set_offline(true);
        }

        self.watch.active.store(false, Ordering::SeqCst);
        let (trailing, question_mark_error, prelude_failed) = {
            let mut cell = self.link.shared.cell();
            let question_mark = std::mem::take(&mut cell.question_mark_error);
            let prelude_failed = std::mem::take(&mut cell.prelude_failed);
            (cell.trailing_bundle.take(), question_mark, prelude_failed)
        };
        let interrupted = self.control.interrupted.load(Ordering::SeqCst);
        if matches!(result, Err(evcxr::Error::SubprocessTerminated(_))) {
            // The dead child's last output may still be in flight on its sockets.
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut value = match (&result, trailing) {
            (Ok(_), Some(bundle)) => self.value_or_display(code, bundle),
            _ => None,
        };
        if let Ok(outputs) = &result {
            value = self.show_command_output(outputs, value);
        }
        let panic = self.lock_sink().close();
        self.control.running.store(false, Ordering::SeqCst);
        let _ = std::fs::remove_file(&self.control.interrupt_file);

        let mut restarted = false;
        let outcome = match result {
            Ok(_) if interrupted => outcome_of(report::interrupted_cooperatively()),
            Ok(_) => match panic {
                Some(p) => {
                    // The crate evcxr built for this cell, to find the panicking line in it.
                    let generated = self.ctx.last_source().ok();
                    outcome_of(report::panic(
                        &p.thread,
                        &p.location,
                        &p.message,
                        generated.as_deref(),
                        code,
                    ))
                }
                None if question_mark_error => outcome_of(report::other(
                    "Error",
                    "the cell stopped at `?` with the error shown above".to_owned(),
                )),
                None => Outcome::Ok { result: value },
            },
            Err(evcxr::Error::CompilationErrors(errors)) if !interrupted => {
                outcome_of(report::compile_errors(&errors, code))
            }
            Err(evcxr::Error::SubprocessTerminated(detail)) => {
                restarted = true;
                outcome_of(report::process_died(
                    interrupted,
                    &detail,
                    &variables_before,
                ))
            }
            Err(evcxr::Error::TypeRedefinedVariablesLost(names)) => outcome_of(report::other(
                "VariablesLost",
                format!(
                    "the type of {} changed, so the old value was dropped",
                    names.join(", ")
                ),
            )),
            Err(_) if interrupted => outcome_of(report::process_died(true, "", &[])),
            Err(error) => outcome_of(report::other("Error", error.to_string())),
        };
        if code.contains(".await") && matches!(outcome, Outcome::Ok { .. }) {
            self.async_mode = true;
        }
        let _ = reply.send(CellMsg::Done(outcome));
        if prelude_failed {
            // The child said so, and printed why with the cell: use the cell form from now on.
            self.prelude_in_library = false;
        }
        if restarted || prelude_failed {
            // The child was replaced (its panic hook and flusher are gone), or never had them.
            self.run_prelude();
        }
        if value_display::changes_formatting(code) {
            self.value_display = false;
            // Before the next cell, which may show a value.
            self.keep_value_display_file();
        }
    }

    /// Runs a cell's code, after the course's `:dep` commands when it asked for them.
    fn run_cell(
        &mut self,
        wants_course: bool,
        code: &str,
        callbacks: &mut EvalCallbacks,
    ) -> Result<evcxr::EvalOutputs, evcxr::Error> {
        if wants_course {
            self.ctx
                .execute(&course::dep_commands(&course::crates_dir()))?;
        }
        self.ctx.execute_with_callbacks(code, callbacks)
    }

    /// Makes cargo compile cells through [`cell_cache`], unless it is turned off. evcxr
    /// commands only: nothing is compiled here.
    fn use_cell_cache(&mut self) {
        let Some((dir, limit)) = cell_cache::settings() else {
            return;
        };
        // Our executable as this process runs it: the link stays valid while the kernel lives,
        // even when a rebuild or reinstall replaces or removes the file at its path meanwhile
        // (cargo could not run the wrapper, and no cell would compile).
        let exe = std::path::PathBuf::from(format!("/proc/{}/exe", std::process::id()));
        let exe = if exe.exists() {
            exe
        } else {
            match std::env::current_exe() {
                Ok(exe) => exe,
                Err(_) => return,
            }
        };
        if let Err(error) = self.ctx.execute(&cell_cache::commands(&exe, &dir, limit)) {
            eprintln!("kettle: cells will not be kept compiled: {error}");
        }
    }

    /// Switches cargo's network use (see [`network`]); a command, so nothing is compiled.
    fn set_offline(&mut self, offline: bool) {
        if let Err(error) = self.ctx.execute(&network::commands(offline)) {
            eprintln!("kettle: cannot switch cargo's network use: {error}");
            self.offline_first = false;
        }
    }

    /// What evcxr itself answered (`:vars`, `:help`, `:timing` …, not printed by the child):
    /// the cell's value when it has none of its own, else a display; and, with `:timing`, how
    /// long the cell took. Returns the cell's value.
    fn show_command_output(
        &self,
        outputs: &evcxr::EvalOutputs,
        value: Option<MimeBundle>,
    ) -> Option<MimeBundle> {
        let mut sink = self.lock_sink();
        let mut value = value;
        if !outputs.content_by_mime_type.is_empty() {
            let bundle: MimeBundle = outputs
                .content_by_mime_type
                .iter()
                .map(|(mime, text)| {
                    let data = if mime.contains("json") {
                        serde_json::from_str(text).unwrap_or_else(|_| Value::from(text.as_str()))
                    } else {
                        Value::from(text.as_str())
                    };
                    (mime.clone(), data)
                })
                .collect();
            match value {
                None => value = Some(bundle),
                Some(_) => sink.event(display_event(bundle), false),
            }
        }
        if let Some(took) = outputs.timing {
            // evcxr's phases say where the time went: a phase named after what evcxr fixed
            // ("Fallback", "Captured value", ...) is a compile that failed and was redone.
            let mut text = format!("Took {} ms", took.as_millis());
            for phase in &outputs.phases {
                text.push_str(&format!(
                    " · {} {} ms",
                    phase.name,
                    phase.duration.as_millis()
                ));
            }
            let mut bundle = MimeBundle::new();
            bundle.insert(
                "text/html".into(),
                // Phase names are evcxr's own fixed words: nothing to escape.
                format!("<span style=\"opacity: 0.6\">{text}</span>").into(),
            );
            bundle.insert("text/plain".into(), text.into());
            sink.event(display_event(bundle), false);
        }
        value
    }

    /// Rich content printed last by a cell: its value when the cell ends in an expression (evcxr
    /// prints the value that way), otherwise an ordinary display.
    fn value_or_display(&self, code: &str, bundle: MimeBundle) -> Option<MimeBundle> {
        let unit = bundle.len() == 1 && bundle.get("text/plain").is_some_and(|v| v == "()");
        if unit {
            // A `for` loop or a call returning `()`: nothing to show, as Python shows nothing
            // for `None`.
            return None;
        }
        if !ends_with_expression(code) {
            self.lock_sink().event(display_event(bundle), false);
            return None;
        }
        Some(bundle)
    }

    fn complete(&mut self, code: &str, cursor_pos: usize) -> Completions {
        let byte = offsets::byte_offset(code, cursor_pos);
        match self.ctx.completions(code, byte) {
            Ok(found) => {
                let mut matches: Vec<String> = Vec::new();
                for completion in found.completions {
                    if !matches.contains(&completion.code) {
                        matches.push(completion.code);
                    }
                }
                Completions {
                    matches,
                    cursor_start: offsets::code_point_offset(code, found.start_offset),
                    cursor_end: offsets::code_point_offset(code, found.end_offset),
                }
            }
            Err(_) => Completions {
                matches: vec![],
                cursor_start: cursor_pos,
                cursor_end: cursor_pos,
            },
        }
    }

    fn inspect(&mut self, code: &str, cursor_pos: usize) -> Inspection {
        let mut byte = offsets::byte_offset(code, cursor_pos);
        // evcxr describes the name that *ends* at the position; the cursor may be anywhere in
        // the name (Jupyter sends Shift+Tab's position), so move to the name's end.
        byte += code[byte..]
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(code.len() - byte);
        let (plain, html) = self.ctx.hover_at(code, byte).ok()?;
        // evcxr's answer when rust-analyzer knows nothing.
        if plain.trim().is_empty() || plain == "No documentation found" {
            return None;
        }
        let mut bundle = MimeBundle::new();
        bundle.insert("text/plain".into(), Value::String(plain));
        if !html.trim().is_empty() {
            bundle.insert("text/html".into(), Value::String(html));
        }
        Some(bundle)
    }
}

/// The directory of the toolchain's shared std (`libstd-*.so`) that cells link against.
fn rust_std_dir() -> Option<PathBuf> {
    let out = std::process::Command::new("rustc")
        .args(["--print", "target-libdir"])
        .output()
        .ok()?;
    let dir = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    dir.is_dir().then_some(dir)
}

/// Whether the cell's last line of code is an expression without `;` (what evcxr shows as the
/// cell's value). Comments after it do not count.
fn ends_with_expression(code: &str) -> bool {
    let last = code
        .lines()
        .map(|line| line.split("//").next().unwrap_or("").trim())
        .rfind(|line| !line.is_empty());
    last.is_some_and(|line| !line.ends_with(';'))
}

#[cfg(test)]
mod tests {
    #[test]
    fn dependency_commands_mark_the_analysis_cold() {
        assert!(super::changes_dependencies(
            ":dep rayon = \"1\"\nuse rayon::prelude::*;"
        ));
        assert!(super::changes_dependencies("  :course"));
        assert!(!super::changes_dependencies(
            "let dep = 1; // :dep in a comment"
        ));
        assert!(!super::changes_dependencies(":vars"));
    }
}
