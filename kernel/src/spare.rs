//! Spare kernels: a kernel process started ahead of time and handed to the next
//! `kettle kernel --spare`, so a new or restarted kernel runs its first cell at once.
//!
//! Most of a fresh kernel's first cell is evcxr starting up (~3 s here: rust-analyzer loads
//! std, a first crate is compiled and the process that runs cells is started), and none of it
//! can start before Jupyter launches the kernel. So a kernel that has been idle for a while
//! starts a *spare*: `kettle spare`, in its own session, which does all of that and then waits
//! on a Unix socket. The next `kettle kernel --spare` (the installed kernelspec passes the
//! flag) connects to it and becomes a *launcher*:
//!
//! ```text
//! launcher ── stdin/stdout/stderr and the five ports, bound and listening (SCM_RIGHTS),
//!             {connection file, cwd, env} ──▶ spare
//! launcher ◀── "ok <pid>" once the spare's sockets serve those ports
//! launcher ── forwards SIGINT/SIGTERM/SIGHUP/SIGQUIT ──▶ spare (now the kernel)
//! launcher ◀── "exit <code>" when the kernel shut down; the launcher exits with it
//! ```
//!
//! Jupyter only ever sees the launcher: when it goes (even by SIGKILL), the kernel notices its
//! end of the socket closing and takes its process group (the process running cells and what
//! cells started) down with it. Cells run in the launcher's directory and environment
//! ([`crate::engine::Engine::adopt_environment`]).
//!
//! A spare only serves launchers that would have started an identical kernel: the socket's name
//! is a hash of the executable (path, size, mtime, inode), the environment except what Jupyter
//! sets per kernel (`JPY_*`) and what the shell sets per directory (`PWD`, `OLDPWD`, `SHLVL`,
//! `_`), and evcxr's configuration files. Anything else starts a kernel the usual way.
//!
//! A spare lives until it is used, its executable changes, the process named by
//! `JPY_PARENT_PID` (the Jupyter server that started the kernel that started it) ends, or
//! `KETTLE_SPARE_IDLE` seconds (default 1800) pass. There is at most one per key (a lock file).
//! It costs what an idle kernel costs (~400 MiB, mostly rust-analyzer). `KETTLE_SPARE=0` turns
//! the whole mechanism off.

use crate::engine::{Engine, EngineConfig, NOTEBOOK_ENV, OnIdle};
use crate::transport::Listeners;
use anyhow::Context;
use sha2::{Digest, Sha256};
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// `0` turns spare kernels off (neither used nor started).
pub const SWITCH_ENV: &str = "KETTLE_SPARE";
/// Where spares keep their sockets, locks and logs (default: `~/.cache/kettle/spare`).
pub const DIR_ENV: &str = "KETTLE_SPARE_DIR";
/// Seconds an unused spare waits before it exits.
pub const IDLE_ENV: &str = "KETTLE_SPARE_IDLE";
const DEFAULT_IDLE: Duration = Duration::from_secs(1800);
/// How long a launcher waits for the spare to bind its ports before starting a kernel itself.
const HANDOVER_TIMEOUT: Duration = Duration::from_secs(10);

/// The environment this process started with (before the kernel adds to it); replaced by the
/// launcher's when a spare is handed over. Spares are started with it and keyed by it.
static ENVIRONMENT: Mutex<Vec<(OsString, OsString)>> = Mutex::new(Vec::new());

/// Call first in `kettle kernel` and `kettle spare`, before anything sets a variable.
pub fn remember_environment() {
    *ENVIRONMENT.lock().unwrap_or_else(|p| p.into_inner()) = std::env::vars_os().collect();
}

fn environment() -> Vec<(OsString, OsString)> {
    ENVIRONMENT
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
}

/// Whether spares are on for processes with environment `env` (`KETTLE_SPARE=0` turns them off).
fn enabled(env: &[(OsString, OsString)]) -> bool {
    !env.iter()
        .any(|(name, value)| name == SWITCH_ENV && value == "0")
}

/// Set per kernel or per directory, so left out of the key (and passed to cells on hand-over).
fn volatile(name: &[u8]) -> bool {
    name.starts_with(b"JPY_") || matches!(name, b"PWD" | b"OLDPWD" | b"SHLVL" | b"_")
}

/// The socket, lock and log of the spare that matches this process.
struct Place {
    socket: PathBuf,
    lock: PathBuf,
    log: PathBuf,
}

impl Place {
    /// Where the spare for `env` lives; `None` (no spares) when the directory cannot be made
    /// private (see [`private_dir`]).
    fn of(env: &[(OsString, OsString)]) -> Option<Place> {
        let dir = match std::env::var_os(DIR_ENV) {
            Some(dir) => PathBuf::from(dir),
            None => crate::engine::workdir::cache_dir()?.join("spare"),
        };
        // Absolute: the spare works in another directory than the kernel that starts it.
        let dir = std::path::absolute(dir).ok()?;
        private_dir(&dir).ok()?;
        let key = key(env)?;
        Some(Place {
            socket: dir.join(format!("{key}.sock")),
            lock: dir.join(format!("{key}.lock")),
            log: dir.join(format!("{key}.log")),
        })
    }
}

/// Creates `dir` (mode 0700) if needed and checks that only we can use it: a directory, not a
/// symbolic link, owned by us, with no access for group or others. Whoever could put a socket
/// there would receive a launcher's connection file (its signing key) and environment.
fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let meta = std::fs::symlink_metadata(dir)?;
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    if !meta.is_dir() || meta.uid() != uid || meta.mode() & 0o077 != 0 {
        return Err(std::io::Error::other(format!(
            "{} is not a private directory of ours",
            dir.display()
        )));
    }
    Ok(())
}

/// Identity of a file: its path, size, modification time and inode.
fn stamp(path: &Path) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    Some(format!(
        "{}:{}:{}.{}:{}",
        path.display(),
        meta.len(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ino()
    ))
}

fn exe_stamp() -> Option<String> {
    stamp(&std::env::current_exe().ok()?)
}

/// evcxr reads these at start-up; a change means a different kernel.
fn evcxr_config_stamps() -> Vec<String> {
    let dir = match std::env::var_os("EVCXR_CONFIG_DIR") {
        Some(dir) => Some(PathBuf::from(dir)),
        None => std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
            .map(|config| config.join("evcxr")),
    };
    let Some(dir) = dir else { return vec![] };
    ["evcxr.toml", "init.evcxr", "prelude.rs"]
        .iter()
        .filter_map(|name| stamp(&dir.join(name)))
        .collect()
}

/// 16 hex digits naming the kernel this process would start.
fn key(env: &[(OsString, OsString)]) -> Option<String> {
    let mut hasher = Sha256::new();
    hasher.update(exe_stamp()?.as_bytes());
    let mut vars: Vec<&(OsString, OsString)> = env
        .iter()
        .filter(|(name, _)| !volatile(name.as_bytes()))
        .collect();
    vars.sort();
    for (name, value) in vars {
        hasher.update(name.as_bytes());
        hasher.update(b"=");
        hasher.update(value.as_bytes());
        hasher.update(b"\0");
    }
    for config in evcxr_config_stamps() {
        hasher.update(config.as_bytes());
    }
    for toolchain in toolchain_stamps() {
        hasher.update(toolchain.as_bytes());
    }
    Some(hex::encode(&hasher.finalize()[..8]))
}

/// rustup's settings (the default toolchain) and the installed toolchains' compilers: a
/// `rustup update` or `rustup default` means another kernel.
fn toolchain_stamps() -> Vec<String> {
    let Some(home) = std::env::var_os("RUSTUP_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".rustup")))
    else {
        return vec![];
    };
    let mut stamps: Vec<String> = stamp(&home.join("settings.toml")).into_iter().collect();
    if let Ok(toolchains) = std::fs::read_dir(home.join("toolchains")) {
        let mut compilers: Vec<String> = toolchains
            .flatten()
            .filter_map(|t| stamp(&t.path().join("bin").join("rustc")))
            .collect();
        compilers.sort();
        stamps.extend(compilers);
    }
    stamps
}

/// An exclusive, non-blocking `flock` on `path`, held while the file is open.
fn try_lock(path: &Path) -> Option<std::fs::File> {
    let file = open_private(path, false).ok()?;
    // SAFETY: flock on an open descriptor has no memory-safety preconditions.
    let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
    locked.then_some(file)
}

// ---------------------------------------------------------------------------------------------
// The launcher: `kettle kernel --spare`.

/// Hands this kernel's connection file (and `listeners`, its ports bound already, if any) to
/// a waiting spare and stands in for it until it exits. `None`: there was no usable spare;
/// start a kernel the usual way (nothing was changed; `listeners` are still there unless they
/// went to a spare that then refused, in which case the ports are free again).
pub fn hand_over(connection_file: &Path, listeners: &mut Option<Listeners>) -> Option<ExitCode> {
    if !enabled(&environment()) {
        return None;
    }
    // Everything is checked before connecting: a spare that answers is used up.
    let request = handover_request(connection_file)?;
    let place = Place::of(&environment())?;
    let stream = UnixStream::connect(&place.socket).ok()?;
    // SAFETY: getuid has no preconditions.
    if peer_uid(&stream) != Some(unsafe { libc::getuid() }) {
        return None;
    }
    let mut answers = BufReader::new(stream.try_clone().ok()?);
    match send_request(
        &stream,
        &mut answers,
        &request,
        listeners.take().unwrap_or_default(),
    ) {
        Ok(kernel) => Some(stand_in(answers, kernel)),
        Err(reason) => {
            eprintln!("kettle: the spare kernel was not usable ({reason}); starting one");
            None
        }
    }
}

/// The request for a spare, or `None` when this launch cannot use one: the directory or the
/// environment is not UTF-8 (the request is JSON), stdio is not open, or the directory has an
/// `evcxr.toml` (evcxr reads it from the current directory, which for the spare was another).
fn handover_request(connection_file: &Path) -> Option<serde_json::Value> {
    let connection = std::fs::read_to_string(connection_file).ok()?;
    let cwd = std::env::current_dir().ok()?;
    if cwd.join("evcxr.toml").exists() {
        return None;
    }
    let mut vars = serde_json::Map::new();
    for (name, value) in environment() {
        vars.insert(name.into_string().ok()?, value.into_string().ok()?.into());
    }
    // SAFETY: F_GETFD on a descriptor number only reads its flags.
    if (0..3).any(|fd| unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0) {
        return None;
    }
    Some(serde_json::json!({
        "connection": connection,
        "cwd": cwd.to_str()?,
        "env": vars,
        "nice": niceness(),
    }))
}

/// The kernel a spare became: its process and its process group.
#[derive(Clone, Copy)]
struct Kernel {
    pid: libc::pid_t,
    group: libc::pid_t,
}

/// Sends the request with our stdio and the listening sockets (if bound); returns the kernel
/// once it has bound the ports.
fn send_request(
    stream: &UnixStream,
    answers: &mut impl BufRead,
    request: &serde_json::Value,
    listeners: Listeners,
) -> Result<Kernel, String> {
    stream
        .set_read_timeout(Some(HANDOVER_TIMEOUT))
        .map_err(|e| e.to_string())?;
    let fds: Vec<RawFd> = [0, 1, 2].into_iter().chain(listeners.raw_fds()).collect();
    send_fds(stream, &fds).map_err(|e| format!("cannot pass stdio: {e}"))?;
    // The spare has its own copies now; ours would keep the ports open after the kernel ends.
    drop(listeners);
    let mut writer = stream;
    writeln!(writer, "{request}").map_err(|e| e.to_string())?;
    let mut line = String::new();
    answers.read_line(&mut line).map_err(|e| e.to_string())?;
    let mut words = line.split_whitespace();
    match words.next() {
        Some("ok") => {
            let mut number = || words.next().and_then(|w| w.parse().ok());
            match (number(), number()) {
                (Some(pid), Some(group)) => Ok(Kernel { pid, group }),
                _ => Err(format!("bad answer {line:?}")),
            }
        }
        Some("no") => Err(line.trim_end()["no".len()..].trim().to_owned()),
        _ => Err("no answer".into()),
    }
}

/// Waits for the kernel to finish, passing it the signals meant for the kernel; returns its
/// exit code. If the kernel ends without saying so (killed, crashed), its process group (the
/// process running cells and what cells started) goes too, as it would have with a kernel that
/// Jupyter had started itself.
fn stand_in(answers: BufReader<UnixStream>, kernel: Kernel) -> ExitCode {
    forward_signals(kernel);
    let _ = answers.get_ref().set_read_timeout(None);
    for line in answers.lines() {
        let Ok(line) = line else { break };
        if let Some(code) = line.strip_prefix("exit ") {
            return ExitCode::from(code.trim().parse::<u8>().unwrap_or(1));
        }
    }
    // SAFETY: kill has no memory-safety preconditions; the group is the kernel's own.
    unsafe { libc::kill(-kernel.group, libc::SIGKILL) };
    eprintln!(
        "kettle: the kernel process (pid {}) ended without shutting down",
        kernel.pid
    );
    ExitCode::FAILURE
}

/// Signals that stop or interrupt a kernel, sent to the launcher by Jupyter or a terminal.
const FORWARDED: [libc::c_int; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];

/// Blocks [`FORWARDED`] in this (still single-threaded) process and passes each on from a
/// thread that waits for them: SIGINT to the kernel (an interrupt), the others to the kernel's
/// whole group (Jupyter sends them to the launcher's group, to end everything).
fn forward_signals(kernel: Kernel) {
    // SAFETY: the set is initialised by sigemptyset before use; pthread_sigmask and sigwait
    // only read it. Blocking before the thread starts makes the thread inherit the mask, so
    // the signals stay pending for sigwait instead of running their default action.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in FORWARDED {
            libc::sigaddset(&mut set, signal);
        }
        let mut previous: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut previous);
        let spawned = std::thread::Builder::new()
            .name("kettle-signals".into())
            .spawn(move || {
                loop {
                    let mut signal = 0;
                    if libc::sigwait(&set, &mut signal) == 0 {
                        let target = if signal == libc::SIGINT {
                            kernel.pid
                        } else {
                            -kernel.group
                        };
                        libc::kill(target, signal);
                    }
                }
            });
        if spawned.is_err() {
            // Then at least the signals act on the launcher as before.
            libc::pthread_sigmask(libc::SIG_SETMASK, &previous, std::ptr::null_mut());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The spare: `kettle spare`.

/// Starts a spare for the next kernel (a detached `kettle spare`), unless one exists or is
/// being started. Returns at once.
pub fn start_one() {
    start_for(environment());
}

/// Starts a spare for kernels that will be started with environment `env` (what `kettle lab`
/// does for the kernels of its Jupyter server, so that even the first one starts at once).
pub fn start_for(env: Vec<(OsString, OsString)>) {
    if !enabled(&env) {
        return;
    }
    let Some(place) = Place::of(&env) else { return };
    if try_lock(&place.lock).is_none() {
        return;
    }
    let (Ok(exe), Ok(log)) = (std::env::current_exe(), open_private(&place.log, true)) else {
        return;
    };
    let mut command = std::process::Command::new(exe);
    command
        .arg("spare")
        .env_clear()
        .envs(env)
        .current_dir(place.socket.parent().unwrap_or(Path::new("/")))
        .stdin(std::process::Stdio::null())
        .stdout(
            log.try_clone()
                .map_or_else(|_| std::process::Stdio::null(), Into::into),
        )
        .stderr(log);
    use std::os::unix::process::CommandExt;
    // SAFETY: setsid, fork and _exit are async-signal-safe and touch no memory of the parent.
    // A session and process group of its own: its group is what it kills when its launcher
    // goes. And not our child: this kernel kills its descendants when it shuts down, and the
    // spare must outlive it. The intermediate process exits at once; std's exec-error pipe is
    // still held by the grandchild, so spawn reports whether the spare's exec worked.
    unsafe {
        command.pre_exec(|| {
            libc::setsid();
            match libc::fork() {
                -1 => Err(std::io::Error::last_os_error()),
                0 => Ok(()),
                _ => libc::_exit(0),
            }
        });
    }
    if let Ok(mut intermediate) = command.spawn() {
        let _ = intermediate.wait();
    }
}

/// Opens (creating) a file of the spare directory for writing, never through a symbolic link.
fn open_private(path: &Path, truncate: bool) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(truncate)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// Why a waiting spare should end instead of waiting on.
fn reason_to_end(
    deadline: Instant,
    watched: Option<libc::pid_t>,
    key: Option<&str>,
    env: &[(OsString, OsString)],
) -> Option<&'static str> {
    // SAFETY: kill with signal 0 only checks that the process exists.
    if watched.is_some_and(|pid| unsafe { libc::kill(pid, 0) } != 0) {
        return Some("its Jupyter server ended");
    }
    if Instant::now() > deadline {
        return Some("nobody used it");
    }
    // The executable, the toolchain or evcxr's configuration changed: no launcher will match.
    if self::key(env).as_deref() != key {
        return Some("it is out of date");
    }
    None
}

/// `kettle spare`: prepares a kernel, waits for a launcher, then serves as its kernel.
pub fn run(mut config: EngineConfig) -> anyhow::Result<ExitCode> {
    let env = environment();
    let place = Place::of(&env).context("no private directory for spare kernels")?;
    let Some(mut lock) = try_lock(&place.lock) else {
        // Another spare for the same kernel exists or is starting.
        return Ok(ExitCode::SUCCESS);
    };
    // A process group of our own (start_for's intermediate process led the last one): it is
    // what this spare kills when its launcher goes, and what it renices.
    // SAFETY: getpgrp, getpid and setsid have no preconditions.
    unsafe {
        if libc::getpgrp() != libc::getpid() {
            libc::setsid();
        }
    }
    // Who holds the lock, for people (and tests) cleaning up.
    let _ = lock.set_len(0);
    let _ = write!(lock, "{}", std::process::id());
    crate::engine::workdir::use_persistent_slot();
    let niced = lower_priority_while_warming();
    let key = key(&env);
    let idle = std::env::var(IDLE_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .unwrap_or(DEFAULT_IDLE);
    let deadline = Instant::now() + idle;
    let watched: Option<libc::pid_t> = env
        .iter()
        .find(|(name, _)| name == "JPY_PARENT_PID")
        .and_then(|(_, pid)| pid.to_str()?.parse().ok());

    let on_idle = OnIdle::default();
    config.on_idle = on_idle.clone();
    let engine = Engine::start(config)?;
    std::thread::spawn(Engine::language_version);
    // The same reasons to end apply while the engine starts (which could hang: a cargo lock).
    let warming = std::sync::Arc::new(AtomicBool::new(true));
    {
        let (warming, key, env) = (warming.clone(), key.clone(), env.clone());
        std::thread::spawn(move || {
            while warming.load(Ordering::SeqCst) {
                if let Some(reason) = reason_to_end(deadline, watched, key.as_deref(), &env) {
                    eprintln!("kettle spare: ending while warming up: {reason}");
                    // SAFETY: kill has no memory-safety preconditions; 0 is our own group.
                    unsafe { libc::kill(0, libc::SIGKILL) };
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        });
    }
    // Blocks until evcxr is up and rust-analyzer has indexed std.
    engine.prepare();
    warming.store(false, Ordering::SeqCst);
    if !engine.is_ready() {
        // A launcher would get a kernel that fails every cell; better to start one itself.
        eprintln!("kettle spare: the engine did not start");
        engine.shutdown();
        return Ok(ExitCode::FAILURE);
    }

    let _ = std::fs::remove_file(&place.socket);
    let listener = UnixListener::bind(&place.socket)
        .with_context(|| format!("cannot listen on {}", place.socket.display()))?;
    let handover = loop {
        let Some(stream) = wait_for_launcher(&listener, || {
            reason_to_end(deadline, watched, key.as_deref(), &env)
        }) else {
            break None;
        };
        // A connection that does not bring a valid request does not use the spare up.
        match read_request(&stream) {
            Ok(request) => break Some((stream, request)),
            Err(error) => {
                let _ = writeln!(&stream, "no {error}");
            }
        }
    };
    drop(listener);
    let _ = std::fs::remove_file(&place.socket);
    // From here on, the next spare may start.
    drop(lock);
    let Some((stream, request)) = handover else {
        engine.shutdown();
        return Ok(ExitCode::SUCCESS);
    };
    serve_launcher(stream, request, engine, &on_idle, niced)
}

/// The nice value of this process.
fn niceness() -> libc::c_int {
    // SAFETY: getpriority has no memory-safety preconditions.
    unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }
}

/// Makes the spare's start-up (seconds of rust-analyzer and rustc) yield to a kernel running a
/// cell, whose timings it would otherwise disturb: nice +10 for the whole process group (every
/// thread, and the processes it starts). Only where that can be undone when a launcher takes
/// the spare (root, or an RLIMIT_NICE that allows it): a kernel must not stay at a lower
/// priority. Returns whether it did.
fn lower_priority_while_warming() -> bool {
    let base = niceness();
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit; geteuid has no preconditions.
    let can_undo = unsafe {
        libc::geteuid() == 0
            || (libc::getrlimit(libc::RLIMIT_NICE, &mut limit) == 0
                && limit.rlim_cur >= (20 - base) as libc::rlim_t)
    };
    // SAFETY: as above; PRIO_PGRP 0 is our own process group (we lead it, see `run`).
    can_undo && unsafe { libc::setpriority(libc::PRIO_PGRP, 0, base + 10) } == 0
}

/// The first connection from a process of ours; `None` once `end` gives a reason to stop.
fn wait_for_launcher(
    listener: &UnixListener,
    end: impl Fn() -> Option<&'static str>,
) -> Option<UnixStream> {
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    loop {
        let mut poll = libc::pollfd {
            fd: listener.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, as the count says.
        let ready = unsafe { libc::poll(&mut poll, 1, 1000) };
        if ready > 0
            && let Ok((stream, _)) = listener.accept()
            && peer_uid(&stream) == Some(uid)
        {
            return Some(stream);
        }
        if let Some(reason) = end() {
            eprintln!("kettle spare: ending: {reason}");
            return None;
        }
    }
}

fn peer_uid(stream: &UnixStream) -> Option<libc::uid_t> {
    let mut cred: libc::ucred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `cred`.
    let ok = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&raw mut cred).cast(),
            &mut len,
        )
    } == 0;
    ok.then_some(cred.uid)
}

/// A launcher's request: its stdio, connection (and the ports, if it bound them), directory,
/// environment and priority.
struct Request {
    stdio: Vec<OwnedFd>,
    listeners: Listeners,
    info: crate::wire::ConnectionInfo,
    cwd: PathBuf,
    env: Vec<(OsString, OsString)>,
    nice: libc::c_int,
}

/// Reads and checks a launcher's request (a few seconds at most).
fn read_request(stream: &UnixStream) -> Result<Request, String> {
    stream
        .set_read_timeout(Some(HANDOVER_TIMEOUT))
        .map_err(|e| e.to_string())?;
    let mut stdio = recv_fds(stream, 8).map_err(|e| format!("no stdio: {e}"))?;
    if stdio.len() < 3 {
        return Err(format!("{} descriptors instead of 3", stdio.len()));
    }
    let listeners = Listeners::from_fds(stdio.split_off(3))?;
    let mut line = String::new();
    BufReader::new(stream)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    let request: serde_json::Value =
        serde_json::from_str(&line).map_err(|e| format!("bad request: {e}"))?;
    let info =
        crate::wire::ConnectionInfo::from_json(request["connection"].as_str().unwrap_or_default())
            .map_err(|e| format!("bad connection file: {e}"))?;
    let cwd = PathBuf::from(request["cwd"].as_str().ok_or("no directory")?);
    let env = request["env"]
        .as_object()
        .ok_or("no environment")?
        .iter()
        .filter_map(|(k, v)| Some((k.into(), v.as_str()?.into())))
        .collect();
    let nice = request["nice"].as_i64().unwrap_or(0) as libc::c_int;
    Ok(Request {
        stdio,
        listeners,
        info,
        cwd,
        env,
        nice,
    })
}

/// Takes over the launcher's stdio, directory, environment and ports, and serves as its kernel.
fn serve_launcher(
    stream: UnixStream,
    request: Request,
    engine: Engine,
    on_idle: &OnIdle,
    niced: bool,
) -> anyhow::Result<ExitCode> {
    let mut answer = &stream;
    // SAFETY: dup2 between descriptors we own; std's handles refer to the numbers 0 and 1.
    unsafe {
        libc::dup2(request.stdio[0].as_raw_fd(), 0);
        libc::dup2(request.stdio[1].as_raw_fd(), 1);
    }
    let _ = crate::engine::redirect_stderr(request.stdio[2].as_raw_fd());
    drop(request.stdio);
    // SAFETY: setpriority has no memory-safety preconditions. Every thread of every process in
    // our group: the process running cells was started during the warm-up.
    if niced && unsafe { libc::setpriority(libc::PRIO_PGRP, 0, request.nice) } != 0 {
        eprintln!(
            "kettle: cannot restore the kernel's priority: {}",
            std::io::Error::last_os_error()
        );
    }
    if let Err(error) = std::env::set_current_dir(&request.cwd) {
        eprintln!(
            "kettle: cannot change to {}: {error}",
            request.cwd.display()
        );
    }
    let (set, unset) = difference(&environment(), &request.env);
    engine.adopt_environment(&request.cwd, &set, &unset);
    let session_name = request
        .env
        .iter()
        .find(|(name, _)| name == NOTEBOOK_ENV)
        .map(|(_, value)| value.as_os_str());
    engine.read_ahead(session_name, &request.cwd);
    *ENVIRONMENT.lock().unwrap_or_else(|p| p.into_inner()) = request.env;
    // The next restart gets a spare too.
    on_idle.set(start_one);

    // The launcher going away (killed by Jupyter) ends this kernel and what it started.
    static FINISHED: AtomicBool = AtomicBool::new(false);
    let watcher = stream.try_clone()?;
    stream.set_read_timeout(None)?;
    std::thread::Builder::new()
        .name("kettle-launcher".into())
        .spawn(move || {
            let mut rest = Vec::new();
            let _ = std::io::Read::read_to_end(&mut &watcher, &mut rest);
            if !FINISHED.load(Ordering::SeqCst) {
                // SAFETY: kill has no memory-safety preconditions; 0 is our process group
                // (this process, the one running cells, and what cells started).
                unsafe { libc::kill(0, libc::SIGKILL) };
            }
        })?;

    let result = crate::session::run_with_engine(&request.info, request.listeners, engine, || {
        // SAFETY: getpid and getpgrp have no preconditions.
        let (pid, group) = unsafe { (libc::getpid(), libc::getpgrp()) };
        let _ = writeln!(answer, "ok {pid} {group}");
    });
    FINISHED.store(true, Ordering::SeqCst);
    let code = match &result {
        Ok(()) => 0,
        Err(error) => {
            // Before "ok" this reaches the launcher, which starts a kernel itself.
            let _ = writeln!(answer, "no {error:#}");
            1
        }
    };
    let _ = writeln!(answer, "exit {code}");
    result.map(|()| ExitCode::SUCCESS)
}

/// What turns environment `from` into `to`: variables to set, variables to remove.
fn difference(
    from: &[(OsString, OsString)],
    to: &[(OsString, OsString)],
) -> (Vec<(String, String)>, Vec<String>) {
    let set = to
        .iter()
        .filter(|pair| !from.contains(pair))
        .filter_map(|(k, v)| Some((k.to_str()?.to_owned(), v.to_str()?.to_owned())))
        .collect();
    let unset = from
        .iter()
        .filter(|(name, _)| !to.iter().any(|(other, _)| other == name))
        .filter_map(|(name, _)| name.to_str().map(str::to_owned))
        .collect();
    (set, unset)
}

// ---------------------------------------------------------------------------------------------
// Passing descriptors over the socket.

/// A msghdr for one buffer and `space` bytes of control data; it points into its arguments.
fn message_header(iov: &mut libc::iovec, control: &mut [u64], space: usize) -> libc::msghdr {
    // SAFETY: msghdr is plain data, for which all zeroes is a valid value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    msg
}

/// Sends `fds` (with one byte of data) as SCM_RIGHTS.
fn send_fds(stream: &UnixStream, fds: &[RawFd]) -> std::io::Result<()> {
    let payload = [b'F'];
    let mut iov = libc::iovec {
        iov_base: payload.as_ptr() as *mut libc::c_void,
        iov_len: payload.len(),
    };
    let data_len = std::mem::size_of_val(fds);
    // SAFETY: CMSG_SPACE/CMSG_LEN are pure computations.
    let (space, len) = unsafe {
        (
            libc::CMSG_SPACE(data_len as u32) as usize,
            libc::CMSG_LEN(data_len as u32) as usize,
        )
    };
    // u64s: the control buffer must be aligned for cmsghdr.
    let mut control = vec![0u64; space.div_ceil(8)];
    // SAFETY: msghdr is plain data; every pointer in it refers to a live local buffer of the
    // stated length, and the header written through CMSG_FIRSTHDR lies within `control`.
    unsafe {
        let msg = message_header(&mut iov, &mut control, space);
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = len as _;
        std::ptr::copy_nonoverlapping(fds.as_ptr(), libc::CMSG_DATA(cmsg).cast(), fds.len());
        if libc::sendmsg(stream.as_raw_fd(), &msg, 0) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Receives up to `max` descriptors sent by [`send_fds`] (close-on-exec).
fn recv_fds(stream: &UnixStream, max: usize) -> std::io::Result<Vec<OwnedFd>> {
    let mut payload = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: payload.as_mut_ptr().cast(),
        iov_len: payload.len(),
    };
    let data_len = max * std::mem::size_of::<RawFd>();
    // SAFETY: a pure computation.
    let space = unsafe { libc::CMSG_SPACE(data_len as u32) } as usize;
    let mut control = vec![0u64; space.div_ceil(8)];
    let mut fds = Vec::new();
    // SAFETY: as in send_fds; the kernel fills at most `msg_controllen` bytes, and the
    // descriptors read out of each SCM_RIGHTS header are fresh ones now owned by us.
    unsafe {
        let mut msg = message_header(&mut iov, &mut control, space);
        if libc::recvmsg(stream.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let bytes = (*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
                for i in 0..bytes / std::mem::size_of::<RawFd>() {
                    fds.push(OwnedFd::from_raw_fd(data.add(i).read_unaligned()));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok(fds)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs.iter().map(|(k, v)| (k.into(), v.into())).collect()
    }

    #[test]
    fn the_key_ignores_what_jupyter_sets_per_kernel_only() {
        let base = env(&[("PATH", "/bin"), ("HOME", "/h")]);
        let jupyter = env(&[
            ("HOME", "/h"),
            ("PATH", "/bin"),
            ("JPY_PARENT_PID", "42"),
            ("JPY_SESSION_NAME", "x.ipynb"),
            ("PWD", "/notebooks"),
        ]);
        assert_eq!(key(&base), key(&jupyter));
        let other_path = env(&[("PATH", "/usr/bin"), ("HOME", "/h")]);
        assert_ne!(key(&base), key(&other_path));
        let more = env(&[("PATH", "/bin"), ("HOME", "/h"), ("RUSTFLAGS", "-O")]);
        assert_ne!(key(&base), key(&more));
    }

    #[test]
    fn the_difference_turns_one_environment_into_the_other() {
        let from = env(&[("A", "1"), ("B", "2"), ("JPY_SESSION_NAME", "old")]);
        let to = env(&[("A", "1"), ("B", "3"), ("C", "4")]);
        let (set, unset) = difference(&from, &to);
        assert_eq!(
            set,
            vec![("B".into(), "3".into()), ("C".into(), "4".into())]
        );
        assert_eq!(unset, vec!["JPY_SESSION_NAME".to_owned()]);
    }

    #[test]
    fn descriptors_cross_the_socket() {
        let (a, b) = UnixStream::pair().unwrap();
        let (mut r, w) = std::io::pipe().unwrap();
        send_fds(&a, &[w.as_raw_fd()]).unwrap();
        drop(w);
        let fds = recv_fds(&b, 3).unwrap();
        assert_eq!(fds.len(), 1);
        let mut file = std::fs::File::from(fds.into_iter().next().unwrap());
        file.write_all(b"through").unwrap();
        drop(file);
        let mut text = String::new();
        std::io::Read::read_to_string(&mut r, &mut text).unwrap();
        assert_eq!(text, "through");
    }
}
