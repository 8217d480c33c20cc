//! Code the child process runs before the first cell, and again whenever the child was
//! restarted (after a crash or an interrupt), since the child's state is then new.
//!
//! User code links the toolchain's shared std (`-C prefer-dynamic`), not the kettle binary's
//! copy, so a panic hook has to be installed by code linked like a cell. The prelude is compiled
//! once per compiler into a small library ([`library`]) that the child runtime loads before the
//! first cell (the kernel names it in its `go` reply); only if that cannot be built does the
//! engine run it as an ordinary evcxr cell ([`cell`]), which costs an evaluation (~0.45 s) at
//! every start and restart. The hook tells a panic of the cell's own thread
//! (the child's main thread, which runs every cell) from a panic of a thread the cell spawned:
//! the first becomes the cell's `error` through a marker line on stdout (stdout is ordered with
//! evcxr's end-of-cell line, stderr is not); the second is shown on stderr naming the thread.

/// Starts a marker line on stdout; fields are separated by ESC, newlines in the message are
/// replaced by the unit separator so the marker stays one line.
pub const PANIC_MARKER: &str = "\u{1b}kettle-panic\u{1b}";
const FIELD: char = '\u{1b}';
const NEWLINE: char = '\u{1f}';

/// The prelude's source: `kettle_flush`, which the runtime calls after each cell (the stdout
/// buffer it flushes is the shared std's, which the kettle binary cannot reach), and
/// `kettle_prelude_init`, which starts a flusher thread (every 25 ms, so `print!` without a
/// newline shows while the cell runs) and installs the panic hook. `init` must run on the
/// thread that runs cells: the hook remembers it.
pub const LIBRARY: &str = r#"#[unsafe(no_mangle)]
pub extern "C" fn kettle_flush() {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
}

#[unsafe(no_mangle)]
pub extern "C" fn kettle_prelude_init() {
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
    }
}
"#;

/// The prelude as an evcxr cell, when [`library`] is not available: the same items, and the
/// call. It defines no variables; evcxr compiles its items into every later cell's library, so
/// the runtime finds `kettle_flush` there.
pub fn cell() -> String {
    format!("{LIBRARY}\nkettle_prelude_init();")
}

/// The prelude compiled as a library for this compiler (cached under the work directory;
/// built on first use, ~0.3 s), or `None` if it cannot be built.
pub fn library() -> Option<std::path::PathBuf> {
    use std::hash::{Hash, Hasher};
    use std::process::Command;
    // Linked like a cell (evcxr builds cells with -C prefer-dynamic), so it shares their std.
    const FLAGS: [&str; 10] = [
        "--edition",
        "2024",
        "--crate-type",
        "cdylib",
        "--crate-name",
        "kettle_prelude",
        "-C",
        "prefer-dynamic",
        "-C",
        "opt-level=2",
    ];
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let dir = super::workdir::root()?.join("prelude");
    std::fs::create_dir_all(&dir).ok()?;
    // Run in our cache, as evcxr runs cargo in its work directory: a rust-toolchain.toml next
    // to the notebook must not pick another compiler (and another std) for the prelude.
    let version = Command::new(&rustc)
        .arg("-vV")
        .current_dir(&dir)
        .output()
        .ok()?;
    if !version.status.success() {
        return None;
    }
    // Same compiler, flags and source: same library. (The hash only names a cache file.)
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    version.stdout.hash(&mut hasher);
    FLAGS.hash(&mut hasher);
    LIBRARY.hash(&mut hasher);
    let path = dir.join(format!("libkettle_prelude-{:016x}.so", hasher.finish()));
    if path.is_file() {
        return Some(path);
    }
    // Per-process names, renamed into place: kernels starting together never see half a file.
    let source = dir.join(format!("prelude-{}.rs", std::process::id()));
    let partial = dir.join(format!("prelude-{}.so.partial", std::process::id()));
    std::fs::write(&source, LIBRARY).ok()?;
    let built = Command::new(&rustc)
        .args(FLAGS)
        .arg("-o")
        .arg(&partial)
        .arg(&source)
        .current_dir(&dir)
        .output();
    let _ = std::fs::remove_file(&source);
    match built {
        Ok(out) if out.status.success() => {
            std::fs::rename(&partial, &path).ok()?;
            Some(path)
        }
        Ok(out) => {
            eprintln!(
                "kettle: the prelude library did not build; running it as a cell:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let _ = std::fs::remove_file(&partial);
            None
        }
        Err(_) => None,
    }
}

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
        assert!(LIBRARY.contains(r#""\u{1b}kettle-panic\u{1b}main\u{1b}{}\u{1b}{}""#));
        assert_eq!(PANIC_MARKER, "\u{1b}kettle-panic\u{1b}");
    }
}
