//! `kettle lab`: the one command that opens the course in JupyterLab.
//!
//! It finds the workspace, makes sure a project-local virtualenv with JupyterLab exists
//! (`.venv/`, created only when missing), installs this binary's kernelspec into that venv
//! (Jupyter's `--sys-prefix`), and runs `jupyter lab` on the notebooks until Ctrl-C/SIGTERM,
//! which it forwards as one clean shutdown so Jupyter stops its kernels before exiting.

use crate::install;
use anyhow::{Context, Result, bail};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

/// Environment variable naming an existing (or to-be-created) venv to use instead of `.venv/`.
/// The tests point it at their own venv so they never create one inside the checkout.
pub const VENV_ENV: &str = "KETTLE_VENV";

/// Environment variable naming the Python used to create the venv (default `python3`).
pub const PYTHON_ENV: &str = "KETTLE_PYTHON";

/// What `kettle lab` was asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabOptions {
    /// Do not open a browser; Jupyter prints the URL (with its token) instead.
    pub no_browser: bool,
    /// Port for the server; Jupyter picks one (from 8888 up) when `None`.
    pub port: Option<u16>,
    /// Directory to open; defaults to `<workspace>/notebooks`.
    pub notebooks: Option<PathBuf>,
}

/// Runs `kettle lab` to completion and returns Jupyter's exit status.
pub fn run(options: &LabOptions) -> Result<ExitStatus> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let exe = install::current_exe()?;
    let root = find_workspace_root(&cwd)
        .or_else(|| exe.parent().and_then(find_workspace_root))
        .unwrap_or_else(|| cwd.clone());

    let venv = match std::env::var_os(VENV_ENV).filter(|v| !v.is_empty()) {
        Some(venv) => std::path::absolute(PathBuf::from(venv))?,
        None => root.join(".venv"),
    };
    ensure_venv(&venv, &root)?;

    // The venv's sys.prefix is the venv itself, so this is `kettle install --sys-prefix` for it.
    let spec = install::install_into(
        &venv.join("share").join("jupyter"),
        install::DEFAULT_NAME,
        install::DEFAULT_DISPLAY_NAME,
        &exe,
    )?;
    eprintln!("kettle: kernelspec installed in {}", spec.display());
    warm_course_dependencies(&exe);

    let notebooks = match &options.notebooks {
        Some(dir) => std::path::absolute(dir)?,
        None => root.join("notebooks"),
    };
    std::fs::create_dir_all(&notebooks).with_context(|| {
        format!(
            "cannot create the notebooks directory {}",
            notebooks.display()
        )
    })?;

    let no_browser = options.no_browser || is_headless();
    let mut command = jupyter_command(&venv, &notebooks, no_browser, options.port);
    eprintln!(
        "kettle: starting JupyterLab on {} (Ctrl-C stops it)",
        notebooks.display()
    );
    // The first kernel need not wait for evcxr either: a spare for the kernels the server will
    // start (with the server's environment; it ends with the server).
    let mut env: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    for (name, value) in command.get_envs() {
        env.retain(|(existing, _)| existing != name);
        if let Some(value) = value {
            env.push((name.to_owned(), value.to_owned()));
        }
    }
    supervise(&mut command, move |server| {
        env.push(("JPY_PARENT_PID".into(), server.to_string().into()));
        crate::spare::start_for(env);
    })
}

/// The nearest ancestor of `start` (itself included) that is the kettle workspace: a
/// `Cargo.toml` with a `[workspace]` table next to a `kernel/` directory.
pub fn find_workspace_root(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|dir| is_workspace_root(dir))
        .map(Path::to_path_buf)
}

fn is_workspace_root(dir: &Path) -> bool {
    dir.join("kernel").is_dir()
        && std::fs::read_to_string(dir.join("Cargo.toml"))
            .map(|toml| toml.lines().any(|line| line.trim() == "[workspace]"))
            .unwrap_or(false)
}

fn venv_bin(venv: &Path, program: &str) -> PathBuf {
    venv.join("bin").join(program)
}

/// Builds the course's dependencies once per machine (and again when kettle or the compiler
/// changed), in a `kettle warm` child process: it must not hold a kernel work slot while
/// JupyterLab runs. A failure (no network for crates.io, say) only costs time later.
fn warm_course_dependencies(exe: &Path) {
    if crate::engine::warm::is_warm() {
        return;
    }
    eprintln!("kettle: building the course's dependencies (first run only, a few minutes)");
    match Command::new(exe).arg("warm").status() {
        Ok(status) if status.success() => {}
        Ok(status) => eprintln!(
            "kettle: warming dependencies failed ({status}); notebooks will build them on first use"
        ),
        Err(error) => eprintln!("kettle: cannot run `kettle warm`: {error}"),
    }
}

/// Creates the venv and installs JupyterLab into it, each step only if it is missing, so a
/// second `kettle lab` starts at once and works offline.
fn ensure_venv(venv: &Path, root: &Path) -> Result<()> {
    if !venv_bin(venv, "python").exists() {
        let python = std::env::var_os(PYTHON_ENV).unwrap_or_else(|| "python3".into());
        eprintln!("kettle: creating a Python virtualenv in {}", venv.display());
        run_step(
            Command::new(&python).arg("-m").arg("venv").arg(venv),
            "python3 -m venv",
        )
        .context(
            "kettle lab needs Python 3 with the venv module (Debian: apt install python3-venv)",
        )?;
    }
    if !venv_bin(venv, "jupyter-lab").exists() {
        let requirements = root
            .join("tests")
            .join("python")
            .join("requirements-lab.txt");
        let mut pip = Command::new(venv_bin(venv, "python"));
        pip.args(["-m", "pip", "install", "--disable-pip-version-check"]);
        if requirements.exists() {
            pip.arg("-r").arg(&requirements);
        } else {
            // Running from outside the checkout (an installed binary): no pinned list to use.
            pip.arg("jupyterlab");
        }
        eprintln!(
            "kettle: installing JupyterLab into {} (once)",
            venv.display()
        );
        run_step(&mut pip, "pip install jupyterlab")?;
    }
    Ok(())
}

fn run_step(command: &mut Command, what: &str) -> Result<()> {
    let status = command
        .status()
        .with_context(|| format!("cannot start `{what}`"))?;
    if !status.success() {
        bail!("`{what}` failed ({status})");
    }
    Ok(())
}

/// No display to open a browser on: Linux without X11/Wayland (SSH, containers, CI).
fn is_headless() -> bool {
    let has = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    cfg!(target_os = "linux") && !has("DISPLAY") && !has("WAYLAND_DISPLAY")
}

/// The `jupyter lab` command line and environment.
fn jupyter_command(venv: &Path, notebooks: &Path, no_browser: bool, port: Option<u16>) -> Command {
    let mut command = Command::new(venv_bin(venv, "jupyter"));
    command.arg("lab");
    command.arg(format!("--ServerApp.root_dir={}", notebooks.display()));
    if no_browser {
        command.arg("--no-browser");
    }
    // SAFETY: geteuid cannot fail and has no side effects.
    if unsafe { libc::geteuid() } == 0 {
        // Containers and CI machines often run as root; Jupyter refuses that without this flag.
        command.arg("--allow-root");
    }
    if let Some(port) = port {
        // An explicit port that is taken should fail loudly, not move to the next free one.
        command
            .arg(format!("--port={port}"))
            .arg("--ServerApp.port_retries=0");
    }
    // Jupyter searches JUPYTER_PATH before the user's data dir and the venv's; putting the
    // venv first means the spec we just wrote wins over a stale `kettle install --user`.
    let venv_share = venv.join("share").join("jupyter");
    let mut paths = vec![venv_share];
    if let Some(existing) = std::env::var_os("JUPYTER_PATH") {
        paths.extend(std::env::split_paths(&existing));
    }
    if let Ok(joined) = std::env::join_paths(paths) {
        command.env("JUPYTER_PATH", joined);
    }
    // As if the venv were activated, so `!pip` and kernels see the same Python.
    command.env("VIRTUAL_ENV", venv);
    let mut path = OsString::from(venv.join("bin"));
    if let Some(existing) = std::env::var_os("PATH") {
        path.push(":");
        path.push(existing);
    }
    command.env("PATH", path);
    command
}

/// Runs Jupyter and turns the first Ctrl-C/SIGTERM/SIGHUP into one SIGTERM to it, so that it
/// shuts its kernels down and exits; a second signal, or a server that has not stopped after a
/// grace period, gets SIGKILL.
fn supervise(command: &mut Command, started: impl FnOnce(u32)) -> Result<ExitStatus> {
    use std::os::unix::process::CommandExt;
    // Own process group: the terminal's Ctrl-C then reaches only us, and Jupyter gets a single
    // SIGTERM instead of SIGINT, which would make it ask "Shutdown this Jupyter server (y/[n])?".
    command.process_group(0);
    #[cfg(target_os = "linux")]
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent; it only asks the
    // kernel to SIGTERM Jupyter if we die without forwarding (e.g. SIGKILL).
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    signals::install();
    let mut child = command.spawn().context("cannot start jupyter lab")?;
    let pid = child.id() as libc::pid_t;
    started(child.id());
    let mut terminated_at: Option<Instant> = None;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        let received = signals::take_count();
        if received > 0 {
            if terminated_at.is_none() {
                eprintln!("kettle: stopping JupyterLab (Ctrl-C again to kill it)");
                // SAFETY: plain kill(2) on the child we spawned and have not reaped yet.
                unsafe { libc::kill(pid, libc::SIGTERM) };
                terminated_at = Some(Instant::now());
            } else {
                kill_group(pid);
            }
        }
        if terminated_at.is_some_and(|t| t.elapsed() > Duration::from_secs(20)) {
            eprintln!("kettle: JupyterLab did not stop within 20 s; killing it");
            kill_group(pid);
            terminated_at = Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn kill_group(pid: libc::pid_t) {
    // SAFETY: kill(2) on the process group we created for the child (pgid == child pid).
    unsafe { libc::kill(-pid, libc::SIGKILL) };
}

/// Counts SIGINT/SIGTERM/SIGHUP in an atomic; the supervising loop polls it. A handler may
/// only do async-signal-safe work, and an atomic add is that.
mod signals {
    use std::sync::atomic::{AtomicUsize, Ordering};

    static RECEIVED: AtomicUsize = AtomicUsize::new(0);

    extern "C" fn on_signal(_signal: libc::c_int) {
        RECEIVED.fetch_add(1, Ordering::SeqCst);
    }

    pub fn install() {
        for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            // SAFETY: a zeroed sigaction with an empty mask and our handler is valid; the
            // handler only touches an atomic.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_signal as *const () as libc::sighandler_t;
                action.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut action.sa_mask);
                libc::sigaction(signal, &action, std::ptr::null_mut());
            }
        }
    }

    pub fn take_count() -> usize {
        RECEIVED.swap(0, Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_this_workspace_from_a_nested_directory() {
        let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR")); // .../kernel
        let root = find_workspace_root(&manifest_dir.join("src")).expect("workspace root");
        assert_eq!(root, manifest_dir.parent().unwrap());
        assert!(root.join("kernel").is_dir());
    }

    #[test]
    fn kernel_package_dir_alone_is_not_the_root() {
        // kernel/Cargo.toml is a package manifest, not the workspace: walking up must go on.
        let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        assert!(!is_workspace_root(manifest_dir));
    }

    #[test]
    fn jupyter_command_passes_port_and_no_browser() {
        let command = jupyter_command(Path::new("/v"), Path::new("/nb"), true, Some(9999));
        let args: Vec<_> = command
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(command.get_program(), Path::new("/v/bin/jupyter"));
        let expected = ["lab", "--ServerApp.root_dir=/nb", "--no-browser"]
            .into_iter()
            // SAFETY: geteuid cannot fail and has no side effects.
            .chain((unsafe { libc::geteuid() } == 0).then_some("--allow-root"))
            .chain(["--port=9999", "--ServerApp.port_retries=0"]);
        assert_eq!(args, expected.collect::<Vec<_>>());
        let jupyter_path = command
            .get_envs()
            .find(|(k, _)| *k == "JUPYTER_PATH")
            .and_then(|(_, v)| v)
            .expect("JUPYTER_PATH set");
        assert!(
            jupyter_path
                .to_string_lossy()
                .starts_with("/v/share/jupyter")
        );
    }
}
