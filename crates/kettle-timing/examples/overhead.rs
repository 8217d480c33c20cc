//! Measures what one recorded span costs: `cargo run --release -p kettle-timing --example overhead`.
//!
//! Prints nanoseconds per `span` with one thread, then with every core recording at once
//! (the contended case: threads share the timeline's lock shards).

use std::time::Instant;

use kettle_timing::Timeline;

const SPANS_PER_THREAD: u32 = 200_000;

fn per_span_ns(threads: usize) -> f64 {
    let tl = Timeline::new();
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                for i in 0..SPANS_PER_THREAD {
                    tl.span("work", || std::hint::black_box(i));
                }
            });
        }
    });
    let elapsed = start.elapsed();
    assert_eq!(tl.len(), threads * SPANS_PER_THREAD as usize);
    // Wall time per span per thread: what each recording thread pays.
    elapsed.as_nanos() as f64 / f64::from(SPANS_PER_THREAD)
}

fn main() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    per_span_ns(1); // warm up the allocator
    println!("1 thread:   {:>6.0} ns per span", per_span_ns(1));
    println!(
        "{cores} threads:  {:>6.0} ns per span (each thread)",
        per_span_ns(cores)
    );
    let marks = Timeline::new();
    let start = Instant::now();
    for _ in 0..SPANS_PER_THREAD {
        marks.mark("tick");
    }
    println!(
        "1 thread:   {:>6.0} ns per mark",
        start.elapsed().as_nanos() as f64 / f64::from(SPANS_PER_THREAD)
    );
}
