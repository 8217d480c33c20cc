//! Rendering a timeline [`Snapshot`] as an SVG Gantt chart and as ASCII text.
//!
//! Readability rules: bar colours come from a mid-luminance palette that works on light and
//! dark backgrounds; all other ink (axis, lane names, summary) is `currentColor`, so it follows
//! the notebook theme when the SVG is inlined in HTML. Lanes with many spans are drawn per
//! pixel column (coverage as opacity), so a million spans still make a small document.

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::fmt;
use crate::timeline::{Record, Snapshot};

/// Mid-luminance colours (Tableau 10): dark text stays readable on them and they stand out on
/// both white and near-black backgrounds.
pub(crate) const PALETTE: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac",
];

const WIDTH: f64 = 880.0;
const GUTTER: f64 = 140.0;
const RIGHT: f64 = 24.0;
const PLOT_W: f64 = WIDTH - GUTTER - RIGHT;
const ROW_H: f64 = 22.0;
const ROW_GAP: f64 = 6.0;
const TOP: f64 = 30.0;
/// Approximate width of one character of the 11–12 px sans-serif font.
const CHAR_W: f64 = 6.5;
/// Above this many spans in one lane, draw pixel buckets instead of one rect per span.
const DETAIL_LIMIT: usize = 2000;
/// Smallest time range drawn, so zero-length spans still get an axis.
const MIN_RANGE_NS: u64 = 1_000;

/// Colour group of a label: the label without a trailing number ("fetch 3" -> "fetch"), so
/// numbered tasks of one kind share a colour.
pub(crate) fn group_of(label: &str) -> &str {
    let g = label.trim_end_matches(|c: char| {
        c.is_ascii_digit() || c.is_whitespace() || matches!(c, '#' | '-' | '_' | ':' | '.')
    });
    if g.is_empty() { label } else { g }
}

/// Colour index per group, in order of first appearance.
fn colour_groups(snap: &Snapshot) -> (HashMap<&str, usize>, Vec<&str>) {
    let mut map = HashMap::new();
    let mut order = Vec::new();
    for r in snap.records.iter().filter(|r| !r.mark) {
        let g = group_of(&r.label);
        map.entry(g).or_insert_with(|| {
            order.push(g);
            order.len() - 1
        });
    }
    (map, order)
}

struct Scale {
    t0: u64,
    range: f64,
}

impl Scale {
    fn new(snap: &Snapshot) -> Option<Scale> {
        let (t0, t1) = snap.range()?;
        Some(Scale {
            t0,
            range: (t1 - t0).max(MIN_RANGE_NS) as f64,
        })
    }

    /// Position of `t` in `[0, width]`.
    fn at(&self, t: u64, width: f64) -> f64 {
        (t.saturating_sub(self.t0) as f64 / self.range * width).clamp(0.0, width)
    }
}

/// Per-column coverage of `spans` over `cols` columns, split by colour slot (`PALETTE.len()`
/// slots). Linear in spans + columns: interior columns go through a difference array.
fn buckets(
    snap: &Snapshot,
    scale: &Scale,
    spans: &[&Record],
    colour: &dyn Fn(&Record) -> usize,
    cols: usize,
) -> Vec<[f64; PALETTE.len()]> {
    let mut cover = vec![[0.0; PALETTE.len()]; cols];
    let mut diff = vec![[0.0; PALETTE.len()]; cols + 1];
    for r in spans {
        let g = colour(r);
        let fs = scale.at(r.start, cols as f64);
        let fe = scale.at(snap.end_of(r), cols as f64).max(fs);
        let (cs, ce) = (fs.floor() as usize, fe.floor() as usize);
        if cs >= cols {
            cover[cols - 1][g] += 1.0_f64.min(fe - fs).max(0.0);
        } else if cs == ce {
            cover[cs][g] += fe - fs;
        } else {
            cover[cs][g] += (cs + 1) as f64 - fs;
            if ce < cols {
                cover[ce][g] += fe - ce as f64;
            }
            diff[cs + 1][g] += 1.0;
            diff[ce.min(cols)][g] -= 1.0;
        }
    }
    let mut run = [0.0; PALETTE.len()];
    for c in 0..cols {
        for g in 0..PALETTE.len() {
            run[g] += diff[c][g];
            cover[c][g] += run[g];
        }
    }
    cover
}

/// The SVG document.
pub(crate) fn svg(snap: &Snapshot) -> String {
    let mut o = String::with_capacity(16 * 1024);
    let Some(scale) = Scale::new(snap) else {
        let _ = write!(
            o,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"36\" viewBox=\"0 0 {WIDTH} 36\" \
             font-family=\"system-ui, sans-serif\" font-size=\"12\" role=\"img\">\
             <text x=\"8\" y=\"22\" fill=\"currentColor\">Timeline: nothing recorded</text></svg>"
        );
        return o;
    };
    let summary = snap.summary();
    let (groups, group_order) = colour_groups(snap);
    let colour = |r: &Record| groups.get(group_of(&r.label)).copied().unwrap_or(0) % PALETTE.len();
    let n = snap.lanes.len().max(1) as f64;
    let lanes_y0 = TOP + 4.0;
    let axis_y = lanes_y0 + n * (ROW_H + ROW_GAP);
    let legend_y = axis_y + 34.0;
    let legend = legend_layout(&group_order);
    let height = legend_y + legend.last().map_or(0.0, |l| l.2 + 18.0);

    let _ = write!(
        o,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" \
         viewBox=\"0 0 {WIDTH} {height}\" font-family=\"system-ui, -apple-system, 'Segoe UI', sans-serif\" \
         font-size=\"12\" role=\"img\">"
    );
    let _ = write!(
        o,
        "<title>Timeline: {}</title><text x=\"8\" y=\"18\" fill=\"currentColor\" font-weight=\"600\">{}</text>",
        fmt::xml(&summary.to_string()),
        fmt::xml(&fmt::truncate(&summary.to_string(), (WIDTH / 6.8) as usize))
    );

    // Grid and axis first, so bars draw over them.
    for (t, label) in fmt::ticks(scale.range, 8) {
        let x = GUTTER + t / scale.range * PLOT_W;
        let _ = write!(
            o,
            "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{axis_y:.1}\" stroke=\"currentColor\" stroke-opacity=\"0.15\"/>\
             <text x=\"{x:.1}\" y=\"{:.1}\" fill=\"currentColor\" font-size=\"11\" text-anchor=\"middle\">{}</text>",
            lanes_y0 - 2.0,
            axis_y + 15.0,
            fmt::xml(&label)
        );
    }
    let _ = write!(
        o,
        "<line x1=\"{GUTTER}\" y1=\"{axis_y:.1}\" x2=\"{:.1}\" y2=\"{axis_y:.1}\" stroke=\"currentColor\" stroke-opacity=\"0.6\"/>",
        GUTTER + PLOT_W
    );

    let mut per_lane: Vec<Vec<&Record>> = vec![Vec::new(); snap.lanes.len()];
    for r in &snap.records {
        per_lane[r.lane as usize].push(r);
    }
    for (i, (name, records)) in snap.lanes.iter().zip(&per_lane).enumerate() {
        let y = lanes_y0 + i as f64 * (ROW_H + ROW_GAP);
        let _ = write!(
            o,
            "<g><title>{} — busy {}</title><text x=\"{:.1}\" y=\"{:.1}\" fill=\"currentColor\" text-anchor=\"end\">{}</text></g>\
             <rect x=\"{GUTTER}\" y=\"{y:.1}\" width=\"{PLOT_W}\" height=\"{ROW_H}\" fill=\"currentColor\" fill-opacity=\"0.05\"/>",
            fmt::xml(name),
            fmt::dur(summary.busy[i].1),
            GUTTER - 8.0,
            y + ROW_H / 2.0 + 4.0,
            fmt::xml(&fmt::truncate(name, ((GUTTER - 16.0) / CHAR_W) as usize))
        );
        let spans: Vec<&Record> = records.iter().copied().filter(|r| !r.mark).collect();
        if spans.len() > DETAIL_LIMIT {
            lane_buckets(&mut o, snap, &scale, &spans, &colour, y, name);
        } else {
            lane_detail(&mut o, snap, &scale, &spans, &colour, y, name);
        }
        for r in records.iter().filter(|r| r.mark).take(500) {
            let x = GUTTER + scale.at(r.start, PLOT_W);
            let _ = write!(
                o,
                "<g><title>{} @ {}</title><line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"currentColor\" stroke-width=\"1.5\"/>\
                 <path d=\"M{:.1} {:.1}h8l-4 5z\" fill=\"currentColor\"/></g>",
                fmt::xml(&r.label),
                fmt::ns((r.start - scale.t0) as f64),
                y - 2.0,
                y + ROW_H + 2.0,
                x - 4.0,
                y - 3.0
            );
        }
    }

    for (g, x, dy) in legend {
        let yy = legend_y + dy;
        let _ = write!(
            o,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"10\" height=\"10\" rx=\"2\" fill=\"{}\"/>\
             <text x=\"{:.1}\" y=\"{yy:.1}\" fill=\"currentColor\" font-size=\"11\">{}</text>",
            yy - 9.0,
            PALETTE[groups[g] % PALETTE.len()],
            x + 14.0,
            fmt::xml(&fmt::truncate(g, 24))
        );
    }
    o.push_str("</svg>");
    o
}

/// `(group, x, row offset)` for each legend entry, wrapping at the chart width.
fn legend_layout<'a>(groups: &[&'a str]) -> Vec<(&'a str, f64, f64)> {
    let (mut x, mut dy) = (GUTTER, 0.0);
    let mut out = Vec::new();
    for g in groups.iter().take(PALETTE.len()) {
        let w = 14.0 + fmt::truncate(g, 24).chars().count() as f64 * CHAR_W + 16.0;
        if x + w > WIDTH - RIGHT && x > GUTTER {
            x = GUTTER;
            dy += 18.0;
        }
        out.push((*g, x, dy));
        x += w;
    }
    out
}

fn lane_detail(
    o: &mut String,
    snap: &Snapshot,
    scale: &Scale,
    spans: &[&Record],
    colour: &dyn Fn(&Record) -> usize,
    y: f64,
    lane: &str,
) {
    // Nesting depth: spans that start inside a still-running span on the same lane are drawn
    // thinner on top of it.
    let mut stack: Vec<u64> = Vec::new();
    for r in spans {
        let end = snap.end_of(r);
        while stack.last().is_some_and(|&e| e <= r.start) {
            stack.pop();
        }
        let depth = stack.len().min(3) as f64;
        stack.push(end);
        let x = GUTTER + scale.at(r.start, PLOT_W);
        let w = (GUTTER + scale.at(end, PLOT_W) - x).max(1.0);
        let (ry, rh) = (y + depth * 3.0, ROW_H - depth * 6.0);
        let open = r.end == u64::MAX;
        let _ = write!(
            o,
            "<g><title>{} — {}\nstart {}, {} {}</title><rect x=\"{x:.2}\" y=\"{ry:.1}\" width=\"{w:.2}\" height=\"{rh:.1}\" rx=\"2\" fill=\"{}\"{}/>",
            fmt::xml(&r.label),
            fmt::xml(lane),
            fmt::ns((r.start - scale.t0) as f64),
            if open { "running for" } else { "took" },
            fmt::ns((end - r.start) as f64),
            PALETTE[colour(r)],
            if open {
                " stroke=\"currentColor\" stroke-dasharray=\"3 2\""
            } else {
                ""
            }
        );
        let fit = ((w - 6.0) / CHAR_W).floor().max(0.0) as usize;
        let text = fmt::truncate(&r.label, fit);
        if fit >= 3 && !text.is_empty() {
            let _ = write!(
                o,
                "<text x=\"{:.2}\" y=\"{:.1}\" fill=\"#111\" font-size=\"11\" pointer-events=\"none\">{}</text>",
                x + 3.0,
                y + ROW_H / 2.0 + 4.0,
                fmt::xml(&text)
            );
        }
        o.push_str("</g>");
    }
}

fn lane_buckets(
    o: &mut String,
    snap: &Snapshot,
    scale: &Scale,
    spans: &[&Record],
    colour: &dyn Fn(&Record) -> usize,
    y: f64,
    lane: &str,
) {
    let cols = PLOT_W as usize;
    let cover = buckets(snap, scale, spans, colour, cols);
    // (dominant colour, opacity level 1..=4) per column; runs of equal columns become one rect.
    let cell = |c: usize| {
        let total: f64 = cover[c].iter().sum();
        let level = (total.min(1.0) * 4.0).ceil() as u8;
        let dominant = (0..PALETTE.len())
            .max_by(|a, b| cover[c][*a].total_cmp(&cover[c][*b]))
            .unwrap_or(0);
        (dominant, level)
    };
    let mut c = 0;
    while c < cols {
        let key = cell(c);
        let start = c;
        while c < cols && cell(c) == key {
            c += 1;
        }
        if key.1 == 0 {
            continue;
        }
        let _ = write!(
            o,
            "<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{}\" height=\"{ROW_H}\" fill=\"{}\" fill-opacity=\"{}\">\
             <title>{} — {} spans, drawn per pixel (about {}% busy here)</title></rect>",
            GUTTER + start as f64,
            c - start,
            PALETTE[key.0],
            f64::from(key.1) / 4.0,
            fmt::xml(lane),
            spans.len(),
            u32::from(key.1) * 25
        );
    }
}

/// The ASCII chart: one row per lane, `#` mostly busy, `+` partly busy, `^` a mark.
pub(crate) fn text(snap: &Snapshot) -> String {
    const COLS: usize = 60;
    let Some(scale) = Scale::new(snap) else {
        return "Timeline: nothing recorded\n".to_owned();
    };
    let summary = snap.summary();
    let name_w = snap
        .lanes
        .iter()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(0)
        .clamp(4, 16);
    let mut o = format!("Timeline · {summary}\n");
    let end_label = fmt::ns(scale.range);
    let _ = writeln!(
        o,
        "{}  0{}{}",
        " ".repeat(name_w),
        // Right-align the end label with the last column of the bars.
        " ".repeat((COLS - 1).saturating_sub(end_label.chars().count())),
        end_label
    );
    let mut per_lane: Vec<Vec<&Record>> = vec![Vec::new(); snap.lanes.len()];
    for r in &snap.records {
        per_lane[r.lane as usize].push(r);
    }
    for (i, (name, records)) in snap.lanes.iter().zip(&per_lane).enumerate() {
        let spans: Vec<&Record> = records.iter().copied().filter(|r| !r.mark).collect();
        let cover = buckets(snap, &scale, &spans, &|_| 0, COLS);
        let mut row: Vec<char> = cover
            .iter()
            .map(|c| match c[0] {
                v if v >= 0.5 => '#',
                v if v > 0.0 => '+',
                _ => ' ',
            })
            .collect();
        // Zero-length spans have no coverage but did happen: show them.
        for r in &spans {
            let c = (scale.at(r.start, COLS as f64) as usize).min(COLS - 1);
            if row[c] == ' ' {
                row[c] = '+';
            }
        }
        for r in records.iter().filter(|r| r.mark) {
            let c = (scale.at(r.start, COLS as f64) as usize).min(COLS - 1);
            if row[c] == ' ' {
                row[c] = '^';
            }
        }
        let _ = writeln!(
            o,
            "{} |{}| {}",
            fmt::pad(name, name_w),
            row.into_iter().collect::<String>(),
            fmt::dur(summary.busy[i].1)
        );
    }
    if snap.records.len() <= 12 {
        for r in &snap.records {
            let start = fmt::ns((r.start - scale.t0) as f64);
            let lane = &snap.lanes[r.lane as usize];
            let _ = if r.mark {
                writeln!(o, "  ^ {} ({lane}) at {start}", r.label)
            } else if r.end == u64::MAX {
                writeln!(o, "  - {} ({lane}) from {start}, still running", r.label)
            } else {
                let took = fmt::ns((r.end - r.start) as f64);
                writeln!(o, "  - {} ({lane}) from {start}, took {took}", r.label)
            };
        }
    }
    o
}
