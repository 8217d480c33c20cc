//! The engine actor: one thread owns evcxr's `CommandContext`; [`Engine`] sends it requests and
//! waits for answers on the caller's thread; [`Interrupter`] stops a running cell without
//! waiting for the actor.

use super::output::{self, CellMsg, SharedSink};
use super::{
    Completions, Event, Inspection, MimeBundle, Outcome, StreamName, offsets, prelude, report,
};
use evcxr::{CommandContext, EvalCallbacks, EvalContext};
use serde_json::{Map, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// How to start the engine.
#[derive(Debug, Clone, Default)]
pub struct EngineConfig {
    /// rustc `-C opt-level` for cells; `None` keeps evcxr's default ("2": timings in the course
    /// are meant to be of optimised code).
    pub opt_level: Option<String>,
}

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
    Shutdown,
}

/// State shared between the actor and [`Interrupter`]s.
#[derive(Default)]
struct Control {
    running: AtomicBool,
    interrupted: AtomicBool,
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
        let control = Arc::new(Control::default());
        let actor_control = Arc::clone(&control);
        std::thread::Builder::new()
            .name("kettle-engine".into())
            .spawn(move || {
                run_actor(config, inbox, actor_control);
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

    /// Completions at `cursor_pos` (code points).
    pub fn complete(&self, code: &str, cursor_pos: usize) -> Completions {
        let (reply, answer) = channel();
        let request = Request::Complete {
            code: code.to_owned(),
            cursor_pos,
            reply,
        };
        if self.requests.send(request).is_ok()
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
        if self.requests.send(request).is_ok() {
            return answer.recv().ok().flatten();
        }
        None
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
        if !self.control.running.load(Ordering::SeqCst) {
            return;
        }
        self.control.interrupted.store(true, Ordering::SeqCst);
        std::thread::spawn(kill_descendants);
    }
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
                .filter(|(_, p)| *p == parent)
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
    stdout: crossbeam_channel::Receiver<String>,
    stderr: crossbeam_channel::Receiver<String>,
    control: Arc<Control>,
}

fn run_actor(config: EngineConfig, inbox: Receiver<Request>, control: Arc<Control>) {
    let sink = SharedSink::default();
    let mut actor = match Actor::create(&config, sink, control) {
        Ok(actor) => actor,
        Err(message) => {
            eprintln!("kettle: the evaluation engine failed to start: {message}");
            serve_failed(&message, inbox);
            return;
        }
    };
    actor.run_prelude();
    for request in inbox {
        match request {
            Request::Execute {
                code,
                allow_stdin,
                reply,
            } => actor.execute(&code, allow_stdin, reply),
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
            Request::Shutdown => break,
        }
    }
    kill_descendants();
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
            Request::Shutdown => break,
        }
    }
}

impl Actor {
    fn create(
        config: &EngineConfig,
        sink: SharedSink,
        control: Arc<Control>,
    ) -> Result<Actor, String> {
        let exe =
            std::env::current_exe().map_err(|e| format!("cannot find our own executable: {e}"))?;
        let (mut eval, outputs) =
            EvalContext::with_subprocess_command(std::process::Command::new(exe))
                .map_err(|e| e.to_string())?;
        if let Some(level) = &config.opt_level {
            eval.set_opt_level(level).map_err(|e| e.to_string())?;
        }
        output::spawn_pump(
            StreamName::Stdout,
            outputs.stdout.clone(),
            Arc::clone(&sink),
        );
        output::spawn_pump(
            StreamName::Stderr,
            outputs.stderr.clone(),
            Arc::clone(&sink),
        );
        Ok(Actor {
            ctx: CommandContext::with_eval_context(eval),
            sink,
            stdout: outputs.stdout,
            stderr: outputs.stderr,
            control,
        })
    }

    /// Installs the panic hook in the (new) child process. Its output, if any, goes to the
    /// kernel log: it is not part of any cell.
    fn run_prelude(&mut self) {
        if let Err(error) = self.ctx.execute(prelude::CODE) {
            eprintln!("kettle: the prelude failed: {error}");
        }
        let mut sink = self.sink.lock().unwrap_or_else(|p| p.into_inner());
        output::drain(StreamName::Stdout, &self.stdout, &mut sink);
        sink.close();
    }

    fn execute(&mut self, code: &str, allow_stdin: bool, reply: Sender<CellMsg>) {
        self.control.interrupted.store(false, Ordering::SeqCst);
        self.control.running.store(true, Ordering::SeqCst);
        let variables_before: Vec<String> = self
            .ctx
            .variables_and_types()
            .map(|(name, _)| name.to_owned())
            .collect();
        self.sink
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .open(reply.clone());

        let ask = reply.clone();
        let read_input = move |prompt: String, password: bool| -> String {
            if !allow_stdin {
                return String::new();
            }
            let (answer_tx, answer) = channel();
            let event = Event::InputRequest {
                prompt,
                password,
                reply: answer_tx,
            };
            if ask.send(CellMsg::Event(event)).is_err() {
                return String::new();
            }
            answer.recv().ok().flatten().unwrap_or_default()
        };
        // evcxr's `InputRequest` type is not exported: let the field's type name it.
        let mut callbacks = EvalCallbacks {
            input_reader: &|request| read_input(request.prompt.clone(), request.is_password),
        };
        let result = self.ctx.execute_with_callbacks(code, &mut callbacks);

        let panic = self.finish_output();
        self.control.running.store(false, Ordering::SeqCst);
        let interrupted = self.control.interrupted.swap(false, Ordering::SeqCst);

        let mut restarted = false;
        let outcome = match result {
            Ok(outputs) => match panic {
                Some(p) => outcome_of(report::panic(&p.thread, &p.location, &p.message)),
                None => {
                    let result = self.value_bundle(outputs.content_by_mime_type, &reply);
                    Outcome::Ok { result }
                }
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
            Err(_) if interrupted => outcome_of(report::process_died(true, "", &variables_before)),
            Err(error) => outcome_of(report::other("Error", error.to_string())),
        };
        let _ = reply.send(CellMsg::Done(outcome));
        if restarted || interrupted {
            // The child was replaced: its panic hook is gone.
            self.run_prelude();
        }
    }

    /// Waits briefly for stderr written just before the cell ended (it travels on a different
    /// pipe from evcxr's end-of-cell line), then closes the cell's output.
    fn finish_output(&mut self) -> Option<prelude::PanicReport> {
        let mut quiet = 0;
        for _ in 0..10 {
            std::thread::sleep(Duration::from_millis(3));
            if self.stderr.is_empty() && self.stdout.is_empty() {
                quiet += 1;
                if quiet == 2 {
                    break;
                }
            } else {
                quiet = 0;
            }
        }
        let mut sink = self.sink.lock().unwrap_or_else(|p| p.into_inner());
        output::drain(StreamName::Stdout, &self.stdout, &mut sink);
        output::drain(StreamName::Stderr, &self.stderr, &mut sink);
        sink.close()
    }

    /// The cell's value as a MIME bundle. A bundle with only `text/plain` is the cell's
    /// `execute_result`; richer content printed with evcxr's `EVCXR_BEGIN_CONTENT` convention is
    /// shown as a display (it may come from any statement, not only the final expression).
    fn value_bundle(
        &self,
        content: std::collections::HashMap<String, String>,
        reply: &Sender<CellMsg>,
    ) -> Option<MimeBundle> {
        // A statement-like final expression (a `for` loop, a call returning `()`) has nothing
        // to show; Python's notebooks show nothing for `None` either.
        if content.is_empty()
            || (content.len() == 1 && content.get("text/plain").is_some_and(|t| t == "()"))
        {
            return None;
        }
        let rich = content.keys().any(|mime| mime != "text/plain");
        let mut bundle = MimeBundle::new();
        for (mime, text) in content {
            bundle.insert(mime.clone(), mime_value(&mime, text));
        }
        if rich {
            let _ = reply.send(CellMsg::Event(Event::Display {
                data: bundle,
                metadata: Map::new(),
                display_id: None,
                update: false,
            }));
            None
        } else {
            Some(bundle)
        }
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
        let byte = offsets::byte_offset(code, cursor_pos);
        let (plain, html) = self.ctx.hover_at(code, byte).ok()?;
        if plain.trim().is_empty() {
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

/// JSON MIME types carry JSON values in a bundle, not strings.
fn mime_value(mime: &str, text: String) -> Value {
    if (mime == "application/json" || mime.ends_with("+json"))
        && let Ok(value) = serde_json::from_str(&text)
    {
        return value;
    }
    Value::String(text)
}
