//! Spare kernels (issue 7): a kernel started with `--spare` prepares a spare kernel once idle;
//! the next `kettle kernel --spare` hands its connection file to it and stands in for it.

use crate::util::{Kernel, Launch, temp_dir, write_notebook};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Spares of one test: their own directory, evcxr configuration and watchdog (this process).
struct Spares {
    root: PathBuf,
    /// Created by the kernel (it must be private: mode 0700).
    dir: PathBuf,
    config: PathBuf,
}

impl Spares {
    fn new() -> Spares {
        let root = temp_dir("kettle-spares");
        let config = root.join("evcxr-config");
        std::fs::create_dir_all(&config).expect("create evcxr config dir");
        Spares {
            dir: root.join("spares"),
            root,
            config,
        }
    }

    /// A launch with `--spare`, sharing this test's spares; `session` is what Jupyter would
    /// put in JPY_SESSION_NAME (not part of what a spare must match).
    fn launch(&self, cwd: &Path, session: &str) -> Launch {
        Launch {
            args: vec!["--spare".into()],
            env: self.env(session),
            cwd: Some(cwd.to_owned()),
        }
    }

    fn env(&self, session: &str) -> Vec<(String, String)> {
        vec![
            ("KETTLE_SPARE_DIR".into(), self.dir.display().to_string()),
            ("EVCXR_CONFIG_DIR".into(), self.config.display().to_string()),
            ("KETTLE_SPARE_IDLE".into(), "300".into()),
            // Spares end with the process named here, like with a Jupyter server.
            ("JPY_PARENT_PID".into(), std::process::id().to_string()),
            ("JPY_SESSION_NAME".into(), session.into()),
        ]
    }

    /// The pid of the spare that holds the lock, if one does and still runs.
    fn spare_pid(&self) -> Option<i32> {
        std::fs::read_dir(&self.dir)
            .ok()?
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".lock"))
            .filter_map(|e| std::fs::read_to_string(e.path()).ok()?.trim().parse().ok())
            .find(|&pid| is_spare(pid))
    }

    /// Waits until a spare listens (at most `timeout`): its socket exists and it runs.
    fn wait_ready(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let socket = std::fs::read_dir(&self.dir)
                .map(|entries| {
                    entries
                        .flatten()
                        .any(|e| e.file_name().to_string_lossy().ends_with(".sock"))
                })
                .unwrap_or(false);
            if socket && self.spare_pid().is_some() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Starts a kernel, lets it prepare a spare, and shuts it down (which must spare the spare).
    fn prepare(&self) {
        let cwd = temp_dir("kettle-spare-first");
        let mut first = Kernel::start_with(&self.launch(&cwd, "first.ipynb"));
        first.assert_result("1", "1");
        assert!(
            self.wait_ready(Duration::from_secs(120)),
            "no spare appeared\n{}",
            first.stderr_tail()
        );
        first.shut_down(false);
    }
}

/// Whether `pid` runs `kettle spare` (pids of old lock files may have been reused).
fn is_spare(pid: i32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|cmdline| cmdline.split(|&b| b == 0).nth(1) == Some(b"spare".as_slice()))
        && !gone_within(pid, Duration::ZERO)
}

impl Drop for Spares {
    fn drop(&mut self) {
        while let Some(pid) = self.spare_pid() {
            // SAFETY: kill(2) on a spare this test's kernels started.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            gone_within(pid, Duration::from_secs(5));
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Field `n` (after the command name) of /proc/`pid`/stat.
fn stat_field(pid: i32, n: usize) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(
        stat.rsplit(')')
            .next()?
            .split_whitespace()
            .nth(n)?
            .to_owned(),
    )
}

/// The pid of the process serving `k`: the parent of the process that runs cells.
fn kernel_process(k: &mut Kernel) -> i32 {
    let c = k.execute_ok("println!(\"{}\", std::os::unix::process::parent_id());");
    c.stream("stdout").trim().parse().expect("a pid")
}

fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid, 0) == 0 }
}

fn gone_within(pid: i32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        // A zombie still answers kill(0): look at its state.
        let zombie = stat_field(pid, 0).is_some_and(|state| state == "Z");
        if !alive(pid) || zombie {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_new_kernel_takes_over_the_spare_in_its_own_directory_and_environment() {
    let spares = Spares::new();
    spares.prepare();

    // Launches that would not get the same kernel from a spare start their own; the spare
    // stays for the next one. Another environment:
    let cwd = temp_dir("kettle-spare-second");
    let mut other = spares.launch(&cwd, "other.ipynb");
    other.env.push(("KETTLE_TEST_DIFFERENT".into(), "1".into()));
    // A directory with an evcxr.toml (evcxr reads it from the current directory):
    let configured = temp_dir("kettle-spare-configured");
    std::fs::write(configured.join("evcxr.toml"), "").expect("write evcxr.toml");
    // A directory whose name is not UTF-8 (the request to a spare is JSON):
    let odd = temp_dir("kettle-spare-odd").join(std::ffi::OsStr::from_bytes(b"caf\xe9"));
    std::fs::create_dir_all(&odd).expect("create a non-UTF-8 directory");
    for launch in [
        other,
        spares.launch(&configured, "configured.ipynb"),
        spares.launch(&odd, "odd.ipynb"),
    ] {
        let mut own = Kernel::start_with(&launch);
        assert_eq!(
            kernel_process(&mut own),
            own.pid() as i32,
            "a launcher in {:?} used the spare",
            launch.cwd
        );
        drop(own);
        assert!(spares.wait_ready(Duration::ZERO), "the spare is gone");
    }
    // It warms up at a lower priority where that can be undone (as root here).
    let spare = spares.spare_pid().expect("the spare's pid");
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        assert_eq!(
            stat_field(spare, 16).as_deref(),
            Some("10"),
            "the spare's nice value"
        );
    }

    // The notebook it is started for declares a crate: added before the first cell, as in a
    // kernel started directly (`read_ahead`).
    write_notebook(&cwd.join("second.ipynb"), &[":dep itoa = \"1\""]);
    let mut k = Kernel::start_with(&spares.launch(&cwd, "second.ipynb"));
    let kernel = kernel_process(&mut k);
    assert_ne!(kernel, k.pid() as i32, "the launcher did not hand over");
    let c = k.execute_ok(
        "println!(\"{}\", std::env::current_dir().unwrap().display());\n\
         println!(\"{}\", std::env::var(\"JPY_SESSION_NAME\").unwrap());",
    );
    let expected = format!(
        "{}\n{}\n",
        cwd.canonicalize().unwrap().display(),
        "second.ipynb"
    );
    assert_eq!(c.stream("stdout"), expected, "{}", c.describe());
    k.assert_result("let kept = 41; kept + 1", "42");
    k.assert_result("itoa::Buffer::new().format(kept).to_owned()", "\"41\"");
    // Cells run at the launcher's priority (nice 0 here).
    let c = k.execute_ok(
        "let stat = std::fs::read_to_string(\"/proc/self/stat\").unwrap();\n\
         println!(\"{}\", stat.rsplit(')').next().unwrap().split_whitespace().nth(16).unwrap());",
    );
    assert_eq!(c.stream("stdout"), "0\n", "{}", c.describe());

    // A terminal's Ctrl-C reaches the launcher; the kernel behind it gets it.
    let launcher = k.pid();
    k.interrupt_sleeping_cell_with_sigint_to(launcher);
    k.assert_result("1 + 1", "2");

    // Shutdown ends the kernel, and the launcher with its exit code.
    k.shut_down(false);
    assert!(
        gone_within(kernel, Duration::from_secs(10)),
        "the kernel outlived its launcher"
    );
}

/// Starts a kernel that takes over a spare, runs a cell that starts a `sleep`, ends the launcher
/// with `end(launcher pid)` and checks that the kernel, the process running cells and the
/// `sleep` all go.
fn ending_the_launcher_ends_everything(end: impl FnOnce(libc::pid_t)) {
    let spares = Spares::new();
    spares.prepare();
    let cwd = temp_dir("kettle-spare-kill");
    let mut k = Kernel::start_with(&spares.launch(&cwd, "kill.ipynb"));
    let kernel = kernel_process(&mut k);
    assert_ne!(kernel, k.pid() as i32, "the launcher did not hand over");
    let c = k.execute_ok(
        "let sleeper = std::process::Command::new(\"sleep\").arg(\"300\").spawn().unwrap();\n\
         println!(\"{} {}\", std::process::id(), sleeper.id());",
    );
    let pids: Vec<i32> = c
        .stream("stdout")
        .split_whitespace()
        .map(|p| p.parse().expect("a pid"))
        .collect();
    end(k.pid() as libc::pid_t);
    for pid in [kernel, pids[0], pids[1]] {
        assert!(
            gone_within(pid, Duration::from_secs(10)),
            "process {pid} survived its launcher"
        );
    }
}

#[test]
fn killing_the_launcher_ends_the_kernel_and_what_its_cells_started() {
    // SAFETY: kill(2) on our own child's pid.
    ending_the_launcher_ends_everything(|launcher| unsafe {
        libc::kill(launcher, libc::SIGKILL);
    });
}

#[test]
fn sigterm_to_the_launchers_group_ends_the_kernel_and_what_its_cells_started() {
    // What jupyter_client does when a kernel does not stop in time: SIGTERM to the launcher's
    // group. The kernel behind it is in a group of its own, which the launcher must pass it to.
    // SAFETY: kill(2) on our own child's pid.
    ending_the_launcher_ends_everything(|launcher| unsafe {
        libc::kill(launcher, libc::SIGTERM);
    });
}

#[test]
fn a_spare_whose_engine_cannot_start_is_not_offered() {
    let spares = Spares::new();
    std::fs::write(spares.config.join("evcxr.toml"), "this is [not toml").expect("write config");
    let mut spare = std::process::Command::new(env!("CARGO_BIN_EXE_kettle"))
        .arg("spare")
        .envs(spares.env("none.ipynb"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn kettle spare");
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = spare.try_wait().expect("try_wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "the spare kept waiting");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(!status.success(), "{status}");
    let sockets = std::fs::read_dir(&spares.dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".sock"))
        .count();
    assert_eq!(sockets, 0, "a broken spare listened");
}
