//! [`Timeline`]: a cheap, thread-safe recorder of labelled spans and marks, one lane per OS
//! thread or per explicit lane, rendered as a Gantt chart (see `gantt.rs`).
//!
//! Recording cost is what matters here (learners wrap tiny tasks in spans): each record is a
//! push into one of several short-held mutex-protected vectors ("shards"), picked per thread, so
//! threads rarely touch the same lock. `examples/overhead.rs` measures it.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use kettle_display::{Bundle, Rich};

use crate::clock::{Clock, MonotonicClock};

/// End time of a span that has not finished yet.
const OPEN: u64 = u64::MAX;

/// One recorded event, as stored.
#[derive(Debug, Clone)]
pub(crate) struct Record {
    pub(crate) lane: u32,
    pub(crate) label: Cow<'static, str>,
    pub(crate) start: u64,
    /// [`OPEN`] while the span runs; equal to `start` for a mark.
    pub(crate) end: u64,
    pub(crate) mark: bool,
}

struct Lanes {
    names: Vec<String>,
    index: HashMap<String, u32>,
}

struct Inner {
    /// Distinguishes timelines in the per-thread lane cache.
    id: u64,
    clock: Arc<dyn Clock>,
    origin: u64,
    shards: Box<[Mutex<Vec<Record>>]>,
    lanes: Mutex<Lanes>,
}

/// Records what each thread (or task) did when, and shows it as a Gantt chart.
///
/// Cloning is cheap and clones record into the same timeline, so you can move a clone into
/// each thread; with scoped threads, just share `&Timeline`.
///
/// ```
/// use kettle_timing::Timeline;
/// let tl = Timeline::new();
/// std::thread::scope(|s| {
///     for city in ["Edmonton", "Calgary", "Red Deer"] {
///         let tl = &tl;
///         s.spawn(move || tl.span(city, || std::thread::sleep(std::time::Duration::from_millis(5))));
///     }
/// });
/// tl.mark("all fetched");
/// assert_eq!(tl.spans().len(), 4);
/// tl.show(); // SVG Gantt chart in the notebook, an ASCII chart in a terminal
/// ```
///
/// # Which lane does a span go to?
///
/// [`Timeline::span`], [`Timeline::enter`] and [`Timeline::mark`] use the calling OS thread's
/// lane (named after the thread, or `thread N`). Async tasks hop between worker threads, so
/// give them their own lane with [`Timeline::lane`]: `tl.lane("task 3").span(..)`.
#[derive(Clone)]
pub struct Timeline {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Timeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timeline")
            .field("lanes", &self.lanes())
            .field("records", &self.len())
            .finish()
    }
}

impl Default for Timeline {
    fn default() -> Self {
        Self::new()
    }
}

/// A span or mark read back from a [`Timeline`], times relative to the timeline's creation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    /// Lane name.
    pub lane: String,
    /// The label given when recording.
    pub label: String,
    /// Start time.
    pub start: Duration,
    /// End time; `None` while the span is still open.
    pub end: Option<Duration>,
    /// `true` for a [`Timeline::mark`] (an instant, `end == Some(start)`).
    pub is_mark: bool,
}

impl Timeline {
    /// An empty timeline using the real clock; time zero is now.
    pub fn new() -> Self {
        Self::with_clock(Arc::new(MonotonicClock::new()))
    }

    /// A timeline reading time from `clock` (e.g. a [`ManualClock`](crate::ManualClock) for
    /// deterministic tests).
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let shards = (0..(2 * cores).max(4))
            .map(|_| Mutex::new(Vec::new()))
            .collect();
        Timeline {
            inner: Arc::new(Inner {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                origin: clock.now_ns(),
                clock,
                shards,
                lanes: Mutex::new(Lanes {
                    names: Vec::new(),
                    index: HashMap::new(),
                }),
            }),
        }
    }

    /// Runs `f` inside a span called `label` on this thread's lane and returns its value.
    /// The span is closed even if `f` panics.
    pub fn span<T>(&self, label: impl Into<Cow<'static, str>>, f: impl FnOnce() -> T) -> T {
        let _guard = self.enter(label);
        f()
    }

    /// Opens a span on this thread's lane; it ends when the guard is dropped.
    ///
    /// ```
    /// let tl = kettle_timing::Timeline::new();
    /// {
    ///     let _g = tl.enter("parse");
    ///     // ... work ...
    /// } // span ends here
    /// ```
    pub fn enter(&self, label: impl Into<Cow<'static, str>>) -> SpanGuard<'_> {
        self.open(self.thread_lane(), label.into())
    }

    /// Records an instant event (a vertical tick) on this thread's lane.
    pub fn mark(&self, label: impl Into<Cow<'static, str>>) {
        self.push_mark(self.thread_lane(), label.into());
    }

    /// A named lane, independent of which thread records into it (use one per async task).
    pub fn lane(&self, name: &str) -> Lane<'_> {
        Lane {
            timeline: self,
            lane: self.intern(name),
        }
    }

    /// Number of records (spans and marks).
    pub fn len(&self) -> usize {
        self.inner.shards.iter().map(|s| lock(s).len()).sum()
    }

    /// `true` when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Lane names in order of first use.
    pub fn lanes(&self) -> Vec<String> {
        lock(&self.inner.lanes).names.clone()
    }

    /// Everything recorded so far, sorted by start time.
    pub fn spans(&self) -> Vec<Span> {
        let snap = self.snapshot();
        snap.records
            .iter()
            .map(|r| Span {
                lane: snap.lanes[r.lane as usize].clone(),
                label: r.label.to_string(),
                start: Duration::from_nanos(r.start),
                end: (r.end != OPEN).then(|| Duration::from_nanos(r.end)),
                is_mark: r.mark,
            })
            .collect()
    }

    /// Wall time, busy time per lane and parallelism achieved.
    pub fn summary(&self) -> Summary {
        self.snapshot().summary()
    }

    /// Shows the timeline (SVG Gantt chart, or ASCII outside the kernel).
    pub fn show(&self) -> kettle_display::DisplayHandle {
        kettle_display::display(self)
    }

    /// The chart as a standalone SVG document.
    pub fn to_svg(&self) -> String {
        crate::gantt::svg(&self.snapshot())
    }

    /// The chart as plain text.
    pub fn to_text(&self) -> String {
        crate::gantt::text(&self.snapshot())
    }

    fn now(&self) -> u64 {
        self.inner.clock.now_ns().saturating_sub(self.inner.origin)
    }

    fn open(&self, lane: u32, label: Cow<'static, str>) -> SpanGuard<'_> {
        let shard = shard_index(self.inner.shards.len());
        let start = self.now();
        let mut v = lock(&self.inner.shards[shard]);
        let index = v.len();
        v.push(Record {
            lane,
            label,
            start,
            end: OPEN,
            mark: false,
        });
        SpanGuard {
            timeline: self,
            shard,
            index,
        }
    }

    fn push_mark(&self, lane: u32, label: Cow<'static, str>) {
        let shard = shard_index(self.inner.shards.len());
        let t = self.now();
        lock(&self.inner.shards[shard]).push(Record {
            lane,
            label,
            start: t,
            end: t,
            mark: true,
        });
    }

    fn intern(&self, name: &str) -> u32 {
        let mut lanes = lock(&self.inner.lanes);
        if let Some(&i) = lanes.index.get(name) {
            return i;
        }
        let i = lanes.names.len() as u32;
        lanes.names.push(name.to_owned());
        lanes.index.insert(name.to_owned(), i);
        i
    }

    /// This OS thread's lane, cached per thread so the lane table lock is taken once.
    fn thread_lane(&self) -> u32 {
        thread_local! {
            /// (timeline id, lane) for the few timelines this thread used most recently.
            static CACHE: RefCell<Vec<(u64, u32)>> = const { RefCell::new(Vec::new()) };
        }
        let id = self.inner.id;
        if let Some(lane) = CACHE.with_borrow(|c| c.iter().find(|e| e.0 == id).map(|e| e.1)) {
            return lane;
        }
        let current = std::thread::current();
        let name = match current.name() {
            Some(n) => n.to_owned(),
            // ThreadId's Debug is "ThreadId(N)"; its numeric accessor is still unstable.
            None => format!("{:?}", current.id())
                .replace("ThreadId(", "thread ")
                .replace(')', ""),
        };
        let lane = self.intern(&name);
        CACHE.with_borrow_mut(|c| {
            // Notebooks create a new timeline per cell; keep the cache small.
            if c.len() >= 8 {
                c.remove(0);
            }
            c.push((id, lane));
        });
        lane
    }

    pub(crate) fn snapshot(&self) -> Snapshot {
        let now = self.now();
        let lanes = self.lanes();
        let mut records: Vec<Record> = Vec::with_capacity(self.len());
        for shard in self.inner.shards.iter() {
            records.extend(lock(shard).iter().cloned());
        }
        records.sort_by_key(|r| (r.start, r.lane));
        Snapshot {
            now,
            lanes,
            records,
        }
    }
}

/// Locks, ignoring poisoning: a panic inside a span must not make the timeline unusable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A per-thread shard, handed out round-robin so threads spread over the locks.
fn shard_index(n: usize) -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    SHARD.with(|s| *s % n)
}

/// An explicit lane of a [`Timeline`] (from [`Timeline::lane`]).
#[derive(Debug, Clone, Copy)]
pub struct Lane<'a> {
    timeline: &'a Timeline,
    lane: u32,
}

impl<'a> Lane<'a> {
    /// Runs `f` inside a span on this lane.
    pub fn span<T>(&self, label: impl Into<Cow<'static, str>>, f: impl FnOnce() -> T) -> T {
        let _guard = self.enter(label);
        f()
    }

    /// Opens a span on this lane, closed when the guard drops.
    pub fn enter(&self, label: impl Into<Cow<'static, str>>) -> SpanGuard<'a> {
        self.timeline.open(self.lane, label.into())
    }

    /// Records an instant event on this lane.
    pub fn mark(&self, label: impl Into<Cow<'static, str>>) {
        self.timeline.push_mark(self.lane, label.into());
    }
}

/// Ends its span when dropped (see [`Timeline::enter`]).
#[must_use = "the span ends when the guard is dropped; bind it with `let _g = ...`"]
#[derive(Debug)]
pub struct SpanGuard<'a> {
    timeline: &'a Timeline,
    shard: usize,
    index: usize,
}

impl Drop for SpanGuard<'_> {
    fn drop(&mut self) {
        let end = self.timeline.now();
        if let Some(r) = lock(&self.timeline.inner.shards[self.shard]).get_mut(self.index) {
            r.end = end.max(r.start);
        }
    }
}

/// A consistent copy of a timeline, taken for rendering.
pub(crate) struct Snapshot {
    pub(crate) now: u64,
    pub(crate) lanes: Vec<String>,
    /// Sorted by start time.
    pub(crate) records: Vec<Record>,
}

impl Snapshot {
    /// End of a record, with open spans running until the snapshot was taken.
    pub(crate) fn end_of(&self, r: &Record) -> u64 {
        if r.end == OPEN {
            self.now.max(r.start)
        } else {
            r.end
        }
    }

    /// `(first start, last end)`, or `None` when empty.
    pub(crate) fn range(&self) -> Option<(u64, u64)> {
        let t0 = self.records.first()?.start;
        let t1 = self.records.iter().map(|r| self.end_of(r)).max()?;
        Some((t0, t1))
    }

    /// Busy time of each lane: the union of its spans, so nested spans are not counted twice.
    pub(crate) fn busy(&self) -> Vec<u64> {
        let mut per_lane: Vec<Vec<(u64, u64)>> = vec![Vec::new(); self.lanes.len()];
        for r in self.records.iter().filter(|r| !r.mark) {
            per_lane[r.lane as usize].push((r.start, self.end_of(r)));
        }
        per_lane
            .into_iter()
            .map(|iv| {
                // Already sorted by start (records are).
                let (mut total, mut cur) = (0u64, None::<(u64, u64)>);
                for (s, e) in iv {
                    cur = match cur {
                        Some((cs, ce)) if s <= ce => Some((cs, ce.max(e))),
                        Some((cs, ce)) => {
                            total += ce - cs;
                            Some((s, e))
                        }
                        None => Some((s, e)),
                    };
                }
                total + cur.map_or(0, |(s, e)| e - s)
            })
            .collect()
    }

    pub(crate) fn summary(&self) -> Summary {
        let wall = self.range().map_or(0, |(a, b)| b - a);
        let busy = self.busy();
        let total: u64 = busy.iter().sum();
        Summary {
            wall: Duration::from_nanos(wall),
            busy: self
                .lanes
                .iter()
                .cloned()
                .zip(busy.into_iter().map(Duration::from_nanos))
                .collect(),
            parallelism: if wall > 0 {
                total as f64 / wall as f64
            } else {
                0.0
            },
            open_spans: self.records.iter().filter(|r| r.end == OPEN).count(),
        }
    }
}

/// Totals of a timeline: how long it took and how much work overlapped.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// From the first start to the last end.
    pub wall: Duration,
    /// Busy time of each lane (union of its spans), in lane order.
    pub busy: Vec<(String, Duration)>,
    /// Total busy ÷ wall: `1.0` is sequential, `4.0` means four lanes busy on average.
    pub parallelism: f64,
    /// Spans not finished when the summary was taken (counted up to that moment).
    pub open_spans: usize,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::fmt::dur;
        write!(f, "wall {}", dur(self.wall))?;
        if self.busy.len() <= 6 {
            let lanes: Vec<String> = self
                .busy
                .iter()
                .map(|(l, d)| format!("{l} {}", dur(*d)))
                .collect();
            write!(f, " · busy: {}", lanes.join(", "))?;
        } else {
            let total: Duration = self.busy.iter().map(|b| b.1).sum();
            write!(f, " · busy {} over {} lanes", dur(total), self.busy.len())?;
        }
        write!(f, " · parallelism {:.2}×", self.parallelism)?;
        if self.open_spans > 0 {
            write!(f, " · {} still open", self.open_spans)?;
        }
        Ok(())
    }
}

impl Rich for Timeline {
    /// SVG chart (also inline in HTML, so `currentColor` follows the notebook's theme) and the
    /// ASCII chart as the text fallback.
    fn bundle(&self) -> Bundle {
        let snap = self.snapshot();
        let svg = crate::gantt::svg(&snap);
        Bundle::text(crate::gantt::text(&snap))
            .with_html(format!("<div style=\"overflow-x:auto\">{svg}</div>"))
            .with_svg(svg)
    }
}

kettle_display::rich_value!(Timeline);
