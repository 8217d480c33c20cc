//! [`timeit`]: repeat a short piece of code until timings are stable, like IPython's `%timeit`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use kettle_display::{Bundle, Rich};

use crate::fmt;

/// Settings for a [`timeit`] measurement (runs, loops per run, warm-up).
///
/// ```
/// use kettle_timing::Timeit;
/// let r = Timeit::new().runs(3).loops(100).run(|| (0..1000u32).sum::<u32>());
/// assert_eq!(r.per_loop.len(), 3);
/// assert_eq!(r.loops, 100);
/// ```
#[derive(Debug, Clone)]
pub struct Timeit {
    runs: usize,
    loops: Option<u64>,
    warmup: usize,
    min_run: Duration,
}

impl Default for Timeit {
    fn default() -> Self {
        Timeit {
            runs: 7,
            loops: None,
            warmup: 1,
            min_run: Duration::from_millis(200),
        }
    }
}

impl Timeit {
    /// 7 runs, automatic loop count (each run ≥ 0.2 s), one warm-up call.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of timed runs (the spread between runs is the ± figure). At least 1.
    pub fn runs(mut self, runs: usize) -> Self {
        self.runs = runs.max(1);
        self
    }

    /// Fixed number of calls per run instead of the automatic choice. At least 1.
    pub fn loops(mut self, loops: u64) -> Self {
        self.loops = Some(loops.max(1));
        self
    }

    /// Untimed calls before measuring (fills caches, lazily-initialised statics, the allocator).
    pub fn warmup(mut self, calls: usize) -> Self {
        self.warmup = calls;
        self
    }

    /// Minimum duration of one run when the loop count is automatic (default 0.2 s).
    pub fn min_run_time(mut self, d: Duration) -> Self {
        self.min_run = d;
        self
    }

    /// Measures `f`, shows the result, and returns it.
    pub fn run<T>(&self, f: impl FnMut() -> T) -> TimeitResult {
        let r = self.measure(f);
        kettle_display::display(&r);
        r
    }

    /// Measures `f` and returns the result without showing it.
    pub fn measure<T>(&self, mut f: impl FnMut() -> T) -> TimeitResult {
        for _ in 0..self.warmup {
            black_box(f());
        }
        let loops = self.loops.unwrap_or_else(|| self.calibrate(&mut f));
        let per_loop = (0..self.runs)
            .map(|_| {
                let start = Instant::now();
                for _ in 0..loops {
                    black_box(f());
                }
                start.elapsed() / loops.min(u64::from(u32::MAX)) as u32
            })
            .collect();
        TimeitResult { per_loop, loops }
    }

    /// Finds the smallest loop count in 1, 2, 5, 10, 20, 50, ... whose run lasts `min_run`.
    fn calibrate<T>(&self, f: &mut impl FnMut() -> T) -> u64 {
        let mut loops = 1u64;
        for k in 1u32.. {
            let start = Instant::now();
            for _ in 0..loops {
                black_box(f());
            }
            if start.elapsed() >= self.min_run || loops >= 1_000_000_000 {
                break;
            }
            loops = [1, 2, 5][(k % 3) as usize] * 10u64.pow(k / 3);
        }
        loops
    }
}

/// Measures `f` with the default settings ([`Timeit::new`]), shows and returns the result.
///
/// Each run calls `f` *loops* times; the report gives the mean ± standard deviation of the
/// per-call time over the runs, the fastest run, and a sparkline of all runs.
///
/// ```no_run
/// let r = kettle_timing::timeit(|| (0..10_000u64).map(|x| x * x).sum::<u64>());
/// // 4.12 µs ± 0.05 µs per loop (mean ± std. dev. of 7 runs, 50000 loops each) · min 4.07 µs · ▂▁▁█▃▂▁
/// ```
pub fn timeit<T>(f: impl FnMut() -> T) -> TimeitResult {
    Timeit::new().run(f)
}

/// The outcome of [`timeit`]: the time per call in each run.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeitResult {
    /// Mean time of one call, for each run.
    pub per_loop: Vec<Duration>,
    /// Calls per run.
    pub loops: u64,
}

impl TimeitResult {
    fn ns(&self) -> Vec<f64> {
        self.per_loop.iter().map(|d| d.as_nanos() as f64).collect()
    }

    /// Mean over runs of the time per call.
    pub fn mean(&self) -> Duration {
        let v = self.ns();
        Duration::from_nanos((v.iter().sum::<f64>() / v.len().max(1) as f64) as u64)
    }

    /// Sample standard deviation over runs (0 with a single run).
    pub fn std_dev(&self) -> Duration {
        let v = self.ns();
        if v.len() < 2 {
            return Duration::ZERO;
        }
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (v.len() - 1) as f64;
        Duration::from_nanos(var.sqrt() as u64)
    }

    /// The fastest run's time per call: the least disturbed by other work on the machine.
    pub fn min(&self) -> Duration {
        self.per_loop.iter().copied().min().unwrap_or_default()
    }
}

impl std::fmt::Display for TimeitResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let runs = self.per_loop.len();
        write!(
            f,
            "{} ± {} per loop (mean ± std. dev. of {runs} run{}, {} loop{} each) · min {} · {}",
            fmt::dur(self.mean()),
            fmt::dur(self.std_dev()),
            if runs == 1 { "" } else { "s" },
            self.loops,
            if self.loops == 1 { "" } else { "s" },
            fmt::dur(self.min()),
            fmt::sparkline(&self.ns()),
        )
    }
}

impl Rich for TimeitResult {
    fn bundle(&self) -> Bundle {
        let text = self.to_string();
        let html = format!(
            "<div style=\"font-family:var(--jp-code-font-family,monospace);font-size:0.9em\">{}</div>",
            fmt::xml(&text)
        );
        Bundle::text(text).with_html(html)
    }
}

kettle_display::rich_value!(TimeitResult);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_and_text() {
        let r = TimeitResult {
            per_loop: [10, 12, 11, 10, 30, 10, 11]
                .iter()
                .map(|us| Duration::from_micros(*us))
                .collect(),
            loops: 1000,
        };
        assert_eq!(r.min(), Duration::from_micros(10));
        assert_eq!(r.mean(), Duration::from_nanos(13_428));
        assert_eq!(
            r.to_string(),
            "13.4 µs ± 7.34 µs per loop (mean ± std. dev. of 7 runs, 1000 loops each) · min 10.0 µs · ▁▂▁▁█▁▁"
        );
    }

    #[test]
    fn automatic_loops_reach_the_minimum_run_time() {
        let r = Timeit::new()
            .runs(2)
            .min_run_time(Duration::from_millis(5))
            .measure(|| std::thread::sleep(Duration::from_micros(200)));
        assert!(r.loops >= 10 && r.loops <= 50, "{}", r.loops);
        assert!(r.min() >= Duration::from_micros(200));
    }
}
