//! Interrupt (issue 4, item 5): `interrupt_request` on the control channel stops a busy loop, a
//! sleep, a cell whose threads are all blocked, and a compilation; the cell ends with ename
//! `Interrupted` long before it would have ended by itself, and the kernel serves the next
//! cell. Cooperative code that polls `kettle_display::interrupted()` stops with its state kept.

use crate::util::{Channel, Collected, EXECUTE_TIMEOUT, Kernel, SharedKernel};
use serde_json::json;
use std::time::{Duration, Instant};

static KERNEL: SharedKernel = SharedKernel::new(5);

/// The issue asks for 2 s from interrupt to reply; the slack is for a machine shared with
/// other builds. Every cell below would otherwise run for a minute or more.
const INTERRUPT_BOUND: Duration = Duration::from_secs(5);

/// Sends `code`, waits until it printed `running` (so user code runs, not the compiler) or, for
/// `None`, `wait` after the busy status, interrupts, and collects the cell. Returns the
/// exchange and the time from the interrupt_request to the cell's idle.
fn interrupt_cell(
    k: &mut Kernel,
    code: &str,
    running: Option<&str>,
    wait: Duration,
) -> (Collected, Duration) {
    let id = k.send_execute(json!({ "code": code }));
    match running {
        Some(marker) => {
            // An error or idle also ends the wait, so a cell that fails to compile fails the
            // test at once instead of after the timeout.
            let started = k.wait_for_iopub(&id, EXECUTE_TIMEOUT, |m| {
                m.msg_type() == "stream"
                    && m.content["text"].as_str().unwrap_or("").contains(marker)
                    || m.msg_type() == "error"
                    || m.state() == "idle"
            });
            assert!(
                started,
                "the cell never printed {marker:?}\n{}",
                k.stderr_tail()
            );
            let ended = k.wait_for_iopub(&id, Duration::ZERO, |m| {
                m.msg_type() == "error" || m.state() == "idle"
            });
            if ended {
                panic!(
                    "the cell ended before the interrupt\n{}",
                    k.collect(&id).describe()
                );
            }
        }
        None => {
            let busy = k.wait_for_iopub(&id, EXECUTE_TIMEOUT, |m| m.state() == "busy");
            assert!(busy, "no busy status\n{}", k.stderr_tail());
            std::thread::sleep(wait);
        }
    }
    let sent = Instant::now();
    let reply = k.request(Channel::Control, "interrupt_request", json!({}));
    assert_eq!(reply.msg_type(), "interrupt_reply");
    assert_eq!(reply.content["status"], "ok", "{:#}", reply.content);
    let c = k.collect(&id);
    let took = c.iopub.last().expect("idle").arrived - sent;
    c.assert_error_named("Interrupted");
    assert!(
        took < INTERRUPT_BOUND,
        "interrupt_request -> idle took {took:?}\n{}",
        c.describe()
    );
    (c, took)
}

fn next_cell_works(k: &mut Kernel) {
    k.assert_result("40 + 2", "42");
}

#[test]
fn interrupt_stops_a_busy_loop_and_reports_lost_variables() {
    let mut k = KERNEL.take();
    k.execute_ok("let lost_to_interrupt = 1;");
    let (c, _) = interrupt_cell(
        &mut k,
        "println!(\"spinning\");\nloop { std::hint::spin_loop(); }",
        Some("spinning"),
        Duration::ZERO,
    );
    // The loop ignores the cooperative flag, so the process had to be killed.
    let traceback = c.error().content["traceback"].to_string();
    assert!(
        traceback.contains("lost_to_interrupt"),
        "the lost variable is not listed\n{}",
        c.describe()
    );
    next_cell_works(&mut k);
}

#[test]
fn interrupt_stops_a_long_sleep() {
    let mut k = KERNEL.take();
    interrupt_cell(
        &mut k,
        "println!(\"sleeping\");\nstd::thread::sleep(std::time::Duration::from_secs(60));",
        Some("sleeping"),
        Duration::ZERO,
    );
    next_cell_works(&mut k);
}

#[test]
fn interrupt_stops_a_cell_whose_threads_are_all_blocked() {
    let mut k = KERNEL.take();
    interrupt_cell(
        &mut k,
        // In a block: evcxr would try to keep top-level variables, which the joins move.
        "{\n\
             let (tx, rx) = std::sync::mpsc::channel::<()>();\n\
             let waiter = std::thread::spawn(move || { let _ = rx.recv(); });\n\
             let sleeper = std::thread::spawn(|| std::thread::sleep(std::time::Duration::from_secs(60)));\n\
             println!(\"blocked\");\n\
             sleeper.join().unwrap();\n\
             waiter.join().unwrap();\n\
             drop(tx);\n\
         }",
        Some("blocked"),
        Duration::ZERO,
    );
    next_cell_works(&mut k);
}

#[test]
fn interrupt_stops_a_compilation() {
    let mut k = KERNEL.take();
    // Const evaluation of ten billion loop steps keeps rustc busy for far longer than any test
    // would wait; nothing of the cell runs before it compiles.
    let (c, _) = interrupt_cell(
        &mut k,
        "#[allow(long_running_const_eval)]\n\
         const SLOW: u64 = {\n\
             let mut i = 0u64;\n\
             let mut s = 0u64;\n\
             while i < 10_000_000_000 { s = s.wrapping_add(i ^ (s >> 3)); i += 1; }\n\
             s\n\
         };\n\
         println!(\"{}\", SLOW);",
        None,
        Duration::from_secs(3),
    );
    assert!(
        c.stream("stdout").is_empty(),
        "the cell ran although it was interrupted while compiling\n{}",
        c.describe()
    );
    next_cell_works(&mut k);
}

#[test]
fn cooperative_code_stops_by_itself_and_keeps_its_variables() {
    let mut k = KERNEL.take();
    k.execute_ok(":course\nlet kept_by_cooperation = 6;");
    let (c, _) = interrupt_cell(
        &mut k,
        ":course\n\
         println!(\"polling\");\n\
         while !kettle_display::interrupted() { std::hint::spin_loop(); }\n\
         println!(\"stopped\");",
        Some("polling"),
        Duration::ZERO,
    );
    assert!(
        c.stream("stdout").contains("stopped"),
        "the cooperative loop did not get to stop by itself\n{}",
        c.describe()
    );
    k.assert_result("kept_by_cooperation + 1", "7");
}
