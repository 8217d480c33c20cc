//! Kernel logging: one `kettle:`-prefixed line on stderr, which Jupyter copies into the server
//! log. Quiet by default; `KETTLE_LOG=debug` adds a line per message.

use std::fmt::Arguments;
use std::sync::OnceLock;

/// Whether `KETTLE_LOG=debug` is set (read once).
pub fn debug_enabled() -> bool {
    static DEBUG: OnceLock<bool> = OnceLock::new();
    *DEBUG.get_or_init(|| std::env::var("KETTLE_LOG").is_ok_and(|v| v == "debug"))
}

/// Something the person running Jupyter should see (bad messages, failures).
pub fn warn(message: Arguments<'_>) {
    eprintln!("kettle: {message}");
}

/// Per-message tracing, only with `KETTLE_LOG=debug`.
pub fn debug(message: Arguments<'_>) {
    if debug_enabled() {
        eprintln!("kettle: {message}");
    }
}
