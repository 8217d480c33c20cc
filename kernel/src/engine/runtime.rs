//! The process that runs cells: our own binary, re-executed by evcxr.
//!
//! evcxr re-executes the current executable in two roles: as the process that loads and runs
//! compiled cells (`EVCXR_IS_RUNTIME` set) and as a wrapper around rustc
//! (`EVCXR_RUSTC_WRAPPER` set). `main()` must call [`dispatch_if_child`] before anything else:
//! otherwise the child would start a second kernel, which would start another child, and so on.
//!
//! When the kernel started the child (it sets [`SOCKET_ENV`]), the child runs *our* loop instead
//! of evcxr's. evcxr's own loop reads its commands from fd 0 and writes its end-of-cell line to
//! fd 1, which it shares with user code: `stdin()` then steals evcxr's commands, `print!` without
//! a newline never shows, and output of threads that outlive a cell lands in the next one. Ours
//! moves evcxr's pipes out of the way and gives fds 0, 1 and 2 to sockets the kernel reads:
//!
//! - evcxr's side is unchanged: `LOAD_AND_RUN <library> <symbol>` lines in, and
//!   `EVCXR_EXECUTION_COMPLETE` out after each cell, preceded by the bookkeeping lines evcxr's
//!   generated code printed (panic and `?` notices, changed variable types), which the kernel
//!   separates from the user's output and hands back to us.
//! - The kernel's side: a `control` connection (cell started / cell done, answered with the lines
//!   for evcxr), `stdout` and `stderr` connections on fds 1 and 2, a `display` connection for
//!   rich output from `kettle-display` (its fd is in `KETTLE_DISPLAY_FD`), and a new `stdin`
//!   connection on fd 0 for every cell, so the kernel can end one cell's input without ending
//!   the next one's. What cells write to fds 1, 2 and the display fd through std goes to the
//!   kernel on one more connection, in order ([`super::channel`]).
//!
//! After a cell the loop flushes the user's stdout (cells link their own copy of std, whose
//! buffer ours cannot reach: the prelude exports `kettle_flush` for that) and writes an
//! end-of-cell [`sentinel`] on stdout, stderr, display and the channel; the kernel acknowledges
//! once all four arrived, so every byte of a cell's output is published before the cell's reply.

use std::ffi::{CString, OsString};
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use super::channel;

/// evcxr's mark of the process that runs cells (it sets it when it starts that process); a C
/// string because the allocator reads it before anything may allocate (`crate::allocator`).
pub const RUNNER_ENV: &std::ffi::CStr = c"EVCXR_IS_RUNTIME";
/// Path of the kernel's Unix socket, set in the child's environment by the kernel.
pub(super) const SOCKET_ENV: &str = "KETTLE_RUNTIME_SOCKET";
/// Secret the child presents on every connection, so no other local process can attach.
pub(super) const TOKEN_ENV: &str = "KETTLE_RUNTIME_TOKEN";
/// Written on stdout, stderr and display after each cell, around the cell's id (see
/// [`sentinel`]); `\u{1}` does not occur in ordinary text.
pub(super) const SENTINEL_START: &[u8] = b"\x01kettle-end-of-cell ";
pub(super) const SENTINEL_END: &[u8] = b"\x01\n";

/// The end-of-cell sentinel of cell `id`. The id (child pid and cell number) lets the kernel
/// tell a late sentinel of an earlier cell from this cell's.
pub(super) fn sentinel(id: &str) -> Vec<u8> {
    [SENTINEL_START, id.as_bytes(), SENTINEL_END].concat()
}
/// Control lines, child to kernel.
pub(super) const CELL_STARTED: &str = "started";
pub(super) const CELL_DONE: &str = "done";
/// Appended to a `done` line when the prelude library named in `go` could not be loaded: the
/// kernel then runs the prelude as a cell.
pub(super) const PRELUDE_FAILED: &str = "prelude-failed";
/// Control line, kernel to child: go ahead with the cell announced by `started`. Waiting for
/// it means the kernel knows a cell runs before the cell's first output arrives, so none of
/// that output is mistaken for output between cells. `go <path>` also names the prelude
/// library ([`super::prelude::library`]), which the child loads before its first cell.
pub(super) const GO: &str = "go";
/// Control line, kernel to child, before a `go`: `setup <json>` gives the directory and the
/// environment cells run in (`{"cwd": …, "set": [[name, value], …], "unset": [name, …]}`), when
/// they are not the ones this process started with (see `Engine::adopt_environment`).
pub(super) const SETUP: &str = "setup";
/// Control line, kernel to child: the end of the lines to pass to evcxr.
pub(super) const REPLY_END: &str = "\x01end";
/// evcxr's end-of-cell line (its runtime protocol, pinned with `evcxr = "=0.22.0"`).
pub(super) const EXECUTION_COMPLETE: &str = "EVCXR_EXECUTION_COMPLETE";
/// The variable `kettle-display` reads to find the display connection.
pub(super) const DISPLAY_FD_ENV: &str = "KETTLE_DISPLAY_FD";

/// Takes over the process when it was started by evcxr as the code runner or rustc wrapper,
/// or by cargo as the rustc wrapper of the cell cache ([`super::cell_cache`]); returns (doing
/// nothing) in the kernel itself.
pub fn dispatch_if_child() {
    use std::os::unix::ffi::OsStrExt;
    let runner_env = std::ffi::OsStr::from_bytes(RUNNER_ENV.to_bytes());
    if std::env::var_os(runner_env).is_some()
        && let (Some(socket), Some(token)) =
            (std::env::var_os(SOCKET_ENV), std::env::var_os(TOKEN_ENV))
    {
        let code = match run(socket, token) {
            Ok(()) => 0,
            Err(error) => {
                // stderr is the kernel's stderr socket or evcxr's pipe: either reaches a log.
                eprintln!("kettle runtime: {error}");
                98
            }
        };
        std::process::exit(code);
    }
    super::cell_cache::wrap_if_asked();
    evcxr::runtime_hook();
}

/// Connects one named channel to the kernel.
fn connect(socket: &OsString, token: &OsString, kind: &str) -> std::io::Result<UnixStream> {
    let mut stream = UnixStream::connect(socket)?;
    let hello = format!("{} {kind}\n", token.to_string_lossy());
    stream.write_all(hello.as_bytes())?;
    Ok(stream)
}

/// A close-on-exec duplicate of `fd` numbered 10 or above, so user code's subprocesses never
/// inherit evcxr's pipes and user code's `dup2(…, 1)` cannot clobber them.
fn move_away(fd: RawFd) -> std::io::Result<OwnedFd> {
    // SAFETY: fcntl on a descriptor number has no memory-safety preconditions; the result is
    // checked before it is owned.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10) };
    if new < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `new` is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// Puts `source` on descriptor `target` (0, 1 or 2).
fn install(source: &impl AsRawFd, target: RawFd) -> std::io::Result<()> {
    // SAFETY: dup2 has no memory-safety preconditions; std's handles for 0/1/2 keep working
    // because they refer to the descriptor numbers, not to the old files.
    if unsafe { libc::dup2(source.as_raw_fd(), target) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

type CellFn = extern "C" fn(*mut std::ffi::c_void) -> *mut std::ffi::c_void;
type FlushFn = extern "C" fn();
type InitFn = extern "C" fn();

/// Loads the prelude library and runs its init on this thread (the one that runs cells);
/// returns its `kettle_flush`.
fn load_prelude(path: &str) -> std::io::Result<FlushFn> {
    let library = Library::open(path)?;
    let (Some(init), Some(flush)) = (
        library.symbol("kettle_prelude_init"),
        library.symbol("kettle_flush"),
    ) else {
        return Err(std::io::Error::other(format!(
            "{path} lacks the prelude's functions"
        )));
    };
    // `library` is never unloaded (Library has no Drop): the flusher thread and the panic hook
    // live in it.
    // SAFETY: the prelude defines both as `extern "C" fn()` (prelude::LIBRARY).
    unsafe {
        std::mem::transmute::<*mut std::ffi::c_void, InitFn>(init)();
        Ok(std::mem::transmute::<*mut std::ffi::c_void, FlushFn>(flush))
    }
}

/// A loaded cell library. Never unloaded: thread-local destructors and threads the cell started
/// may still point into it.
struct Library(*mut std::ffi::c_void);

impl Library {
    fn open(path: &str) -> std::io::Result<Library> {
        let c_path = CString::new(path).map_err(std::io::Error::other)?;
        // SAFETY: dlopen with a valid C string; a null result is checked.
        let handle = unsafe { libc::dlopen(c_path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if handle.is_null() {
            return Err(std::io::Error::other(format!(
                "dlopen {path}: {}",
                dl_error()
            )));
        }
        Ok(Library(handle))
    }

    fn symbol(&self, name: &str) -> Option<*mut std::ffi::c_void> {
        let c_name = CString::new(name).ok()?;
        // SAFETY: the handle is a live dlopen handle (never closed).
        let symbol = unsafe { libc::dlsym(self.0, c_name.as_ptr()) };
        (!symbol.is_null()).then_some(symbol)
    }
}

fn dl_error() -> String {
    // SAFETY: dlerror returns null or a C string valid until the next dl* call on this thread.
    unsafe {
        let message = libc::dlerror();
        if message.is_null() {
            "unknown error".to_owned()
        } else {
            std::ffi::CStr::from_ptr(message)
                .to_string_lossy()
                .into_owned()
        }
    }
}

/// Moves this process to the directory and environment of a `setup` line. Problems are printed
/// (they reach the cell's stderr) rather than fatal: the cell can still run.
fn apply_setup(json: &str) {
    let setup: serde_json::Value = match serde_json::from_str(json) {
        Ok(value) => value,
        Err(error) => {
            eprintln!("kettle: bad setup from the kernel: {error}");
            return;
        }
    };
    if let Some(cwd) = setup["cwd"].as_str()
        && let Err(error) = std::env::set_current_dir(cwd)
    {
        eprintln!("kettle: cannot run cells in {cwd}: {error}");
    }
    let strings = |key: &str| -> Vec<serde_json::Value> {
        setup[key].as_array().cloned().unwrap_or_default()
    };
    for pair in strings("set") {
        if let (Some(name), Some(value)) = (pair[0].as_str(), pair[1].as_str()) {
            // SAFETY: called before this process's first cell, when the only other thread can
            // be the prelude's flusher (when the prelude ran as a cell), which never reads the
            // environment.
            unsafe { std::env::set_var(name, value) };
        }
    }
    for name in strings("unset") {
        if let Some(name) = name.as_str() {
            // SAFETY: as above.
            unsafe { std::env::remove_var(name) };
        }
    }
}

fn run(socket: OsString, token: OsString) -> std::io::Result<()> {
    let commands = move_away(0)?;
    let to_evcxr = move_away(1)?;
    let mut to_evcxr = std::fs::File::from(to_evcxr);
    // evcxr's stderr pipe stays open (close-on-exec, above fd 10) so evcxr's reader thread does
    // not see EOF before the process ends; nothing is written to it.
    let _evcxr_stderr = move_away(2)?;

    let mut control = connect(&socket, &token, "control")?;
    let stdout = connect(&socket, &token, "stdout")?;
    let stderr = connect(&socket, &token, "stderr")?;
    let display = connect(&socket, &token, "display")?;
    install(&stdout, 1)?;
    install(&stderr, 2)?;
    channel::activate(
        channel::connect(&socket, &token)?,
        1,
        2,
        display.as_raw_fd(),
    );
    // SAFETY: the child is still single-threaded here (no cell has run), so nothing reads the
    // environment concurrently.
    unsafe { std::env::set_var(DISPLAY_FD_ENV, display.as_raw_fd().to_string()) };
    let mut replies = BufReader::new(control.try_clone()?);

    let mut libraries: Vec<Library> = Vec::new();
    let mut store: *mut std::ffi::c_void = std::ptr::null_mut();
    let commands = BufReader::new(std::fs::File::from(commands));
    let mut cells = 0u64;
    let mut reply = String::new();
    // The prelude's flush, once its library is loaded (else cells carry `kettle_flush`).
    let mut prelude_flush: Option<FlushFn> = None;
    let mut prelude_failed = false;
    for line in commands.lines() {
        let line = line?;
        // evcxr's regex is "LOAD_AND_RUN ([^ ]+) ([^ ]+)"; anything else is not for us.
        let Some((path, symbol)) = line
            .strip_prefix("LOAD_AND_RUN ")
            .and_then(|rest| rest.split_once(' '))
        else {
            continue;
        };
        let stdin = connect(&socket, &token, "stdin")?;
        install(&stdin, 0)?;
        drop(stdin);
        cells += 1;
        let id = format!("{}-{cells}", std::process::id());
        writeln!(control, "{CELL_STARTED} {id}")?;
        reply.clear();
        replies.read_line(&mut reply)?;
        if let Some(setup) = reply.strip_prefix(SETUP).and_then(|r| r.strip_prefix(' ')) {
            // Before the prelude starts its thread, and before this process's first cell.
            apply_setup(setup.trim_end());
            reply.clear();
            replies.read_line(&mut reply)?;
        }
        let go = reply.trim_end();
        let Some(prelude) = go
            .strip_prefix(GO)
            .filter(|rest| rest.is_empty() || rest.starts_with(' '))
        else {
            return Err(std::io::Error::other(
                "the kernel did not acknowledge the cell",
            ));
        };
        let prelude = prelude.trim();
        if prelude_flush.is_none() && !prelude.is_empty() {
            match load_prelude(prelude) {
                Ok(flush) => prelude_flush = Some(flush),
                Err(error) => {
                    // Shown with the cell; the kernel hears of it with `done`.
                    eprintln!("kettle: could not load the prelude library: {error}");
                    prelude_failed = true;
                }
            }
        }

        let library = Library::open(path)?;
        let cell = library
            .symbol(symbol)
            .ok_or_else(|| std::io::Error::other(format!("no symbol {symbol} in {path}")))?;
        // SAFETY: evcxr generated this symbol with exactly this signature; the store pointer
        // is the one the previous cell returned (null for the first).
        store = unsafe { std::mem::transmute::<*mut std::ffi::c_void, CellFn>(cell)(store) };
        if let Some(flush) = prelude_flush {
            flush();
        } else if let Some(flush) = library.symbol("kettle_flush") {
            // SAFETY: the prelude defines `kettle_flush` as `extern "C" fn()`.
            unsafe { std::mem::transmute::<*mut std::ffi::c_void, FlushFn>(flush)() };
        }
        libraries.push(library);

        // The sockets, not fds 1/2: user code may have redirected those. Written directly: the
        // display fd is one the channel takes writes from.
        let end = sentinel(&id);
        for fd in [&stdout, &stderr, &display] {
            channel::write_direct(fd.as_raw_fd(), &end)?;
        }
        channel::send_sentinel(&end)?;
        if std::mem::take(&mut prelude_failed) {
            writeln!(control, "{CELL_DONE} {id} {PRELUDE_FAILED}")?;
        } else {
            writeln!(control, "{CELL_DONE} {id}")?;
        }
        loop {
            reply.clear();
            if replies.read_line(&mut reply)? == 0 {
                return Err(std::io::Error::other(
                    "the kernel closed the control channel",
                ));
            }
            let line = reply.trim_end_matches('\n');
            if line == REPLY_END {
                break;
            }
            writeln!(to_evcxr, "{line}")?;
        }
        writeln!(to_evcxr, "{EXECUTION_COMPLETE}")?;
        to_evcxr.flush()?;
    }
    Ok(())
}
