//! Control channel: `shutdown_request` and `interrupt_request`, each on its own fresh kernel
//! because both end or disturb it.

use crate::util::{Channel, Kernel};
use serde_json::json;
use std::time::Duration;

fn shutdown_replies_echoes_restart_and_exits_cleanly(restart: bool) {
    Kernel::start().shut_down(restart);
}

#[test]
fn shutdown_request_replies_and_the_process_exits_zero() {
    shutdown_replies_echoes_restart_and_exits_cleanly(false);
}

#[test]
fn shutdown_request_echoes_the_restart_flag() {
    shutdown_replies_echoes_restart_and_exits_cleanly(true);
}

#[test]
fn interrupt_stops_an_endless_loop_and_the_kernel_keeps_working() {
    let mut k = Kernel::start();
    let id = k.send_execute(json!({ "code": "println!(\"looping\");\nloop {}" }));
    // Interrupt only once user code runs (not while it compiles); the printed line says so.
    let running = k.wait_for_iopub(&id, crate::util::EXECUTE_TIMEOUT, |m| {
        m.msg_type() == "stream" && m.content["text"].as_str().unwrap_or("").contains("looping")
    });
    assert!(
        running,
        "the looping cell never printed\n{}",
        k.stderr_tail()
    );

    let reply = k.request(Channel::Control, "interrupt_request", json!({}));
    assert_eq!(reply.msg_type(), "interrupt_reply");
    assert_eq!(reply.content["status"], "ok", "{:#}", reply.content);

    let interrupted = k.collect(&id);
    assert_eq!(interrupted.status(), "error", "{}", interrupted.describe());

    k.assert_result("1 + 1", "2");
}

#[test]
fn sigint_interrupts_the_running_cell_instead_of_killing_the_kernel() {
    // Frontends with `interrupt_mode: "signal"` (and a terminal's Ctrl-C) send SIGINT.
    let mut k = Kernel::start();
    let pid = k.pid();
    k.interrupt_sleeping_cell_with_sigint_to(pid);
    assert!(
        k.heartbeat(Duration::from_secs(10)),
        "the kernel died on SIGINT"
    );
    k.assert_result("1 + 1", "2");
}

/// rustc's incremental state for a cell crate that a slot has not compiled for a week goes
/// when a kernel claims the slot. Every slot gets such a directory; whichever slot the kernel
/// claims has lost its own once the kernel answers.
#[test]
fn a_kernel_removes_week_old_cell_build_state_from_the_slot_it_claims() {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache")
        });
    let stale: Vec<_> = (0..8)
        .map(|slot| {
            let dir = cache
                .join(format!(
                    "kettle/work/slot-{slot}/target/x86_64-unknown-linux-gnu/debug"
                ))
                .join(format!("incremental/ctx-kettle-e2e-{}", std::process::id()));
            std::fs::create_dir_all(dir.join("s-1-working")).unwrap();
            let eight_days_ago = std::time::SystemTime::now() - Duration::from_secs(8 * 24 * 3600);
            std::fs::File::open(&dir)
                .unwrap()
                .set_modified(eight_days_ago)
                .unwrap();
            dir
        })
        .collect();
    let mut k = Kernel::start();
    k.assert_result("1 + 1", "2");
    let removed = stale.iter().filter(|dir| !dir.exists()).count();
    for dir in &stale {
        let _ = std::fs::remove_dir_all(dir);
    }
    assert!(removed >= 1, "no slot's week-old state was removed");
}
