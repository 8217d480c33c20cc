//! [`Compare`]: run named variants of one workload several times each and show a table and a
//! bar chart of median time, spread, speed-up and parallel efficiency.

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::{Duration, Instant};

use kettle_display::{Bundle, Rich};

use crate::fmt;
use crate::gantt::PALETTE;

/// A comparison of variants of the same work (sequential vs threads vs rayon, ...).
///
/// ```
/// use kettle_timing::Compare;
/// let data: Vec<u64> = (0..20_000).collect();
/// let r = Compare::new("sum 20k numbers")
///     .runs(3)
///     .variant("iterator", || data.iter().sum::<u64>())
///     .variant("for loop", || {
///         let mut s = 0;
///         for x in &data { s += x; }
///         s
///     })
///     .run();
/// assert_eq!(r.variants.len(), 2);
/// assert_eq!(r.speedup(0), 1.0);
/// ```
pub struct Compare<'a> {
    title: String,
    runs: usize,
    warmup: usize,
    variants: Vec<(String, Box<dyn FnMut() + 'a>)>,
}

impl<'a> Compare<'a> {
    /// A comparison called `title`; 5 runs per variant, one warm-up call.
    pub fn new(title: impl Into<String>) -> Self {
        Compare {
            title: title.into(),
            runs: 5,
            warmup: 1,
            variants: Vec::new(),
        }
    }

    /// Timed runs per variant (at least 1). The median is reported, so odd numbers read best.
    pub fn runs(mut self, runs: usize) -> Self {
        self.runs = runs.max(1);
        self
    }

    /// Untimed calls of each variant before measuring.
    pub fn warmup(mut self, calls: usize) -> Self {
        self.warmup = calls;
        self
    }

    /// Adds a variant. The first one is the baseline for speed-ups. Its return value is kept
    /// alive (`black_box`) so the optimiser cannot delete the work.
    pub fn variant<R>(mut self, name: impl Into<String>, mut f: impl FnMut() -> R + 'a) -> Self {
        self.variants.push((
            name.into(),
            Box::new(move || {
                black_box(f());
            }),
        ));
        self
    }

    /// Measures every variant, shows the table and chart, and returns the result.
    pub fn run(self) -> CompareResult {
        let r = self.measure();
        kettle_display::display(&r);
        r
    }

    /// Measures every variant without showing anything.
    pub fn measure(mut self) -> CompareResult {
        for (_, f) in &mut self.variants {
            for _ in 0..self.warmup {
                f();
            }
        }
        let mut samples = vec![Vec::with_capacity(self.runs); self.variants.len()];
        // Round-robin rather than variant after variant: slow drifts (thermal throttling,
        // another notebook starting) then hurt every variant equally.
        for _ in 0..self.runs {
            for (i, (_, f)) in self.variants.iter_mut().enumerate() {
                let start = Instant::now();
                f();
                samples[i].push(start.elapsed());
            }
        }
        CompareResult {
            title: self.title,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            variants: self
                .variants
                .into_iter()
                .zip(samples)
                .map(|((name, _), samples)| VariantResult { name, samples })
                .collect(),
        }
    }
}

/// Timings of one variant.
#[derive(Debug, Clone, PartialEq)]
pub struct VariantResult {
    /// The variant's name.
    pub name: String,
    /// Wall time of each run.
    pub samples: Vec<Duration>,
}

impl VariantResult {
    fn sorted(&self) -> Vec<Duration> {
        let mut s = self.samples.clone();
        s.sort();
        s
    }

    /// Median run time (robust against one disturbed run).
    pub fn median(&self) -> Duration {
        let s = self.sorted();
        match s.len() {
            0 => Duration::ZERO,
            n if n % 2 == 1 => s[n / 2],
            n => (s[n / 2 - 1] + s[n / 2]) / 2,
        }
    }

    /// Fastest run.
    pub fn min(&self) -> Duration {
        self.samples.iter().copied().min().unwrap_or_default()
    }

    /// Slowest run.
    pub fn max(&self) -> Duration {
        self.samples.iter().copied().max().unwrap_or_default()
    }
}

/// The outcome of a [`Compare`].
#[derive(Debug, Clone, PartialEq)]
pub struct CompareResult {
    /// What was compared.
    pub title: String,
    /// `available_parallelism()` when measured: the ceiling for speed-up.
    pub cores: usize,
    /// One entry per variant, in the order they were added.
    pub variants: Vec<VariantResult>,
}

impl CompareResult {
    /// Median of the first variant ÷ median of variant `i` (`2.0` = twice as fast).
    pub fn speedup(&self, i: usize) -> f64 {
        self.ratio(i, VariantResult::median)
    }

    /// Like [`speedup`](Self::speedup), from each variant's best (fastest) run: on a noisy,
    /// shared machine the best runs are the ones least disturbed by other work.
    pub fn best_speedup(&self, i: usize) -> f64 {
        self.ratio(i, VariantResult::min)
    }

    fn ratio(&self, i: usize, stat: fn(&VariantResult) -> Duration) -> f64 {
        let of = |v: Option<&VariantResult>| v.map_or(0.0, |v| stat(v).as_secs_f64());
        let base = of(self.variants.first());
        let this = of(self.variants.get(i));
        if this > 0.0 { base / this } else { 0.0 }
    }

    /// Speed-up ÷ cores: `100 %` would mean every core did useful work all the time.
    pub fn efficiency(&self, i: usize) -> f64 {
        self.speedup(i) / self.cores.max(1) as f64
    }

    /// The table as text.
    pub fn to_text(&self) -> String {
        let name_w = self
            .variants
            .iter()
            .map(|v| v.name.chars().count())
            .max()
            .unwrap_or(0)
            .clamp(7, 28);
        let runs = self.variants.first().map_or(0, |v| v.samples.len());
        let mut o = format!(
            "{} — {runs} runs each, {} cores available\n{}  {:>9}  {:>21}  {:>8}  {:>10}\n",
            self.title,
            self.cores,
            fmt::pad("variant", name_w),
            "median",
            "min – max",
            "speed-up",
            "efficiency"
        );
        for (i, v) in self.variants.iter().enumerate() {
            let _ = writeln!(
                o,
                "{}  {:>9}  {:>21}  {:>7.2}×  {:>9.0}%",
                fmt::pad(&v.name, name_w),
                fmt::dur(v.median()),
                format!("{} – {}", fmt::dur(v.min()), fmt::dur(v.max())),
                self.speedup(i),
                self.efficiency(i) * 100.0
            );
        }
        o
    }

    /// The table as HTML (no styling beyond alignment, so it inherits the notebook theme).
    pub fn to_html(&self) -> String {
        let runs = self.variants.first().map_or(0, |v| v.samples.len());
        let mut o = format!(
            "<table><caption style=\"text-align:left\"><b>{}</b> — {runs} runs each, {} cores available</caption>\
             <thead><tr><th style=\"text-align:left\">variant</th><th>median</th><th>min – max</th>\
             <th>speed-up</th><th>efficiency</th></tr></thead><tbody>",
            fmt::xml(&self.title),
            self.cores
        );
        for (i, v) in self.variants.iter().enumerate() {
            let _ = write!(
                o,
                "<tr><td style=\"text-align:left\">{}</td><td>{}</td><td>{} – {}</td><td>{:.2}×</td><td>{:.0}%</td></tr>",
                fmt::xml(&v.name),
                fmt::dur(v.median()),
                fmt::dur(v.min()),
                fmt::dur(v.max()),
                self.speedup(i),
                self.efficiency(i) * 100.0
            );
        }
        o.push_str("</tbody></table>");
        o
    }

    /// Horizontal bars of the median per variant with a min–max whisker, as SVG.
    pub fn to_svg(&self) -> String {
        const W: f64 = 640.0;
        const LEFT: f64 = 150.0;
        const RIGHT: f64 = 150.0;
        const ROW: f64 = 26.0;
        let plot = W - LEFT - RIGHT;
        let h = 16.0 + self.variants.len() as f64 * ROW + 8.0;
        let longest = self
            .variants
            .iter()
            .map(|v| v.max().as_nanos() as f64)
            .fold(0.0, f64::max)
            .max(1.0);
        let x = |d: Duration| LEFT + d.as_nanos() as f64 / longest * plot;
        let mut o = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{h}\" viewBox=\"0 0 {W} {h}\" \
             font-family=\"system-ui, -apple-system, 'Segoe UI', sans-serif\" font-size=\"12\" role=\"img\">\
             <title>{}</title>",
            fmt::xml(&self.title)
        );
        for (i, v) in self.variants.iter().enumerate() {
            let y = 12.0 + i as f64 * ROW;
            let (med, lo, hi) = (x(v.median()), x(v.min()), x(v.max()));
            let _ = write!(
                o,
                "<g><title>{}: median {}, min {}, max {}, {:.2}× vs {}</title>\
                 <text x=\"{:.1}\" y=\"{:.1}\" fill=\"currentColor\" text-anchor=\"end\">{}</text>\
                 <rect x=\"{LEFT}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"18\" rx=\"2\" fill=\"{}\"/>\
                 <line x1=\"{lo:.1}\" y1=\"{:.1}\" x2=\"{hi:.1}\" y2=\"{:.1}\" stroke=\"currentColor\" stroke-width=\"1.5\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\" fill=\"currentColor\">{} · {:.2}×</text></g>",
                fmt::xml(&v.name),
                fmt::dur(v.median()),
                fmt::dur(v.min()),
                fmt::dur(v.max()),
                self.speedup(i),
                fmt::xml(&self.variants[0].name),
                LEFT - 8.0,
                y + 13.0,
                fmt::xml(&fmt::truncate(&v.name, 21)),
                (med - LEFT).max(1.0),
                PALETTE[i % PALETTE.len()],
                y + 9.0,
                y + 9.0,
                hi.max(med) + 8.0,
                y + 13.0,
                fmt::dur(v.median()),
                self.speedup(i)
            );
        }
        o.push_str("</svg>");
        o
    }
}

impl std::fmt::Display for CompareResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_text())
    }
}

impl Rich for CompareResult {
    fn bundle(&self) -> Bundle {
        let svg = self.to_svg();
        Bundle::text(self.to_text())
            .with_html(format!("{}<div>{svg}</div>", self.to_html()))
            .with_svg(svg)
    }
}

kettle_display::rich_value!(CompareResult);
