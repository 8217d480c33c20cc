//! Spare kernels (issue 7): a kernel started with `--spare` prepares a spare kernel once idle;
//! the next `kettle kernel --spare` hands its connection file to it and stands in for it.

use crate::util::{Kernel, Launch, temp_dir};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Spares of one test: their own directory, evcxr configuration and watchdog (this process).
struct Spares {
    dir: PathBuf,
    config: PathBuf,
}

impl Spares {
    fn new() -> Spares {
        let dir = temp_dir("kettle-spares");
        let config = dir.join("evcxr-config");
        std::fs::create_dir_all(&config).expect("create evcxr config dir");
        Spares { dir, config }
    }

    /// A launch with `--spare`, sharing this test's spares; `session` is what Jupyter would
    /// put in JPY_SESSION_NAME (not part of what a spare must match).
    fn launch(&self, cwd: &Path, session: &str) -> Launch {
        Launch {
            args: vec!["--spare".into()],
            env: vec![
                ("KETTLE_SPARE_DIR".into(), self.dir.display().to_string()),
                ("EVCXR_CONFIG_DIR".into(), self.config.display().to_string()),
                ("KETTLE_SPARE_IDLE".into(), "300".into()),
                // Spares end with the process named here, like with a Jupyter server.
                ("JPY_PARENT_PID".into(), std::process::id().to_string()),
                ("JPY_SESSION_NAME".into(), session.into()),
            ],
            cwd: Some(cwd.to_owned()),
        }
    }

    /// Waits until a spare listens (at most `timeout`).
    fn wait_ready(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let listening = std::fs::read_dir(&self.dir)
                .map(|entries| {
                    entries
                        .flatten()
                        .any(|e| e.file_name().to_string_lossy().ends_with(".sock"))
                })
                .unwrap_or(false);
            if listening {
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

impl Drop for Spares {
    fn drop(&mut self) {
        // The lock files hold the spares' pids.
        for entry in std::fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            if entry.file_name().to_string_lossy().ends_with(".lock")
                && let Ok(pid) = std::fs::read_to_string(entry.path())
                && let Ok(pid) = pid.trim().parse::<libc::pid_t>()
            {
                // SAFETY: kill(2) on a process this test started.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
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
    while Instant::now() < deadline {
        // A zombie still answers kill(0): look at its state.
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let zombie = state
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z'));
        if !alive(pid) || zombie {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn a_new_kernel_takes_over_the_spare_in_its_own_directory_and_environment() {
    let spares = Spares::new();
    spares.prepare();

    // Another environment needs another kernel: this launcher must not take the spare.
    let cwd = temp_dir("kettle-spare-second");
    let mut other = spares.launch(&cwd, "other.ipynb");
    other.env.push(("KETTLE_TEST_DIFFERENT".into(), "1".into()));
    let mut different = Kernel::start_with(&other);
    assert_eq!(
        kernel_process(&mut different),
        different.pid() as i32,
        "a launcher with another environment used the spare"
    );
    drop(different);
    assert!(spares.wait_ready(Duration::ZERO), "the spare is gone");

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
    // The spare warmed up at a lower priority; cells run at the launcher's (nice 0 here).
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

#[test]
fn killing_the_launcher_ends_the_kernel_and_what_its_cells_started() {
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
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(
        unsafe { libc::kill(k.pid() as libc::pid_t, libc::SIGKILL) },
        0
    );
    for pid in [kernel, pids[0], pids[1]] {
        assert!(
            gone_within(pid, Duration::from_secs(10)),
            "process {pid} survived its launcher"
        );
    }
}
