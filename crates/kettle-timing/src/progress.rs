//! [`Progress`]: a bar or counter that updates in place, fed from any number of threads.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kettle_display::{Bundle, DisplayHandle};

use crate::fmt;

/// A progress bar (known total) or counter (unknown total) updated in place.
///
/// [`inc`](Progress::inc) is one atomic add, so worker threads can call it in their inner loop;
/// the display is refreshed at most every 100 ms in a notebook (every second in a terminal,
/// where each refresh is a new line), so it never floods the front end.
///
/// ```
/// use kettle_timing::Progress;
/// let p = Progress::new("checking primes", 1_000);
/// std::thread::scope(|s| {
///     for part in 0..4u64 {
///         let p = &p;
///         s.spawn(move || {
///             for n in part * 250..(part + 1) * 250 {
///                 std::hint::black_box((2..n).all(|d| n % d != 0));
///                 p.inc(1);
///             }
///         });
///     }
/// });
/// p.finish();
/// assert_eq!(p.count(), 1_000);
/// ```
#[derive(Debug)]
pub struct Progress {
    label: String,
    total: Option<u64>,
    done: AtomicU64,
    start: Instant,
    /// Nanoseconds after `start` of the last refresh; claimed with compare-exchange so only one
    /// thread refreshes per interval.
    last_refresh: AtomicU64,
    interval: Duration,
    finished: AtomicBool,
    handle: DisplayHandle,
}

impl Progress {
    /// A bar towards `total`, shown immediately.
    pub fn new(label: impl Into<String>, total: u64) -> Self {
        Self::create(label.into(), Some(total))
    }

    /// A counter with no known total, shown immediately.
    pub fn counter(label: impl Into<String>) -> Self {
        Self::create(label.into(), None)
    }

    fn create(label: String, total: Option<u64>) -> Self {
        let interval = if kettle_display::in_kernel() {
            Duration::from_millis(100)
        } else {
            Duration::from_secs(1)
        };
        let start = Instant::now();
        let bundle = render(&label, total, 0, Duration::ZERO, false);
        Progress {
            label,
            total,
            done: AtomicU64::new(0),
            start,
            last_refresh: AtomicU64::new(0),
            interval,
            finished: AtomicBool::new(false),
            handle: kettle_display::display(bundle),
        }
    }

    /// Changes the refresh interval (default 100 ms in a notebook, 1 s in a terminal).
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Adds `n` done items; refreshes the display if the interval has passed.
    pub fn inc(&self, n: u64) {
        self.done.fetch_add(n, Ordering::Relaxed);
        self.maybe_refresh();
    }

    /// Sets the number of done items.
    pub fn set(&self, done: u64) {
        self.done.store(done, Ordering::Relaxed);
        self.maybe_refresh();
    }

    /// Items done so far.
    pub fn count(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// Shows the final state (with total time and rate). Called by `drop` if you forget.
    pub fn finish(&self) {
        if !self.finished.swap(true, Ordering::AcqRel) {
            self.refresh(true);
        }
    }

    fn maybe_refresh(&self) {
        if self.finished.load(Ordering::Relaxed) {
            return;
        }
        let now = self.start.elapsed().as_nanos() as u64;
        let last = self.last_refresh.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= self.interval.as_nanos() as u64
            && self
                .last_refresh
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            self.refresh(false);
        }
    }

    fn refresh(&self, done: bool) {
        self.handle.update(render(
            &self.label,
            self.total,
            self.count(),
            self.start.elapsed(),
            done,
        ));
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The bundle for one state of the bar.
fn render(label: &str, total: Option<u64>, done: u64, elapsed: Duration, finished: bool) -> Bundle {
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
    let mut stats = format!("{} elapsed", fmt::dur(elapsed));
    if rate > 0.0 {
        let _ = write!(stats, " · {} /s", human_count(rate));
    }
    let (text, html) = match total {
        Some(total) => {
            let frac = if total == 0 {
                1.0
            } else {
                (done as f64 / total as f64).min(1.0)
            };
            if !finished && rate > 0.0 && done < total {
                let eta = Duration::from_secs_f64((total - done) as f64 / rate);
                let _ = write!(stats, " · ETA {}", fmt::dur(eta));
            }
            let filled = (frac * 30.0).round() as usize;
            let text = format!(
                "{label} [{}{}] {done}/{total} ({:.0}%) · {stats}",
                "#".repeat(filled),
                "-".repeat(30 - filled),
                frac * 100.0
            );
            let html = format!(
                "<div style=\"font-family:var(--jp-code-font-family,monospace);font-size:0.9em\">{} \
                 <progress value=\"{done}\" max=\"{total}\" style=\"width:22em;vertical-align:middle\"></progress> \
                 {done}/{total} ({:.0}%) · {}</div>",
                fmt::xml(label),
                frac * 100.0,
                fmt::xml(&stats)
            );
            (text, html)
        }
        None => {
            let text = format!("{label}: {done} · {stats}");
            let html = format!(
                "<div style=\"font-family:var(--jp-code-font-family,monospace);font-size:0.9em\">{}: <b>{done}</b> · {}</div>",
                fmt::xml(label),
                fmt::xml(&stats)
            );
            (text, html)
        }
    };
    let text = if finished {
        format!("{text} · done")
    } else {
        text
    };
    Bundle::text(text).with_html(html)
}

fn human_count(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2} M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1} k", x / 1e3)
    } else {
        format!("{x:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bar_text() {
        let b = render("load", Some(200), 50, Duration::from_secs(1), false);
        assert_eq!(
            b.plain(),
            "load [########----------------------] 50/200 (25%) · 1.00 s elapsed · 50.0 /s · ETA 3.00 s"
        );
        let b = render("events", None, 7, Duration::ZERO, true);
        assert_eq!(b.plain(), "events: 7 · 0 s elapsed · done");
        assert!(
            render("x", Some(0), 0, Duration::ZERO, false)
                .plain()
                .contains("100%")
        );
    }

    #[test]
    fn many_threads_count_exactly() {
        let p = Progress::new("t", 80_000).with_interval(Duration::from_millis(5));
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| (0..10_000).for_each(|_| p.inc(1)));
            }
        });
        assert_eq!(p.count(), 80_000);
    }
}
