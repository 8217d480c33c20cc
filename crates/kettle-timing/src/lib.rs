//! Timing that shows up inline in a notebook (the **kettle** Jupyter kernel) and as clean text
//! in a terminal.
//!
//! | you want to know…                                  | use                     |
//! |----------------------------------------------------|-------------------------|
//! | how long one thing took, and how many cores worked | [`time`], [`time!`]     |
//! | a stable number for a short snippet                | [`timeit`], [`Timeit`]  |
//! | which thread did what, when (Gantt chart)          | [`Timeline`]            |
//! | whether the parallel version is actually faster    | [`Compare`]             |
//! | how far a long loop has got                        | [`Progress`]            |
//!
//! ```
//! use kettle_timing::{Timeline, time};
//! use std::time::Duration;
//!
//! let tl = Timeline::new();
//! let total: u64 = time(|| {
//!     std::thread::scope(|s| {
//!         let handles: Vec<_> = (0..2u64)
//!             .map(|i| {
//!                 let tl = &tl;
//!                 s.spawn(move || tl.span(format!("chunk {i}"), || (i * 1000..(i + 1) * 1000).sum::<u64>()))
//!             })
//!             .collect();
//!         handles.into_iter().map(|h| h.join().unwrap()).sum()
//!     })
//! });
//! assert_eq!(total, 1999000);
//! tl.show();
//! ```
//!
//! Every result type implements [`kettle_display::Rich`] and has an `evcxr_display` method, so
//! leaving one as the last expression of a cell shows it too. Functions that show their result
//! as they return ([`time`], [`timeit`], [`Compare::run`]) have a `measure` twin that does not.
#![deny(missing_docs)]

mod clock;
mod compare;
mod cpu;
mod fmt;
mod gantt;
mod progress;
mod time;
mod timeit;
mod timeline;

pub use clock::{Clock, ManualClock, MonotonicClock};
pub use compare::{Compare, CompareResult, VariantResult};
pub use cpu::CpuTimes;
pub use progress::Progress;
pub use time::{TimeReport, measure, time, time_named};
pub use timeit::{Timeit, TimeitResult, timeit};
pub use timeline::{Lane, Span, SpanGuard, Summary, Timeline};
