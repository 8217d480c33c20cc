//! Where a cell's output goes: the [`Sink`] routes text and rich output to the running cell,
//! or, between cells, to the late-output channel (output of threads a cell left running), and
//! enforces the per-cell output cap.
//!
//! Text from stdout and stderr goes into one queue in the order it arrived (the order the cell
//! wrote it, for what comes through the ordered channel, see [`super::channel`]), and a publisher
//! sends the queue every [`PUBLISH_EVERY`], merging neighbouring pieces of the same stream: a
//! thread's interleaved `println!`/`eprintln!` keep their order, and a flood becomes at most one
//! message per stream per tick. A display first publishes the text queued before it.

use super::build_progress::Crates;
use super::prelude::PanicReport;
use super::{Event, StreamName};
use std::path::PathBuf;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// Text a cell may print per stream before the rest is counted instead of shown. Past this a
/// frontend slows to a crawl and the notebook file grows by megabytes.
pub const OUTPUT_CAP_BYTES: usize = 4 * 1024 * 1024;

/// How often queued text is published (at most 50 stream messages a second per stream).
pub const PUBLISH_EVERY: Duration = Duration::from_millis(20);

/// How much earlier than the cell's start a file in the build directory may look and still be
/// the cell's: file times come from the kernel's coarse clock, which lags the one we read.
pub(super) const CLOCK_SLACK: Duration = Duration::from_millis(50);

/// What the engine thread sends back to the caller of `Engine::execute`.
pub(super) enum CellMsg {
    Event(Event),
    Done(super::Outcome),
}

/// Where output goes right now.
#[derive(Default)]
pub(super) struct Sink {
    /// The running cell, if any.
    cell: Option<Sender<CellMsg>>,
    /// Output that arrives between cells, when someone listens for it.
    late: Option<Sender<Event>>,
    /// A panic of the cell's own thread, reported by the prelude's hook.
    panic: Option<PanicReport>,
    /// Bytes shown / not shown in this cell, per stream (stdout, stderr).
    shown: [usize; 2],
    hidden: [usize; 2],
    /// Dependencies compiled for the running cell, shown as one updating display.
    build: Option<BuildProgress>,
    /// The running cell's cargo target directory, and a moment just before the cell started:
    /// what was built there since is the cell's build (see `build_progress::scan`).
    watch: Option<(PathBuf, SystemTime)>,
    /// Text waiting for the publisher, in arrival order: (stream, text, late).
    queued: Vec<(StreamName, String, bool)>,
}

struct BuildProgress {
    display_id: String,
    started: std::time::Instant,
    /// Crates done (from the build directory) or seen starting (from cargo's lines).
    crates: usize,
    /// Crates in the build, when read from the build directory.
    total: Option<usize>,
    /// What cargo is compiling now.
    current: String,
}

impl BuildProgress {
    /// The display event showing `what`: new (`update == false`) or replacing the last one.
    fn event(&self, what: &str, update: bool) -> Event {
        Event::Display {
            data: self.bundle(what),
            metadata: Default::default(),
            display_id: Some(self.display_id.clone()),
            update,
        }
    }

    fn bundle(&self, what: &str) -> super::MimeBundle {
        let seconds = self.started.elapsed().as_secs_f64();
        let crates = match self.total {
            Some(total) => format!("{}/{total} crates", self.crates),
            None => format!("{} crates", self.crates),
        };
        build_bundle(&format!("{what} · {crates} · {seconds:.1} s"))
    }
}

/// Prefix of the display ids of kettle's displays about dependencies (builds, crates added
/// ahead): clients and tests can tell them from the cell's own output.
pub(super) const BUILD_DISPLAY_PREFIX: &str = "kettle-build-";

/// A new id for a display about dependencies.
pub(super) fn build_display_id() -> String {
    format!("{BUILD_DISPLAY_PREFIX}{}", uuid::Uuid::new_v4().simple())
}

/// How kettle's displays about dependencies look: one dim line with a gear.
pub(super) fn build_bundle(text: &str) -> super::MimeBundle {
    let html = format!(
        "<div style=\"font-family: var(--jp-code-font-family, monospace); opacity: 0.75\">\
         &#9881; {}</div>",
        text.replace('&', "&amp;").replace('<', "&lt;"),
    );
    let mut bundle = super::MimeBundle::new();
    bundle.insert("text/plain".into(), text.into());
    bundle.insert("text/html".into(), html.into());
    bundle
}

pub(super) type SharedSink = Arc<Mutex<Sink>>;

fn index(name: StreamName) -> usize {
    match name {
        StreamName::Stdout => 0,
        StreamName::Stderr => 1,
    }
}

impl Sink {
    /// Routes output to `cell` until [`Sink::close`].
    pub(super) fn open(&mut self, cell: Sender<CellMsg>) {
        self.panic = None;
        self.build = None;
        self.watch = None;
        self.shown = [0; 2];
        self.hidden = [0; 2];
        self.cell = Some(cell);
    }

    /// Stops routing to the cell, first telling it how much output the cap held back; returns
    /// the panic it reported, if any.
    pub(super) fn close(&mut self) -> Option<PanicReport> {
        self.publish_queued();
        if let (Some((target, since)), Some(build)) = (self.watch.take(), self.build.as_mut()) {
            // The last word on the counts: the build ended since the clock last looked.
            let crates = super::build_progress::scan(&target, since);
            if crates.total > 0 {
                build.crates = crates.done;
                build.total = Some(crates.total);
            }
        }
        if let Some(build) = self.build.take() {
            let end = match build.total {
                Some(total) if build.crates < total => "build stopped",
                _ => "dependencies built",
            };
            self.send(build.event(end, true));
        }
        for name in [StreamName::Stdout, StreamName::Stderr] {
            let hidden = self.hidden[index(name)];
            if hidden > 0 {
                let text = format!(
                    "\n[kettle: output truncated: {hidden} bytes of {} not shown (limit {} MiB per cell)]\n",
                    name.as_str(),
                    OUTPUT_CAP_BYTES / (1024 * 1024)
                );
                self.send(Event::Stream {
                    name: StreamName::Stderr,
                    text,
                });
            }
        }
        self.cell = None;
        self.shown = [0; 2];
        self.hidden = [0; 2];
        self.panic.take()
    }

    /// From now until the cell ends, what cargo builds in `target` (the cell crate's target
    /// directory) is the cell's build, shown with counts (see `build_progress::scan`).
    /// `last_cell_compile` is when cargo last started compiling a cell there
    /// ([`super::build_progress::cell_invoked`]): that compile, and what came before it, was an
    /// earlier cell's, even when it ended less than the clock's slack ago (a kept compile takes
    /// a few milliseconds).
    pub(super) fn watch_builds(&mut self, target: PathBuf, last_cell_compile: Option<SystemTime>) {
        if self.cell.is_some() {
            let mut since = SystemTime::now() - CLOCK_SLACK;
            if let Some(last) = last_cell_compile {
                since = since.max(last + Duration::from_nanos(1));
            }
            self.watch = Some((target, since));
        }
    }

    /// The running cell's build directory and start, if it has them.
    pub(super) fn build_watch(&self) -> Option<(PathBuf, SystemTime)> {
        self.cell.as_ref().and(self.watch.clone())
    }

    /// What the build directory says about the build of the cell started at `since` (a cell
    /// that has ended since the directory was read is not this one); nothing is shown until it
    /// has a crate to build. Once the cell's own crate compiles, the display shows its last
    /// state and nobody looks any more (the cell may run for long).
    pub(super) fn build_crates(&mut self, crates: Crates, since: SystemTime) {
        if self.cell.is_none() || self.watch.as_ref().map(|w| w.1) != Some(since) {
            return;
        }
        // A build first seen when it is already over (it took less than a look) is not shown.
        if (crates.total > 0 && !crates.cell_started) || self.build.is_some() {
            let current = if crates.cell_started {
                "dependencies built".to_owned()
            } else {
                crates.activity()
            };
            self.show_build(current, |build| {
                build.crates = crates.done;
                build.total = Some(crates.total);
            });
        }
        if crates.cell_started {
            self.watch = None;
            // Shown for good: `close` has nothing to add.
            self.build = None;
        }
    }

    /// cargo started compiling `what` (a crate and version) for the running cell: what the
    /// display shows when the build directory is not known.
    pub(super) fn build_step(&mut self, what: &str) {
        if self.cell.is_none() {
            return;
        }
        self.show_build(format!("compiling {what}"), |build| build.crates += 1);
    }

    /// Shows `current` in the build display (made on first use), after `count` updated it.
    fn show_build(&mut self, current: String, count: impl FnOnce(&mut BuildProgress)) {
        let first = self.build.is_none();
        let build = self.build.get_or_insert_with(|| BuildProgress {
            display_id: build_display_id(),
            started: std::time::Instant::now(),
            crates: 0,
            total: None,
            current: String::new(),
        });
        count(build);
        build.current = current;
        let event = build.event(&build.current, !first);
        self.send(event);
    }

    /// Refreshes the build display's clock (a single crate such as tokio can take a minute).
    pub(super) fn build_tick(&mut self) {
        if let Some(build) = &self.build {
            let event = build.event(&build.current, true);
            self.send(event);
        }
    }

    /// Where output between cells goes from now on.
    pub(super) fn set_late(&mut self, late: Sender<Event>) {
        self.late = Some(late);
    }

    pub(super) fn set_panic(&mut self, panic: Option<PanicReport>) {
        if self.panic.is_none() {
            self.panic = panic;
        }
    }

    /// Text on a stream, subject to the per-cell cap. `late` output (printed while no cell was
    /// running, by threads an earlier cell left behind) goes to the late channel.
    pub(super) fn stream(&mut self, name: StreamName, mut text: String, late: bool) {
        if text.is_empty() {
            return;
        }
        if late {
            self.queue(name, text, true);
            return;
        }
        let i = index(name);
        let room = OUTPUT_CAP_BYTES.saturating_sub(self.shown[i]);
        if text.len() > room {
            let mut cut = room;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            self.hidden[i] += text.len() - cut;
            text.truncate(cut);
            if text.is_empty() {
                return;
            }
        }
        self.shown[i] += text.len();
        self.queue(name, text, false);
    }

    fn queue(&mut self, name: StreamName, text: String, late: bool) {
        match self.queued.last_mut() {
            Some((last, queued, was_late)) if *last == name && *was_late == late => {
                queued.push_str(&text)
            }
            _ => self.queued.push((name, text, late)),
        }
    }

    /// Publishes the queued text, in order.
    pub(super) fn publish_queued(&mut self) {
        for (name, text, late) in std::mem::take(&mut self.queued) {
            let event = Event::Stream { name, text };
            if late {
                self.send_late(event);
            } else {
                self.send(event);
            }
        }
    }

    /// Any other event (displays, clear_output); `late` as for [`Sink::stream`]. Text queued
    /// before it is published first, so output keeps its order.
    pub(super) fn event(&mut self, event: Event, late: bool) {
        self.publish_queued();
        if late {
            self.send_late(event);
        } else {
            self.send(event);
        }
    }

    fn send_late(&mut self, event: Event) {
        match &self.late {
            Some(late) => {
                if let Err(std::sync::mpsc::SendError(event)) = late.send(event) {
                    self.late = None;
                    self.send(event);
                }
            }
            // Nobody publishes late output: the running cell (if any) shows it.
            None => self.send(event),
        }
    }

    fn send(&mut self, event: Event) {
        let event = match &self.cell {
            Some(cell) => match cell.send(CellMsg::Event(event)) {
                Ok(()) => return,
                Err(std::sync::mpsc::SendError(CellMsg::Event(event))) => {
                    self.cell = None;
                    event
                }
                Err(_) => return,
            },
            None => event,
        };
        if let Some(late) = &self.late
            && late.send(event).is_err()
        {
            self.late = None;
        }
    }
}

/// Starts the thread that publishes queued text every [`PUBLISH_EVERY`].
pub(super) fn spawn_publisher(sink: SharedSink) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("kettle-publish".into())
        .spawn(move || {
            loop {
                std::thread::sleep(PUBLISH_EVERY);
                sink.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .publish_queued();
            }
        })?;
    Ok(())
}

/// Forwards one of evcxr's own output channels. With our runtime evcxr sees only its
/// bookkeeping lines, so anything arriving here is unusual (a message from the runtime
/// itself): it is shown rather than lost. evcxr waits for its stdout channel to be empty at the
/// end of each cell, so these channels must be drained.
pub(super) fn spawn_pump(
    name: StreamName,
    lines: crossbeam_channel::Receiver<String>,
    sink: SharedSink,
) {
    let spawned = std::thread::Builder::new()
        .name(format!("kettle-evcxr-{}", name.as_str()))
        .spawn(move || {
            for line in lines {
                let mut sink = sink.lock().unwrap_or_else(|p| p.into_inner());
                sink.stream(name, line + "\n", false);
            }
        });
    if let Err(error) = spawned {
        eprintln!("kettle: cannot start the {} pump: {error}", name.as_str());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(rx: &std::sync::mpsc::Receiver<CellMsg>) -> Vec<(StreamName, String)> {
        rx.try_iter()
            .filter_map(|m| match m {
                CellMsg::Event(Event::Stream { name, text }) => Some((name, text)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn output_past_the_cap_is_counted_and_reported_once() {
        let (tx, rx) = std::sync::mpsc::channel();
        let mut sink = Sink::default();
        sink.open(tx);
        let chunk = "x".repeat(1024 * 1024);
        for _ in 0..5 {
            sink.stream(StreamName::Stdout, chunk.clone(), false);
        }
        sink.close();
        let got = texts(&rx);
        let shown: usize = got
            .iter()
            .filter(|(n, _)| *n == StreamName::Stdout)
            .map(|(_, t)| t.len())
            .sum();
        assert_eq!(shown, OUTPUT_CAP_BYTES);
        let notice = &got.last().unwrap().1;
        assert!(
            notice.contains("output truncated: 1048576 bytes of stdout not shown"),
            "{notice}"
        );
    }

    #[test]
    fn build_progress_is_one_display_updated_in_place_and_closed_with_a_summary() {
        let (tx, rx) = std::sync::mpsc::channel();
        let mut sink = Sink::default();
        sink.build_step("ignored between cells");
        sink.open(tx);
        sink.build_step("rayon-core v1.13.0");
        sink.build_step("rayon v1.12.0");
        sink.close();
        let displays: Vec<(Option<String>, bool, String)> = rx
            .try_iter()
            .filter_map(|m| match m {
                CellMsg::Event(Event::Display {
                    data,
                    display_id,
                    update,
                    ..
                }) => Some((display_id, update, data["text/plain"].as_str()?.to_owned())),
                _ => None,
            })
            .collect();
        assert_eq!(displays.len(), 3, "{displays:?}");
        assert!(
            displays
                .iter()
                .all(|d| d.0.is_some() && d.0 == displays[0].0)
        );
        assert_eq!(
            displays.iter().map(|d| d.1).collect::<Vec<_>>(),
            [false, true, true]
        );
        assert!(
            displays[1]
                .2
                .starts_with("compiling rayon v1.12.0 · 2 crates"),
            "{}",
            displays[1].2
        );
        assert!(
            displays[2].2.starts_with("dependencies built · 2 crates"),
            "{}",
            displays[2].2
        );
    }

    /// The build displays' texts a cell received.
    fn build_texts(rx: &std::sync::mpsc::Receiver<CellMsg>) -> Vec<String> {
        rx.try_iter()
            .filter_map(|m| match m {
                CellMsg::Event(Event::Display { data, .. }) => {
                    Some(data["text/plain"].as_str()?.to_owned())
                }
                _ => None,
            })
            .collect()
    }

    fn regex_build(done: usize, cell_started: bool) -> Crates {
        Crates {
            total: 3,
            done,
            building: vec!["regex-automata".into(), "regex-syntax".into()],
            cell_started,
        }
    }

    #[test]
    fn a_cell_compile_that_began_within_the_clocks_slack_belongs_to_an_earlier_cell() {
        let (tx, _rx) = std::sync::mpsc::channel();
        let mut sink = Sink::default();
        sink.open(tx);
        // A kept compile: the previous cell's crate was started a moment ago.
        let last = SystemTime::now() - CLOCK_SLACK / 5;
        sink.watch_builds(std::env::temp_dir(), Some(last));
        let (_, since) = sink.build_watch().unwrap();
        assert!(since > last);
    }

    /// A sink with a cell open and watching a build directory (that does not exist: the tests
    /// hand it readings); the cell's receiver and the watch's start.
    fn watching_sink() -> (Sink, std::sync::mpsc::Receiver<CellMsg>, SystemTime) {
        let (tx, rx) = std::sync::mpsc::channel();
        let mut sink = Sink::default();
        sink.open(tx);
        let missing = std::env::temp_dir().join("kettle-no-such-target-dir");
        sink.watch_builds(missing.clone(), None);
        let (target, since) = sink.build_watch().unwrap();
        assert_eq!(target, missing);
        (sink, rx, since)
    }

    #[test]
    fn a_build_read_from_its_directory_counts_all_crates_and_says_when_it_stopped_short() {
        let (mut sink, rx, since) = watching_sink();
        // Nothing to build yet: nothing shown. A reading for an earlier cell: ignored.
        sink.build_crates(Crates::default(), since);
        sink.build_crates(regex_build(2, false), since - Duration::from_secs(1));
        sink.build_crates(regex_build(1, false), since);
        sink.close();
        assert_eq!(sink.build_watch(), None);
        let texts = build_texts(&rx);
        assert_eq!(texts.len(), 2, "{texts:?}");
        assert!(
            texts[0].starts_with("building regex-automata, regex-syntax · 1/3 crates · "),
            "{}",
            texts[0]
        );
        // Interrupted, or failed: not all of it was built.
        assert!(
            texts[1].starts_with("build stopped · 1/3 crates · "),
            "{}",
            texts[1]
        );
    }

    #[test]
    fn once_the_cells_crate_compiles_the_build_display_is_final_and_nobody_looks() {
        let (mut sink, rx, since) = watching_sink();
        sink.build_crates(regex_build(1, false), since);
        sink.build_crates(regex_build(3, true), since);
        assert_eq!(sink.build_watch(), None);
        // A build first seen over (faster than a look) is not shown at all.
        let (mut quick, rx2, quick_since) = watching_sink();
        quick.build_crates(regex_build(3, true), quick_since);
        quick.close();
        assert!(build_texts(&rx2).is_empty());
        sink.build_tick();
        sink.close();
        let texts = build_texts(&rx);
        assert_eq!(texts.len(), 2, "{texts:?}");
        assert!(
            texts[1].starts_with("dependencies built · 3/3 crates · "),
            "{}",
            texts[1]
        );
    }

    #[test]
    fn interleaved_streams_keep_their_order_and_neighbours_merge() {
        let (tx, rx) = std::sync::mpsc::channel();
        let mut sink = Sink::default();
        sink.open(tx);
        sink.stream(StreamName::Stdout, "out 0\n".into(), false);
        sink.stream(StreamName::Stderr, "err ".into(), false);
        sink.stream(StreamName::Stderr, "0\n".into(), false);
        sink.stream(StreamName::Stdout, "out 1\n".into(), false);
        sink.publish_queued();
        assert_eq!(
            texts(&rx),
            vec![
                (StreamName::Stdout, "out 0\n".to_owned()),
                (StreamName::Stderr, "err 0\n".to_owned()),
                (StreamName::Stdout, "out 1\n".to_owned()),
            ]
        );
    }

    #[test]
    fn output_between_cells_goes_to_the_late_channel() {
        let (late_tx, late) = std::sync::mpsc::channel();
        let mut sink = Sink::default();
        sink.set_late(late_tx);
        sink.stream(StreamName::Stdout, "late\n".into(), true);
        sink.publish_queued();
        assert!(matches!(late.try_recv(), Ok(Event::Stream { text, .. }) if text == "late\n"));
    }

    #[test]
    fn a_closed_cell_receiver_reroutes_to_late() {
        let (tx, rx) = std::sync::mpsc::channel();
        let (late_tx, late) = std::sync::mpsc::channel();
        let mut sink = Sink::default();
        sink.set_late(late_tx);
        sink.open(tx);
        drop(rx);
        sink.stream(StreamName::Stderr, "orphan\n".into(), false);
        sink.publish_queued();
        assert!(late.try_recv().is_ok());
    }
}
