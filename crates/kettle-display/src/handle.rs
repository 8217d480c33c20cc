//! Display operations learners call: [`display`], [`DisplayHandle::update`], [`clear_output`],
//! and the display ids that tie an update to the output it replaces.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::bundle::Bundle;
use crate::transport::{Op, send};

/// Shows `x` now, while the cell is still running, and returns a handle to update it in place.
///
/// Call it as often as you like, from any thread; each call is one output in the notebook.
///
/// ```
/// use kettle_display::{display, html};
/// let h = display(html("<b>step 1</b>"));
/// h.update(html("<b>step 2</b>")); // replaces the output above
/// display("plain strings work too");
/// ```
pub fn display(x: impl Into<Bundle>) -> DisplayHandle {
    let handle = DisplayHandle {
        id: new_display_id(),
    };
    send(&Op::Display {
        bundle: &x.into(),
        display_id: Some(&handle.id),
    });
    handle
}

/// Clears the cell's output. With `wait = true` the front end clears only when the next output
/// arrives, which avoids flicker in animations.
pub fn clear_output(wait: bool) {
    send(&Op::Clear { wait });
}

/// Refers to one displayed output so it can be replaced in place.
///
/// Handles are cheap to clone and can be sent to other threads.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DisplayHandle {
    id: String,
}

impl DisplayHandle {
    /// Replaces the output shown by this handle (every copy of it, if it was shown twice).
    pub fn update(&self, x: impl Into<Bundle>) {
        send(&Op::Update {
            bundle: &x.into(),
            display_id: &self.id,
        });
    }

    /// Shows the same content again as a new output that shares this display id; updates then
    /// change both copies.
    pub fn display_again(&self, x: impl Into<Bundle>) {
        send(&Op::Display {
            bundle: &x.into(),
            display_id: Some(&self.id),
        });
    }

    /// The Jupyter `display_id`.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// A uuid-shaped id (8-4-4-4-12 hex), unique per process and across processes.
///
/// std-only: we mix wall time, a process counter, the pid and the thread's stack address
/// through splitmix64; uniqueness, not unpredictability, is what display ids need.
pub(crate) fn new_display_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let pid = u64::from(std::process::id());
    let local = 0u8;
    let stack = &local as *const u8 as u64;
    let hi = splitmix(nanos ^ pid.rotate_left(32) ^ stack);
    let lo = splitmix(hi ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ pid);
    // Set the version (4) and variant bits so tools that parse uuids accept it.
    let hi = (hi & !0xf000) | 0x4000;
    let lo = (lo & !(0b11 << 62)) | (0b10 << 62);
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xffff,
        hi & 0xffff,
        lo >> 48,
        lo & 0xffff_ffff_ffff
    )
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn display_ids_are_uuid_shaped_and_unique() {
        let ids: HashSet<String> = (0..10_000).map(|_| new_display_id()).collect();
        assert_eq!(ids.len(), 10_000);
        for id in ids.iter().take(20) {
            let parts: Vec<usize> = id.split('-').map(str::len).collect();
            assert_eq!(parts, [8, 4, 4, 4, 12], "{id}");
            assert!(id.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
        }
    }
}
