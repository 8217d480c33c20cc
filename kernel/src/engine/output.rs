//! Output pumps: move the child's stdout/stderr lines from evcxr's channels to the cell that is
//! running, while it runs.
//!
//! evcxr hands us lines through unbounded channels and, for stdout, returns from `execute` only
//! once its channel is empty. Each pump waits until a line is ready *without* taking it, then
//! takes everything available under the sink's lock; the engine takes the same lock when a cell
//! ends, so a line can never be half-way between evcxr and the cell when the cell is closed.
//! Lines available at once are coalesced into one stream event (a cell printing 100k lines
//! becomes a few hundred messages, not 100k).

use super::prelude::{self, PanicReport};
use super::{Event, StreamName};
use crossbeam_channel::{Receiver, Select, TryRecvError};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};

/// Largest chunk of text sent as one stream event.
const CHUNK_BYTES: usize = 64 * 1024;
/// Output that arrives between cells (from threads a cell left running) is kept for the next
/// cell, up to this many bytes; the rest is counted and reported.
const PENDING_CAP: usize = 1024 * 1024;

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
    /// A panic of the cell's own thread, reported by the prelude's hook.
    panic: Option<PanicReport>,
    /// Output produced while no cell was running.
    pending: Vec<(StreamName, String)>,
    pending_bytes: usize,
    dropped_bytes: usize,
}

pub(super) type SharedSink = Arc<Mutex<Sink>>;

impl Sink {
    /// Routes output to `cell`, first delivering what arrived between cells.
    pub(super) fn open(&mut self, cell: Sender<CellMsg>) {
        self.panic = None;
        for (name, text) in self.pending.drain(..) {
            let _ = cell.send(CellMsg::Event(Event::Stream { name, text }));
        }
        if self.dropped_bytes > 0 {
            let text = format!(
                "[kettle: {} bytes of output printed between cells were not kept]\n",
                self.dropped_bytes
            );
            let _ = cell.send(CellMsg::Event(Event::Stream {
                name: StreamName::Stderr,
                text,
            }));
        }
        self.pending_bytes = 0;
        self.dropped_bytes = 0;
        self.cell = Some(cell);
    }

    /// Stops routing to the cell; returns the panic it reported, if any.
    pub(super) fn close(&mut self) -> Option<PanicReport> {
        self.cell = None;
        self.panic.take()
    }

    fn emit(&mut self, name: StreamName, text: String) {
        if text.is_empty() {
            return;
        }
        if let Some(cell) = &self.cell {
            if cell
                .send(CellMsg::Event(Event::Stream {
                    name,
                    text: text.clone(),
                }))
                .is_ok()
            {
                return;
            }
            // The caller stopped listening; keep the text for the next cell.
            self.cell = None;
        }
        if self.pending_bytes + text.len() > PENDING_CAP {
            self.dropped_bytes += text.len();
        } else {
            self.pending_bytes += text.len();
            self.pending.push((name, text));
        }
    }
}

/// Takes every line available now. Returns false once the channel is closed for good.
pub(super) fn drain(name: StreamName, lines: &Receiver<String>, sink: &mut Sink) -> bool {
    let mut text = String::new();
    let mut open = true;
    loop {
        match lines.try_recv() {
            Ok(line) => {
                if name == StreamName::Stdout && line.starts_with(prelude::PANIC_MARKER) {
                    sink.panic = prelude::parse_panic(&line);
                    continue;
                }
                text.push_str(&line);
                text.push('\n');
                if text.len() >= CHUNK_BYTES {
                    sink.emit(name, std::mem::take(&mut text));
                }
            }
            Err(TryRecvError::Empty) => break,
            Err(TryRecvError::Disconnected) => {
                open = false;
                break;
            }
        }
    }
    sink.emit(name, text);
    open
}

/// Starts the thread that forwards one of evcxr's output channels.
pub(super) fn spawn_pump(name: StreamName, lines: Receiver<String>, sink: SharedSink) {
    let spawned = std::thread::Builder::new()
        .name(format!("kettle-{}-pump", name.as_str()))
        .spawn(move || {
            loop {
                // Wait for a line without taking it (see the module docs).
                let mut ready = Select::new();
                ready.recv(&lines);
                ready.ready();
                let mut sink = sink.lock().unwrap_or_else(|p| p.into_inner());
                if !drain(name, &lines, &mut sink) {
                    break;
                }
            }
        });
    if let Err(error) = spawned {
        eprintln!("kettle: cannot start the {} pump: {error}", name.as_str());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(rx: &std::sync::mpsc::Receiver<CellMsg>) -> Vec<(StreamName, String)> {
        rx.try_iter()
            .filter_map(|m| match m {
                CellMsg::Event(Event::Stream { name, text }) => Some((name, text)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn lines_available_together_become_one_event() {
        let (tx, lines) = crossbeam_channel::unbounded();
        for i in 0..3 {
            tx.send(format!("line {i}")).unwrap();
        }
        let (cell_tx, cell_rx) = std::sync::mpsc::channel();
        let mut sink = Sink::default();
        sink.open(cell_tx);
        assert!(drain(StreamName::Stdout, &lines, &mut sink));
        assert_eq!(
            collect(&cell_rx),
            vec![(StreamName::Stdout, "line 0\nline 1\nline 2\n".to_owned())]
        );
    }

    #[test]
    fn panic_markers_are_taken_out_of_stdout() {
        let (tx, lines) = crossbeam_channel::unbounded();
        tx.send("before".to_owned()).unwrap();
        tx.send(format!(
            "{}main\u{1b}src/lib.rs:1:1\u{1b}boom",
            prelude::PANIC_MARKER
        ))
        .unwrap();
        let (cell_tx, cell_rx) = std::sync::mpsc::channel();
        let mut sink = Sink::default();
        sink.open(cell_tx);
        drain(StreamName::Stdout, &lines, &mut sink);
        assert_eq!(
            collect(&cell_rx),
            vec![(StreamName::Stdout, "before\n".into())]
        );
        assert_eq!(sink.close().map(|p| p.message), Some("boom".to_owned()));
    }

    #[test]
    fn output_between_cells_goes_to_the_next_cell() {
        let (tx, lines) = crossbeam_channel::unbounded();
        let mut sink = Sink::default();
        tx.send("late".to_owned()).unwrap();
        drain(StreamName::Stderr, &lines, &mut sink);
        let (cell_tx, cell_rx) = std::sync::mpsc::channel();
        sink.open(cell_tx);
        assert_eq!(
            collect(&cell_rx),
            vec![(StreamName::Stderr, "late\n".into())]
        );
    }

    #[test]
    fn a_closed_channel_ends_the_pump() {
        let (tx, lines) = crossbeam_channel::unbounded::<String>();
        drop(tx);
        assert!(!drain(StreamName::Stdout, &lines, &mut Sink::default()));
    }
}
