//! [`time`] and [`time!`](crate::time!): run something once and show how long it took, in wall
//! time and CPU time, and how many cores were busy on average.

use std::time::{Duration, Instant};

use kettle_display::{Bundle, Rich};

use crate::cpu::CpuTimes;
use crate::fmt;

/// What one timed run cost.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeReport {
    /// What was timed (the expression text for [`time!`](crate::time!)).
    pub label: Option<String>,
    /// Elapsed real time.
    pub wall: Duration,
    /// CPU time of the whole process during the run, if the platform tells us.
    pub cpu: Option<CpuTimes>,
}

impl TimeReport {
    /// CPU time ÷ wall time: `2.0` means two cores were busy on average; `0.1` means the work
    /// mostly waited (I/O, sleeps, locks).
    pub fn cores_busy(&self) -> Option<f64> {
        let wall = self.wall.as_secs_f64();
        self.cpu
            .filter(|_| wall > 0.0)
            .map(|c| c.total().as_secs_f64() / wall)
    }
}

impl std::fmt::Display for TimeReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(label) = &self.label {
            write!(f, "{label}: ")?;
        }
        write!(f, "wall {}", fmt::dur(self.wall))?;
        if let Some(cpu) = self.cpu {
            write!(
                f,
                " · cpu {} (user {}, sys {})",
                fmt::dur(cpu.total()),
                fmt::dur(cpu.user),
                fmt::dur(cpu.system)
            )?;
        }
        if let Some(busy) = self.cores_busy() {
            write!(f, " · {busy:.1} cores busy")?;
        }
        Ok(())
    }
}

impl Rich for TimeReport {
    fn bundle(&self) -> Bundle {
        let text = self.to_string();
        let html = format!(
            "<div style=\"font-family:var(--jp-code-font-family,monospace);font-size:0.9em\">⏱ {}</div>",
            fmt::xml(&text)
        );
        Bundle::text(text).with_html(html)
    }
}

kettle_display::rich_value!(TimeReport);

/// Runs `f` once and returns its value together with a [`TimeReport`], showing nothing.
pub fn measure<T>(f: impl FnOnce() -> T) -> (T, TimeReport) {
    let cpu_before = CpuTimes::now();
    let start = Instant::now();
    let value = f();
    let wall = start.elapsed();
    let cpu = match (cpu_before, CpuTimes::now()) {
        (Some(a), Some(b)) => Some(b.since(&a)),
        _ => None,
    };
    (
        value,
        TimeReport {
            label: None,
            wall,
            cpu,
        },
    )
}

/// Runs `f` once, shows its wall and CPU time, and returns its value.
///
/// Use it to see *where* time goes (a sequential loop shows ~1 core busy, a parallel one ~N,
/// a network fetch ~0); use [`timeit`](crate::timeit) for stable numbers of short code.
///
/// ```
/// let sum: u64 = kettle_timing::time(|| (1..=1_000_000u64).sum());
/// assert_eq!(sum, 500_000_500_000);
/// // prints e.g. "wall 1.02 ms · cpu 1.01 ms (user 1.01 ms, sys 0 s) · 1.0 cores busy"
/// ```
pub fn time<T>(f: impl FnOnce() -> T) -> T {
    time_named(None, f)
}

/// [`time`] with a label in front of the report (what [`time!`](crate::time!) uses).
pub fn time_named<T>(label: Option<&str>, f: impl FnOnce() -> T) -> T {
    let (value, mut report) = measure(f);
    report.label = label.map(str::to_owned);
    kettle_display::display(&report);
    value
}

/// Times an expression once, showing the expression's text with its wall and CPU time, and
/// evaluates to the expression's value.
///
/// ```
/// use kettle_timing::time;
/// let v = time!((0..100_000u32).filter(|n| n % 7 == 0).count());
/// assert_eq!(v, 14_286);
/// ```
#[macro_export]
macro_rules! time {
    ($e:expr) => {
        $crate::time_named(::core::option::Option::Some(stringify!($e)), || $e)
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_text_mentions_wall_cpu_and_cores() {
        let r = TimeReport {
            label: Some("work".into()),
            wall: Duration::from_millis(100),
            cpu: Some(CpuTimes {
                user: Duration::from_millis(180),
                system: Duration::from_millis(10),
            }),
        };
        assert_eq!(
            r.to_string(),
            "work: wall 100 ms · cpu 190 ms (user 180 ms, sys 10.0 ms) · 1.9 cores busy"
        );
    }

    #[test]
    fn measure_returns_value_and_wall_time() {
        // CPU time is process-wide, so other tests running in parallel show up in it; only
        // the wall time is checked here (cpu.rs tests the CPU reading on its own).
        let (v, r) = measure(|| {
            std::thread::sleep(Duration::from_millis(30));
            7
        });
        assert_eq!(v, 7);
        assert!(r.wall >= Duration::from_millis(30));
    }
}
