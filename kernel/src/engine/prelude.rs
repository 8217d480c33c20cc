//! Code the engine runs in the child process before the first cell, and again whenever the
//! child was restarted (after a crash or an interrupt), since the child's state is then new.
//!
//! User code links its own copy of std (`-C prefer-dynamic`), so a panic hook has to be
//! installed from a cell, not from the kernel. The hook tells a panic of the cell's own thread
//! (the child's main thread, which runs every cell) from a panic of a thread the cell spawned:
//! the first becomes the cell's `error` through a marker line on stdout (stdout is ordered with
//! evcxr's end-of-cell line, stderr is not); the second is shown on stderr naming the thread.

/// Starts a marker line on stdout; fields are separated by ESC, newlines in the message are
/// replaced by the unit separator so the marker stays one line.
pub const PANIC_MARKER: &str = "\u{1b}kettle-panic\u{1b}";
const FIELD: char = '\u{1b}';
const NEWLINE: char = '\u{1f}';

/// The prelude cell. It defines no variables. Its one item, `kettle_flush`, is compiled by evcxr
/// into every later cell's library (evcxr rebuilds defined items each time), so after any cell
/// the runtime can flush the stdout buffer of the std copy cells use. A flusher thread does the
/// same every 25 ms, so `print!` without a newline shows while the cell runs.
pub const CODE: &str = r#"#[unsafe(no_mangle)]
pub extern "C" fn kettle_flush() {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
}
let _ = std::thread::Builder::new().name("kettle-flusher".to_string()).spawn(|| loop {
    std::thread::sleep(std::time::Duration::from_millis(25));
    kettle_flush();
});
{
    let kettle_cell_thread = std::thread::current().id();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = if let Some(s) = payload.downcast_ref::<&str>() {
            s.to_string()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "Box<dyn Any>".to_string()
        };
        let location = info
            .location()
            .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
            .unwrap_or_else(|| "<unknown>".to_string());
        let thread = std::thread::current();
        if thread.id() == kettle_cell_thread {
            println!(
                "\u{1b}kettle-panic\u{1b}main\u{1b}{}\u{1b}{}",
                location,
                message.replace('\n', "\u{1f}")
            );
        } else {
            let name = thread
                .name()
                .map(str::to_string)
                .unwrap_or_else(|| format!("{:?}", thread.id()));
            eprintln!("thread '{}' panicked at {}:\n{}", name, location, message);
        }
    }));
}"#;

/// Run before a cell that spawns tokio tasks, when evcxr already keeps a tokio runtime: takes
/// that runtime out of evcxr's variable store and leaks it (its tasks keep running), so the cell
/// creates a fresh runtime from its own code.
///
/// Why: evcxr links dependencies statically into each cell's library, so every cell has its
/// own copy of tokio and of tokio's thread-locals. A task spawned by a later cell onto the
/// runtime an earlier cell created runs on that runtime's worker threads, where the later copy
/// finds no runtime context: "there is no reactor running" (evcxr issue 245). A runtime per
/// spawning cell keeps each task with the copy that spawned it.
pub const FRESH_TOKIO_RUNTIME: &str = r#"{
    let kettle_taken = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        evcxr_variable_store
            .take_variable::<std::sync::Arc<std::sync::Mutex<tokio::runtime::Runtime>>>(
                "evcxr_tokio_runtime",
            )
    }));
    if let Ok(runtime) = kettle_taken {
        std::mem::forget(runtime);
    }
}"#;

/// Whether `code` may spawn tokio tasks (see [`FRESH_TOKIO_RUNTIME`]).
pub fn spawns_tokio_tasks(code: &str) -> bool {
    code.contains("spawn") && (code.contains("tokio") || code.contains(".await"))
}

/// A panic reported by the hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PanicReport {
    pub thread: String,
    pub location: String,
    pub message: String,
}

/// Parses a stdout line that starts with [`PANIC_MARKER`].
pub fn parse_panic(line: &str) -> Option<PanicReport> {
    let rest = line.strip_prefix(PANIC_MARKER)?;
    let mut fields = rest.splitn(3, FIELD);
    let thread = fields.next()?.to_owned();
    let location = fields.next()?.to_owned();
    let message = fields.next()?.replace(NEWLINE, "\n");
    Some(PanicReport {
        thread,
        location,
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_marker_the_hook_prints() {
        let line = format!("{PANIC_MARKER}main\u{1b}src/lib.rs:3:5\u{1b}boom\u{1f}second line");
        assert_eq!(
            parse_panic(&line),
            Some(PanicReport {
                thread: "main".into(),
                location: "src/lib.rs:3:5".into(),
                message: "boom\nsecond line".into(),
            })
        );
        assert_eq!(parse_panic("ordinary output"), None);
    }

    #[test]
    fn the_prelude_prints_the_marker_this_module_parses() {
        // The prelude is Rust source compiled in the child; keep its literal in step.
        assert!(CODE.contains(r#""\u{1b}kettle-panic\u{1b}main\u{1b}{}\u{1b}{}""#));
        assert_eq!(PANIC_MARKER, "\u{1b}kettle-panic\u{1b}");
    }
}
