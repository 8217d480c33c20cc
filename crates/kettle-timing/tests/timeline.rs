//! Timeline rendering: golden output from a manual clock, SVG that parses as XML, and the edge
//! cases a notebook will hit (empty, zero-length, still open, a million spans).

use std::sync::Arc;
use std::time::{Duration, Instant};

use kettle_timing::{ManualClock, Timeline};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Two lanes fetching cities, one nested span, one mark, one span left open.
fn scripted() -> Timeline {
    let clock = ManualClock::new();
    let tl = Timeline::with_clock(Arc::new(clock.clone()));
    let a = tl.lane("worker-1");
    let b = tl.lane("worker-2");
    let g1 = a.enter("Edmonton");
    clock.set(ms(2));
    let g2 = b.enter("Calgary");
    clock.set(ms(5));
    let inner = a.enter("parse");
    clock.set(ms(7));
    drop(inner);
    clock.set(ms(10));
    drop(g1);
    clock.set(ms(12));
    b.mark("retry");
    clock.set(ms(20));
    drop(g2);
    let _open = a.enter("Red Deer");
    clock.set(ms(25));
    std::mem::forget(_open); // still open at render time
    tl
}

fn assert_xml(svg: &str) -> roxmltree::Document<'_> {
    roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("SVG is not XML: {e}\n{svg}"))
}

#[test]
fn summary_counts_union_busy_time_and_open_spans() {
    let s = scripted().summary();
    assert_eq!(s.wall, ms(25));
    assert_eq!(
        s.busy,
        [
            ("worker-1".to_owned(), ms(15)),
            ("worker-2".to_owned(), ms(18))
        ]
    );
    assert!((s.parallelism - 33.0 / 25.0).abs() < 1e-9);
    assert_eq!(s.open_spans, 1);
}

#[test]
fn text_rendering_is_golden() {
    let text = scripted().to_text();
    let expected = "\
Timeline · wall 25.0 ms · busy: worker-1 15.0 ms, worker-2 18.0 ms · parallelism 1.32× · 1 still open
          0                                                    25.0 ms
worker-1 |########################                        ############| 15.0 ms
worker-2 |    +###########################################            | 18.0 ms
  - Edmonton (worker-1) from 0 s, took 10.0 ms
  - Calgary (worker-2) from 2.00 ms, took 18.0 ms
  - parse (worker-1) from 5.00 ms, took 2.00 ms
  ^ retry (worker-2) at 12.0 ms
  - Red Deer (worker-1) from 20.0 ms, still running
";
    assert_eq!(
        text, expected,
        "\n--- got ---\n{text}\n--- expected ---\n{expected}"
    );
}

#[test]
fn svg_is_xml_with_lanes_tooltips_and_theme_colours() {
    let tl = scripted();
    let svg = tl.to_svg();
    let doc = assert_xml(&svg);
    let texts: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .collect();
    for want in [
        "worker-1", "worker-2", "Edmonton", "Calgary", "0", "10 ms", "20 ms",
    ] {
        assert!(texts.contains(&want), "missing text {want:?} in {texts:?}");
    }
    let titles: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("title"))
        .filter_map(|n| n.text())
        .collect();
    assert!(
        titles
            .iter()
            .any(|t| t.contains("parse") && t.contains("took 2.00 ms"))
    );
    assert!(
        titles
            .iter()
            .any(|t| t.contains("Red Deer") && t.contains("running for 5.00 ms"))
    );
    assert!(titles.iter().any(|t| t.starts_with("retry @ 12.0 ms")));
    // Axis and lane names follow the theme; no hard-coded black or white ink.
    assert!(svg.contains("currentColor"));
    assert!(!svg.contains("#000") && !svg.contains("#fff\""));
    // Same input, same bytes: golden-file friendly.
    assert_eq!(svg, tl.to_svg());
}

#[test]
fn empty_timeline_renders() {
    let tl = Timeline::new();
    assert_xml(&tl.to_svg());
    assert_eq!(tl.to_text(), "Timeline: nothing recorded\n");
    assert_eq!(tl.summary().parallelism, 0.0);
}

#[test]
fn zero_length_spans_and_only_marks_render() {
    let clock = ManualClock::new();
    let tl = Timeline::with_clock(Arc::new(clock.clone()));
    tl.lane("a").span("instant", || ());
    tl.lane("b").mark("tick");
    assert_xml(&tl.to_svg());
    let text = tl.to_text();
    assert!(text.contains("wall 0 s"), "{text}");
    assert!(text.contains('+') && text.contains('^'), "{text}");
}

#[test]
fn hostile_labels_are_escaped() {
    let tl = Timeline::new();
    tl.lane("<lane & \"co\">")
        .span("</svg><script>\u{1}", || ());
    assert_xml(&tl.to_svg());
}

#[test]
fn thread_lanes_use_thread_names() {
    let tl = Timeline::new();
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("fetcher".into())
            .spawn_scoped(s, || tl.span("get", || ()))
            .unwrap();
        s.spawn(|| tl.mark("anonymous"));
    });
    let lanes = tl.lanes();
    assert_eq!(lanes.len(), 2);
    assert!(lanes.contains(&"fetcher".to_owned()));
    assert!(lanes.iter().any(|l| l.starts_with("thread ")), "{lanes:?}");
}

#[test]
fn span_closes_on_panic() {
    let tl = Timeline::new();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        tl.span("boom", || panic!("expected"))
    }));
    assert!(r.is_err());
    assert!(tl.spans()[0].end.is_some());
}

#[test]
fn a_million_spans_aggregate_into_a_small_svg() {
    let clock = ManualClock::new();
    let tl = Timeline::with_clock(Arc::new(clock.clone()));
    let lanes = [tl.lane("one"), tl.lane("two")];
    for i in 0..1_000_000u64 {
        let _g = lanes[(i % 2) as usize].enter(if i % 3 == 0 { "read" } else { "sum" });
        clock.advance(Duration::from_nanos(700 + i % 500));
    }
    let t = Instant::now();
    let svg = tl.to_svg();
    let text = tl.to_text();
    let took = t.elapsed();
    assert_xml(&svg);
    assert!(svg.len() < 400_000, "SVG is {} bytes", svg.len());
    assert!(text.contains("one") && text.lines().count() < 10, "{text}");
    assert!(took < Duration::from_secs(10), "rendering took {took:?}");
}
