//! Formatting shared by every renderer: human durations, "nice" axis ticks, sparklines, XML
//! escaping and label truncation.

use std::time::Duration;

/// Formats nanoseconds with three significant digits and the best unit: `85 ns`, `12.3 µs`,
/// `456 ms`, `1.23 s`.
pub(crate) fn ns(ns: f64) -> String {
    if !ns.is_finite() || ns <= 0.0 {
        return "0 s".to_owned();
    }
    let (v, unit) = if ns >= 1e9 {
        (ns / 1e9, "s")
    } else if ns >= 1e6 {
        (ns / 1e6, "ms")
    } else if ns >= 1e3 {
        (ns / 1e3, "µs")
    } else {
        (ns, "ns")
    };
    let decimals = if v >= 100.0 || unit == "ns" {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    format!("{v:.decimals$} {unit}")
}

/// [`ns`] for a [`Duration`].
pub(crate) fn dur(d: Duration) -> String {
    ns(d.as_nanos() as f64)
}

/// Axis ticks for `[0, range_ns]`: a 1-2-5 step giving about `target` ticks, with labels in one
/// unit chosen from the step (so `0, 0.5 ms, 1 ms` rather than `0, 500 µs, 1.00 ms`).
pub(crate) fn ticks(range_ns: f64, target: usize) -> Vec<(f64, String)> {
    if range_ns.is_nan() || range_ns <= 0.0 {
        return vec![(0.0, "0".to_owned())];
    }
    let raw = range_ns / target.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    // The unit follows the whole range, so the last tick reads "1.2 ms", not "1200 µs".
    let (unit_ns, unit) = if range_ns >= 1e9 {
        (1e9, "s")
    } else if range_ns >= 1e6 {
        (1e6, "ms")
    } else if range_ns >= 1e3 {
        (1e3, "µs")
    } else {
        (1.0, "ns")
    };
    let decimals = (-(step / unit_ns).log10().floor()).max(0.0) as usize;
    let mut out = Vec::new();
    let mut i = 0u32;
    loop {
        let t = step * f64::from(i);
        if t > range_ns * (1.0 + 1e-9) {
            break;
        }
        let label = if i == 0 {
            "0".to_owned()
        } else {
            format!("{:.decimals$} {unit}", t / unit_ns)
        };
        out.push((t, label));
        i += 1;
    }
    out
}

/// A one-line chart of `values`, lowest as `▁`, highest as `█`.
pub(crate) fn sparkline(values: &[f64]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    values
        .iter()
        .map(|v| {
            if hi - lo <= f64::EPSILON * hi.abs() {
                BARS[3]
            } else {
                BARS[(((v - lo) / (hi - lo)) * 7.0).round() as usize]
            }
        })
        .collect()
}

/// Escapes text for XML/HTML content and attribute values.
pub(crate) fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters are not allowed in XML 1.0 at all.
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// `s` cut to at most `max` characters, with `…` marking the cut; empty if even `x…` won't fit.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        s.to_owned()
    } else if max < 2 {
        String::new()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

/// Pads or truncates to exactly `width` characters (for text tables).
pub(crate) fn pad(s: &str, width: usize) -> String {
    let t = truncate(s, width);
    let n = t.chars().count();
    format!("{t}{}", " ".repeat(width - n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_use_three_significant_digits() {
        assert_eq!(ns(85.0), "85 ns");
        assert_eq!(ns(12_345.0), "12.3 µs");
        assert_eq!(ns(456_000_000.0), "456 ms");
        assert_eq!(ns(1_234_000_000.0), "1.23 s");
        assert_eq!(ns(0.0), "0 s");
    }

    #[test]
    fn ticks_are_nice() {
        let t: Vec<String> = ticks(1.3e6, 8).into_iter().map(|t| t.1).collect();
        assert_eq!(
            t,
            [
                "0", "0.2 ms", "0.4 ms", "0.6 ms", "0.8 ms", "1.0 ms", "1.2 ms"
            ]
        );
        let t: Vec<String> = ticks(3.0e9, 6).into_iter().map(|t| t.1).collect();
        assert_eq!(
            t,
            ["0", "0.5 s", "1.0 s", "1.5 s", "2.0 s", "2.5 s", "3.0 s"]
        );
        assert_eq!(ticks(0.0, 6).len(), 1);
    }

    #[test]
    fn sparkline_and_truncate() {
        assert_eq!(sparkline(&[1.0, 2.0, 3.0]), "▁▅█");
        assert_eq!(sparkline(&[2.0, 2.0]), "▄▄");
        assert_eq!(truncate("Edmonton", 5), "Edmo…");
        assert_eq!(truncate("Edmonton", 1), "");
        assert_eq!(pad("ab", 4), "ab  ");
    }
}
