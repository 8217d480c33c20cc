//! Finding the `kettle-worker` executable ([`worker_path`]) that notebook cells run as child
//! processes, without any configuration.
//!
//! A notebook cell is compiled into a shared library inside the kernel, so "run this in another
//! process" needs a real executable. kettle-lab knows at compile time where its own sources are
//! (`CARGO_MANIFEST_DIR`), so on first use it asks cargo to build the worker from them into a
//! cache directory. Cargo then does what it is good at: nothing when the worker is up to date,
//! a rebuild of this std-only crate (a few seconds) when its sources changed.

use std::ffi::OsString;
use std::io;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// Set this to a `kettle-worker` executable to use it instead of building one.
pub const WORKER_VAR: &str = "KETTLE_WORKER";

/// The workspace this copy of kettle-lab was compiled in. Cargo does not rebuild a crate when
/// only its workspace moved, so this can name a checkout that is gone: see [`workspace_manifest`].
const WORKSPACE_MANIFEST: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.toml");

/// The kettle workspace to build the worker from: the one around the current directory (a
/// notebook's, or a test's), else the one this crate was compiled in.
fn workspace_manifest() -> PathBuf {
    if let Ok(cwd) = std::env::current_dir() {
        for dir in cwd.ancestors() {
            let manifest = dir.join("Cargo.toml");
            if manifest.is_file() && dir.join("crates/kettle-lab/Cargo.toml").is_file() {
                return manifest;
            }
        }
    }
    PathBuf::from(WORKSPACE_MANIFEST)
}

/// The path of the `kettle-worker` executable: `$KETTLE_WORKER` if set, else built once per
/// process with `cargo build --release` into `~/.cache/kettle/worker-target` (or
/// `$XDG_CACHE_HOME/kettle/worker-target`).
///
/// ```no_run
/// let out = std::process::Command::new(kettle_lab::worker_path()?)
///     .args(["muchcpu", "1000"])
///     .output()?;
/// assert!(out.status.success());
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn worker_path() -> io::Result<PathBuf> {
    static FOUND: OnceLock<PathBuf> = OnceLock::new();
    // Serialises the first calls: two threads asking at once build once.
    static BUILDING: Mutex<()> = Mutex::new(());
    if let Some(path) = FOUND.get() {
        return Ok(path.clone());
    }
    let _one_at_a_time = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(path) = FOUND.get() {
        return Ok(path.clone());
    }
    let path = match std::env::var_os(WORKER_VAR) {
        Some(path) if !path.is_empty() => {
            let path = PathBuf::from(path);
            if !path.is_file() {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("${WORKER_VAR} is {}, which is not a file", path.display()),
                ));
            }
            path
        }
        _ => build()?,
    };
    Ok(FOUND.get_or_init(|| path).clone())
}

/// A `Command` for `kettle-worker <subcommand>`.
pub fn worker_command(subcommand: &str) -> io::Result<Command> {
    let mut command = Command::new(worker_path()?);
    command.arg(subcommand);
    Ok(command)
}

fn cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("kettle").join("worker-target")
}

fn build() -> io::Result<PathBuf> {
    let target = cache_dir();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut command = Command::new(cargo);
    command
        .args(["build", "--release", "--quiet", "-p", "kettle-lab"])
        .args(["--bin", "kettle-worker"])
        .arg("--manifest-path")
        .arg(workspace_manifest())
        .env("CARGO_TARGET_DIR", &target)
        // Compiled like a cell (evcxr builds cells at opt-level 2, incrementally; incremental
        // builds generate different code for some loops), so a function the worker and a cell
        // share, such as MuchCPU's, is the same machine code in a process and on a thread.
        .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "2")
        .env("CARGO_PROFILE_RELEASE_INCREMENTAL", "true");
    // We may run inside cargo (tests) or inside the kernel's evaluation process: settings meant
    // for *that* build must not leak into this one.
    for var in [
        "CARGO_BUILD_TARGET_DIR",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
    ] {
        command.env_remove(var);
    }
    let out = command.output().map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("could not run cargo to build kettle-worker (set ${WORKER_VAR}?): {e}"),
        )
    })?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "cargo could not build kettle-worker:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let exe = target
        .join("release")
        .join(format!("kettle-worker{}", std::env::consts::EXE_SUFFIX));
    if exe.is_file() {
        Ok(exe)
    } else {
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "cargo built kettle-worker, but {} is missing",
                exe.display()
            ),
        ))
    }
}
