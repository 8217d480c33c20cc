//! Renders the README's example chart from a scripted (deterministic) timeline:
//! `cargo run -p kettle-timing --example chart > crates/kettle-timing/docs/timeline.svg`.
//!
//! The story: one thread fetches three cities one after another, then four workers fetch
//! eight cities concurrently and a main thread parses the results as they arrive.

use std::sync::Arc;
use std::time::Duration;

use kettle_timing::{ManualClock, Timeline};

fn main() {
    let clock = ManualClock::new();
    let tl = Timeline::with_clock(Arc::new(clock.clone()));
    let at = |ms: u64| clock.set(Duration::from_millis(ms));
    let main_lane = tl.lane("main");

    // Sequential part: one lane, one fetch after another.
    for (i, city) in ["Edmonton", "Calgary", "Red Deer"].into_iter().enumerate() {
        let t = i as u64 * 120;
        at(t);
        let g = main_lane.enter(format!("fetch {city}"));
        at(t + 110);
        drop(g);
    }
    at(360);
    main_lane.mark("start pool");

    // Concurrent part: four workers, two cities each, with uneven latencies.
    let cities = [
        ("Banff", 90),
        ("Jasper", 140),
        ("Lethbridge", 60),
        ("Medicine Hat", 120),
        ("Fort McMurray", 180),
        ("Grande Prairie", 70),
        ("Canmore", 100),
        ("Airdrie", 40),
    ];
    let mut events: Vec<(u64, bool, usize)> = Vec::new(); // (time, is_end, city)
    let mut free_at = [370u64; 4];
    let mut lane_of = Vec::new();
    for (i, (_, latency)) in cities.iter().enumerate() {
        let w = (0..4).min_by_key(|w| free_at[*w]).unwrap();
        events.push((free_at[w], false, i));
        events.push((free_at[w] + latency, true, i));
        free_at[w] += latency + 5;
        lane_of.push(w);
    }
    events.sort();
    let lanes: Vec<_> = (1..=4).map(|w| tl.lane(&format!("worker-{w}"))).collect();
    let mut guards: Vec<Option<_>> = (0..cities.len()).map(|_| None).collect();
    let mut parse = Vec::new();
    for (t, is_end, i) in events {
        at(t);
        if is_end {
            guards[i] = None;
            parse.push(t);
        } else {
            guards[i] = Some(lanes[lane_of[i]].enter(format!("fetch {}", cities[i].0)));
        }
    }
    for t in parse {
        at(t + 2);
        let g = main_lane.enter("parse");
        at(t + 14);
        drop(g);
    }
    at(640);
    main_lane.mark("done");
    print!("{}", tl.to_svg());
    eprint!("{}", tl.to_text());
}
