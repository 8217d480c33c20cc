//! Cooperative interrupt: [`interrupted`] lets long-running notebook code stop cleanly when the
//! learner presses "interrupt", before the kernel has to kill the process.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

/// Environment variable holding the path of the interrupt flag file.
pub const INTERRUPT_FILE_VAR: &str = "KETTLE_INTERRUPT_FILE";

/// How long a cached answer stays valid: polling in a hot loop costs one atomic load, and an
/// interrupt is still noticed within ~10 ms.
const RECHECK_NS: u64 = 10_000_000;

/// `true` when the kernel asked the running cell to stop.
///
/// Call it in loops and return early; the kernel kills the cell after a short grace period if
/// it does not stop. Outside the kernel it is always `false`.
///
/// ```
/// let mut n = 0u64;
/// while n < 1_000 && !kettle_display::interrupted() {
///     n += 1;
/// }
/// assert_eq!(n, 1_000);
/// ```
pub fn interrupted() -> bool {
    static PATH: OnceLock<Option<PathBuf>> = OnceLock::new();
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    // Stored as "ns since EPOCH + 1" so 0 means "never checked".
    static CHECKED_AT: AtomicU64 = AtomicU64::new(0);
    static CACHED: AtomicBool = AtomicBool::new(false);

    let Some(path) = PATH
        .get_or_init(|| std::env::var_os(INTERRUPT_FILE_VAR).map(PathBuf::from))
        .as_ref()
    else {
        return false;
    };
    let now = EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64 + 1;
    let last = CHECKED_AT.load(Ordering::Acquire);
    if last != 0 && now.saturating_sub(last) < RECHECK_NS {
        return CACHED.load(Ordering::Acquire);
    }
    // Several threads may re-check at once; that costs a few extra stat calls, nothing worse.
    let flag = std::fs::metadata(path).is_ok();
    CACHED.store(flag, Ordering::Release);
    CHECKED_AT.store(now, Ordering::Release);
    flag
}
