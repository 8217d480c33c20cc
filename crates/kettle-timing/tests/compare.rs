//! Compare tables and charts from injected timings (golden), plus one real run.

use std::time::Duration;

use kettle_timing::{Compare, CompareResult, VariantResult};

fn injected() -> CompareResult {
    let ms = |v: &[u64]| v.iter().map(|m| Duration::from_millis(*m)).collect();
    CompareResult {
        title: "sum of squares".into(),
        cores: 4,
        variants: vec![
            VariantResult {
                name: "sequential".into(),
                samples: ms(&[400, 410, 395, 420, 405]),
            },
            VariantResult {
                name: "4 threads <scoped>".into(),
                samples: ms(&[120, 110, 100, 130, 105]),
            },
        ],
    }
}

#[test]
fn table_text_is_golden() {
    let r = injected();
    assert_eq!(r.variants[1].median(), Duration::from_millis(110));
    assert!((r.speedup(1) - 405.0 / 110.0).abs() < 1e-9);
    assert!((r.best_speedup(1) - 395.0 / 100.0).abs() < 1e-9);
    assert_eq!(r.best_speedup(7), 0.0);
    let expected = "\
sum of squares — 5 runs each, 4 cores available
variant                median              min – max  speed-up  efficiency
sequential             405 ms        395 ms – 420 ms     1.00×         25%
4 threads <scoped>     110 ms        100 ms – 130 ms     3.68×         92%
";
    assert_eq!(r.to_text(), expected, "\n{}", r.to_text());
}

#[test]
fn chart_and_table_are_xml() {
    let r = injected();
    roxmltree::Document::parse(&r.to_svg()).unwrap();
    roxmltree::Document::parse(&r.to_html()).unwrap();
    assert!(r.to_html().contains("4 threads &lt;scoped&gt;"));
}

#[test]
fn real_run_keeps_variant_order() {
    let v: Vec<u64> = (0..10_000).collect();
    let r = Compare::new("sum")
        .runs(3)
        .variant("iter", || v.iter().sum::<u64>())
        .variant("max", || v.iter().max().copied())
        .measure();
    assert_eq!(r.variants[0].name, "iter");
    assert_eq!(r.variants[1].name, "max");
    assert_eq!(r.variants[1].samples.len(), 3);
}
