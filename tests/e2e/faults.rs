//! Panics and crashes (issue 4, item 4): a panic is the cell's `error` and keeps earlier
//! variables; a spawned thread's panic is a stderr block naming the thread; `exit`, `abort`, a
//! segfault and a stack overflow kill only the process running the code, the cell says so and
//! lists the variables lost, and the next cell works.

use crate::util::{Collected, Kernel, SharedKernel};

static KERNEL: SharedKernel = SharedKernel::new(7);

/// `s` without ANSI colour sequences (`ESC [ ... m`), as a reader sees the traceback.
fn plain(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The error's evalue and traceback lines without colours, joined, for searching.
fn error_text(c: &Collected) -> String {
    let e = &c.error().content;
    let mut text = e["evalue"].as_str().unwrap_or("").to_owned();
    for line in e["traceback"].as_array().into_iter().flatten() {
        text.push('\n');
        text.push_str(line.as_str().unwrap_or(""));
    }
    plain(&text)
}

#[test]
fn a_panic_names_its_message_location_and_thread_and_keeps_variables() {
    let mut k = KERNEL.take();
    k.execute_ok("let kept_after_panic = 20;");
    let c = k.execute("let v: Vec<u8> = Vec::new();\nlet _ = v[3];");
    assert_eq!(c.status(), "error", "{}", c.describe());
    assert_eq!(c.reply.content["ename"], "panic", "{:#}", c.reply.content);
    let error = &c.error().content;
    assert_eq!(error["ename"], "panic");
    assert!(
        error["evalue"]
            .as_str()
            .unwrap_or("")
            .contains("index out of bounds"),
        "{error:#}"
    );
    let text = error_text(&c);
    assert!(
        text.contains("thread 'main' panicked at cell line 2"),
        "no thread name and cell line: {text}"
    );

    k.assert_result("kept_after_panic + 1", "21");
}

#[test]
fn a_panic_in_a_spawned_thread_is_a_stderr_block_naming_the_thread() {
    let mut k = KERNEL.take();
    let c = k.execute(
        "let h = std::thread::Builder::new()\n\
             .name(\"worker-7\".to_string())\n\
             .spawn(|| panic!(\"bad worker\"))\n\
             .unwrap();\n\
         println!(\"join failed: {}\", h.join().is_err());",
    );
    assert_eq!(c.status(), "ok", "{}", c.describe());
    assert!(
        c.stream("stdout").contains("join failed: true"),
        "{}",
        c.describe()
    );
    let err = c.stream("stderr");
    assert!(
        err.contains("worker-7") && err.contains("bad worker"),
        "stderr does not name the thread and message\n{}",
        c.describe()
    );
}

/// Defines a variable, runs `crash`, and checks the cell reports the dead process with `why`
/// somewhere in its text, lists the variable as lost, and that the next cell works.
fn crash_is_reported_and_survived(k: &mut Kernel, variable: &str, crash: &str, why: &[&str]) {
    k.execute_ok(&format!("let {variable} = 41;"));
    let c = k.execute(crash);
    assert_eq!(c.status(), "error", "{}", c.describe());
    let text = error_text(&c);
    assert!(
        text.contains("died"),
        "the error does not say the process died: {text}"
    );
    assert!(
        why.iter().any(|w| text.contains(w)),
        "the error does not say why (one of {why:?}): {text}"
    );
    assert!(
        text.contains(variable),
        "the error does not list {variable} as lost: {text}"
    );

    k.assert_result("1 + 1", "2");
    // The new process has the prelude again: a panic is still the cell's error.
    let panicked = k.execute("panic!(\"after the restart\")");
    assert_eq!(
        panicked.reply.content["ename"],
        "panic",
        "{}",
        panicked.describe()
    );
    // The variable really is gone, and the kernel says so rather than crashing again.
    let gone = k.execute(variable);
    assert_eq!(gone.status(), "error", "{}", gone.describe());
}

#[test]
fn process_exit_is_reported_with_its_status_and_the_next_cell_works() {
    let mut k = KERNEL.take();
    crash_is_reported_and_survived(
        &mut k,
        "lost_by_exit",
        "std::process::exit(3);",
        &["exit status: 3", "code 3", "status 3"],
    );
}

#[test]
fn abort_is_reported_and_the_next_cell_works() {
    let mut k = KERNEL.take();
    crash_is_reported_and_survived(
        &mut k,
        "lost_by_abort",
        "std::process::abort();",
        &["SIGABRT", "signal: 6", "abort"],
    );
}

#[test]
fn a_null_pointer_write_is_reported_and_the_next_cell_works() {
    let mut k = KERNEL.take();
    crash_is_reported_and_survived(
        &mut k,
        "lost_by_segfault",
        "unsafe { std::ptr::write_volatile(std::ptr::null_mut::<u64>(), 1); }",
        &["SIGSEGV", "signal: 11", "segmentation"],
    );
}

#[test]
fn a_stack_overflow_is_reported_and_the_next_cell_works() {
    let mut k = KERNEL.take();
    crash_is_reported_and_survived(
        &mut k,
        "lost_by_overflow",
        "fn down(n: u64) -> u64 { let pad = [n; 64]; std::hint::black_box(&pad); down(n + 1) + pad[0] }\n\
         down(0);",
        &["overflow", "SIGSEGV", "SIGABRT"],
    );
}

#[test]
fn the_prelude_is_a_library_loaded_in_the_process_running_cells() {
    // The panic hook and flusher come from a library the runtime loads (one evaluation less per
    // start), not from a cell; a kernel that silently fell back would still pass the tests above.
    let mut k = KERNEL.take();
    k.assert_result(
        "std::fs::read_to_string(\"/proc/self/maps\").unwrap().contains(\"libkettle_prelude\")",
        "true",
    );
}
