//! stdin on demand: notices that the running cell waits on stdin and asks the frontend.
//!
//! A cell's fd 0 is a socket from the kernel (see [`super::runtime`]). While a cell runs, a
//! watcher looks every [`POLL`] at `/proc/<child>/task/*/syscall`: a thread blocked in `read`
//! on fd 0 is waiting for input, whichever thread it is. The watcher then sends an
//! `input_request` through the cell (or, when the request did not allow stdin, ends the cell's
//! input so the read sees end of file at once). `evcxr_input`'s explicit requests
//! (`EVCXR_INPUT_REQUEST:` lines, with a prompt and password flag) take the same path.
//!
//! Linux only. Readers waiting in epoll (async runtimes) are not seen; they can use an
//! explicit request.

use super::link::{Shared, answer_stdin, unread_input};
use super::{Event, StreamName};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc::channel;
use std::time::Duration;

const POLL: Duration = Duration::from_millis(15);

/// What the watcher needs to know about the running cell.
#[derive(Default)]
pub(super) struct Watch {
    pub active: AtomicBool,
    pub allow_stdin: AtomicBool,
    pub child_pid: AtomicU32,
}

/// The `read` system call's number, and the form of the fd argument, in
/// `/proc/<pid>/task/<tid>/syscall`.
#[cfg(target_arch = "x86_64")]
const READ_SYSCALLS: &[&str] = &["0", "19"]; // read, readv
#[cfg(target_arch = "aarch64")]
const READ_SYSCALLS: &[&str] = &["63", "65"]; // read, readv
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const READ_SYSCALLS: &[&str] = &[];

/// Threads of `pid` blocked reading fd 0.
fn stdin_readers(pid: u32) -> HashSet<u32> {
    let mut found = HashSet::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return found;
    };
    for task in tasks.flatten() {
        let Some(tid) = task
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(syscall) = std::fs::read_to_string(task.path().join("syscall")) else {
            continue;
        };
        let mut fields = syscall.split_whitespace();
        if let (Some(number), Some(fd)) = (fields.next(), fields.next())
            && READ_SYSCALLS.contains(&number)
            && fd == "0x0"
        {
            found.insert(tid);
        }
    }
    found
}

pub(super) fn spawn_watcher(shared: Arc<Shared>, watch: Arc<Watch>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("kettle-stdin-watch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(POLL);
                if !watch.active.load(Ordering::SeqCst) {
                    continue;
                }
                let explicit = shared.cell().input_request.take();
                if let Some((prompt, password)) = explicit {
                    ask(&shared, &watch, prompt, password);
                    continue;
                }
                if !shared.cell().child_running
                    || stdin_readers(watch.child_pid.load(Ordering::SeqCst)).is_empty()
                    || unread_input(&shared) > 0
                {
                    continue;
                }
                // A read waits and everything we sent has been read. An explicit request may
                // be on its way for this very read: give it a moment, so the frontend is asked
                // once, with the prompt.
                std::thread::sleep(POLL);
                let explicit = shared.cell().input_request.take();
                let (prompt, password) = explicit.unwrap_or_default();
                ask(&shared, &watch, prompt, password);
            }
        })?;
    Ok(())
}

/// Asks the frontend for a line (or refuses at once) and answers the cell's stdin.
fn ask(shared: &Shared, watch: &Watch, prompt: String, password: bool) {
    if !watch.allow_stdin.load(Ordering::SeqCst) {
        shared
            .sink
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .stream(
                StreamName::Stderr,
                "[kettle: this cell reads stdin, but the frontend did not allow input \
             (allow_stdin is false): the read sees end of file]\n"
                    .to_owned(),
                false,
            );
        answer_stdin(shared, None);
        return;
    }
    let (reply, answer) = channel();
    shared.sink.lock().unwrap_or_else(|p| p.into_inner()).event(
        Event::InputRequest {
            prompt,
            password,
            reply,
        },
        false,
    );
    // Wait for the frontend, but not past the end of the cell (an interrupt ends it).
    loop {
        match answer.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => {
                answer_stdin(shared, line);
                return;
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                answer_stdin(shared, None);
                return;
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                if !watch.active.load(Ordering::SeqCst) {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_blocked_reading_stdin_is_found() {
        // A real process blocked in read(0): `sleep` would not do; `cat` reads its stdin.
        let mut cat = std::process::Command::new("cat")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("cat");
        let mut found = HashSet::new();
        for _ in 0..200 {
            found = stdin_readers(cat.id());
            if !found.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = cat.kill();
        let _ = cat.wait();
        assert!(
            found.contains(&cat.id()),
            "cat's main thread should be blocked in read(0)"
        );
    }

    #[test]
    fn a_process_not_reading_stdin_is_not_reported() {
        let mut sleeper = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .expect("sleep");
        std::thread::sleep(Duration::from_millis(100));
        let found = stdin_readers(sleeper.id());
        let _ = sleeper.kill();
        let _ = sleeper.wait();
        assert!(found.is_empty());
    }
}
