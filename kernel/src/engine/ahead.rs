//! Dependencies read ahead: the crates a notebook declares, added while the learner reads.
//!
//! The first cell that uses a new crate pays for more than its build: evcxr has rust-analyzer
//! reload the workspace and compute the name tables of the crate and everything it depends on
//! (tokio: ~2 s here, with the build already done by `kettle warm`), all inside that cell.
//! Jupyter Server tells a kernel which notebook it was started for (`JPY_SESSION_NAME`, the
//! notebook's path), so the kernel can read the notebook's `:dep` and `:course` lines and add
//! those crates as soon as it starts, before the learner gets to them. The learner's own `:dep`
//! line later finds the crate there with the same settings (the same text), which evcxr takes
//! as nothing to do. Once they are added, rust-analyzer is warmed up (std and the new crates
//! indexed) before the engine takes the next request. A cell sent meanwhile waits for all of
//! it, with a note ([`WaitNote`]); an interrupt ends the wait (and the crates' build).
//!
//! What is read ahead: commands as evcxr reads them (see [`super::commands`]); crates from a
//! registry (not paths, which are relative to a directory the learner may change, nor git,
//! which needs the network) and `:course`; with cargo offline (see [`super::network`]), and not
//! at all when the learner decided about cargo's network use: a crate missing from this
//! machine's cache is left for its cell. What the learner may notice: the crates are there
//! before their `:dep` cell runs (as in a cargo project, whose dependencies are all there from
//! the start), so a cell meant to show a missing crate works, and a crate declared with other
//! features later in the notebook is the one earlier cells get (evcxr adds tokio with its
//! runtime features for an `.await` cell only when no tokio is declared); building them runs
//! their build scripts when the notebook opens rather than when their cell runs; `:clear`
//! drops them like any dependency (their `:dep` cell adds them again).

use super::{Event, commands, course};
use serde::Deserialize;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where Jupyter Server puts the path of the notebook a kernel was started for.
pub const NOTEBOOK_ENV: &str = "JPY_SESSION_NAME";

/// A crate a notebook declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dep {
    pub name: String,
    /// The `:dep` command exactly as the notebook has it (evcxr compares the settings as text).
    pub command: String,
}

/// What a notebook declares, in the order its cells declare it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Declared {
    /// Whether a cell asks for the course crates (`:course`).
    pub course: bool,
    /// Registry crates, each once: the first declaration of a name wins (later ones are the
    /// learner's changes, for when they get there).
    pub deps: Vec<Dep>,
}

impl Declared {
    /// Whether the notebook declares nothing that is read ahead.
    pub fn is_empty(&self) -> bool {
        !self.course && self.deps.is_empty()
    }

    /// What it is, for people: e.g. "the course crates, rayon, tokio".
    pub fn describe(&self) -> String {
        let course = self.course.then_some("the course crates");
        let deps = self.deps.iter().map(|dep| dep.name.as_str());
        course
            .into_iter()
            .chain(deps)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The commands that add everything, as one cell: `:course` stands for its `:dep` lines
    /// (`crates_dir` is where the course crates are).
    pub fn commands(&self, crates_dir: &Path) -> String {
        let mut text = String::new();
        if self.course {
            text.push_str(&course::dep_commands(crates_dir));
        }
        for dep in &self.deps {
            text.push_str(&dep.command);
            text.push('\n');
        }
        text
    }

    /// Each part alone, for when adding all at once failed (one crate missing from the cache
    /// makes evcxr take none of them).
    pub fn parts(&self) -> Vec<Declared> {
        let course = self.course.then(|| Declared {
            course: true,
            deps: Vec::new(),
        });
        let deps = self.deps.iter().map(|dep| Declared {
            course: false,
            deps: vec![dep.clone()],
        });
        course.into_iter().chain(deps).collect()
    }
}

/// The notebook named by `session_name` (the value of [`NOTEBOOK_ENV`]), for a kernel working in
/// `cwd` (the notebook's directory). Jupyter Server's `SessionManager.get_kernel_env` gives the
/// notebook's full path when the client names the notebook (JupyterLab and Notebook 7 do), and
/// else the session's path relative to the server's root
/// (<https://github.com/jupyter-server/jupyter_server/blob/main/jupyter_server/services/sessions/sessionmanager.py>):
/// so the path as given, else the file of that name in `cwd`. Only `.ipynb` files.
pub fn notebook_path(session_name: &OsStr, cwd: &Path) -> Option<PathBuf> {
    let given = Path::new(session_name);
    if given.extension() != Some(OsStr::new("ipynb")) {
        return None;
    }
    let beside = given.file_name().map(|name| cwd.join(name));
    [Some(cwd.join(given)), beside]
        .into_iter()
        .flatten()
        .find(|path| path.is_file())
}

/// The parts of a notebook (nbformat 4) read here; outputs, which can be megabytes of images,
/// are skipped without being built.
#[derive(Deserialize)]
struct Notebook {
    #[serde(default)]
    cells: Vec<Cell>,
}

#[derive(Deserialize)]
struct Cell {
    #[serde(default)]
    cell_type: String,
    #[serde(default)]
    source: Source,
}

/// nbformat allows a cell's source as one string or as a list of lines.
#[derive(Deserialize)]
#[serde(untagged)]
enum Source {
    Text(String),
    Lines(Vec<String>),
}

impl Default for Source {
    fn default() -> Source {
        Source::Text(String::new())
    }
}

/// What the code cells of notebook `json` declare. Anything that is not a readable notebook
/// declares nothing.
pub fn declared(json: &str) -> Declared {
    let mut found = Declared::default();
    let Ok(notebook) = serde_json::from_str::<Notebook>(json) else {
        return found;
    };
    for cell in notebook.cells.into_iter().filter(|c| c.cell_type == "code") {
        let source = match cell.source {
            Source::Text(text) => text,
            Source::Lines(lines) => lines.concat(),
        };
        for (name, argument) in commands::of(&source) {
            if name == course::COMMAND && argument.is_none_or(|a| a.trim().is_empty()) {
                found.course = true;
            } else if name == ":dep"
                && let Some(argument) = argument
                && let Some(crate_name) = registry_crate(argument)
                && !found.deps.iter().any(|dep| dep.name == crate_name)
            {
                found.deps.push(Dep {
                    name: crate_name,
                    command: format!(":dep {argument}"),
                });
            }
        }
    }
    found
}

/// The crate's name when `argument` of a `:dep` asks for a crate from a registry: `name`,
/// `name = "1"` or `name = { version = …, features = … }`; not a path, not git.
fn registry_crate(argument: &str) -> Option<String> {
    let argument = argument.trim();
    if argument.starts_with(['.', '/']) {
        return None;
    }
    let (name, spec) = match argument.split_once('=') {
        Some((name, spec)) => (name.trim(), spec.trim()),
        None => (argument, "\"*\""),
    };
    if name.is_empty() || name.contains(char::is_whitespace) {
        return None;
    }
    let table: toml::Table = format!("dep = {spec}").parse().ok()?;
    let registry = match &table["dep"] {
        toml::Value::String(_) => true,
        toml::Value::Table(settings) => !["path", "git"]
            .iter()
            .any(|key| settings.contains_key(*key)),
        _ => false,
    };
    registry.then(|| name.to_owned())
}

// What a cell sent while the crates are being added sees: `Engine::execute` holds it back until
// they are (or an interrupt comes) and shows this note, updated in place.

/// Crates read ahead from the notebook, being added.
#[derive(Clone)]
pub(super) struct ReadingAhead {
    /// What they are, for people.
    pub what: String,
    /// Where cargo builds them and since when, once the engine has started on them.
    pub build: Option<(PathBuf, std::time::SystemTime)>,
}

/// How often a cell waiting for crates read ahead looks whether they are there.
pub(super) const WAIT_POLL: Duration = Duration::from_millis(50);

/// The display of a cell that waits for crates read ahead from the notebook.
pub(super) struct WaitNote {
    what: String,
    display_id: String,
    since: std::time::Instant,
}

impl WaitNote {
    /// How often the note's clock moves.
    pub const TICK: Duration = Duration::from_millis(500);

    pub fn show(reading: ReadingAhead, on_event: &mut dyn FnMut(Event)) -> WaitNote {
        let note = WaitNote {
            what: reading.what.clone(),
            display_id: super::output::build_display_id(),
            since: std::time::Instant::now(),
        };
        let text = note.progress(&reading);
        on_event(note.event(text, false));
        note
    }

    /// Moves the clock and the build's counts.
    pub fn tick(&self, reading: &ReadingAhead, on_event: &mut dyn FnMut(Event)) {
        on_event(self.event(self.progress(reading), true));
    }

    /// Says how the wait ended: `outcome` (e.g. "added the crates …").
    pub fn end(&self, outcome: &str, on_event: &mut dyn FnMut(Event)) {
        let seconds = self.since.elapsed().as_secs_f64();
        on_event(self.event(format!("{outcome} · waited {seconds:.1} s"), true));
    }

    fn progress(&self, reading: &ReadingAhead) -> String {
        let seconds = self.since.elapsed().as_secs_f64();
        // What cargo builds for them, when it builds (read as for a cell's build display).
        let build = reading
            .build
            .as_ref()
            .map(|(target, since)| super::build_progress::scan(target, *since))
            .filter(|crates| crates.total > 0 && !crates.cell_started)
            .map(|crates| {
                format!(
                    " · {} · {}/{} crates",
                    crates.activity(),
                    crates.done,
                    crates.total
                )
            })
            .unwrap_or_default();
        format!(
            "adding the crates this notebook declares: {}{build} · {seconds:.1} s",
            self.what
        )
    }

    fn event(&self, text: String, update: bool) -> Event {
        Event::Display {
            data: super::output::build_bundle(&text),
            metadata: serde_json::Map::new(),
            display_id: Some(self.display_id.clone()),
            update,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notebook(cells: &[(&str, serde_json::Value)]) -> String {
        let cells: Vec<_> = cells
            .iter()
            .map(|(kind, source)| serde_json::json!({"cell_type": kind, "source": source}))
            .collect();
        serde_json::json!({"nbformat": 4, "cells": cells}).to_string()
    }

    #[test]
    fn registry_crates_and_the_course_are_read_in_cell_order() {
        let tokio = ":dep tokio = { version = \"1\", features = [\"full\"] }\n";
        let json = notebook(&[
            ("markdown", ":dep not_code = \"1\"".into()),
            (
                "code",
                serde_json::json!([
                    ":course\n",
                    tokio,
                    "let x = 1;\n",
                    ":dep after_code = \"1\""
                ]),
            ),
            (
                "code",
                ":dep rayon = \"1\" \n:dep tokio = \"1.40\"\nrayon::join(|| 1, || 2);".into(),
            ),
            (
                "code",
                ":dep local = { path = \"../local\" }\n:dep ./other\n\
                 :dep far = { git = \"https://example.org/far\" }\n:dep regex"
                    .into(),
            ),
        ]);
        let found = declared(&json);
        assert!(found.course);
        let commands: Vec<_> = found.deps.iter().map(|d| d.command.as_str()).collect();
        // Verbatim, trailing space included: evcxr compares a dependency's settings as text.
        assert_eq!(
            commands,
            [tokio.trim_end(), ":dep rayon = \"1\" ", ":dep regex"]
        );
        assert_eq!(found.describe(), "the course crates, tokio, rayon, regex");
    }

    #[test]
    fn commands_spell_out_the_course_and_parts_stand_alone() {
        let found = Declared {
            course: true,
            deps: vec![Dep {
                name: "rayon".into(),
                command: ":dep rayon = \"1\"".into(),
            }],
        };
        let dir = Path::new("/opt/kettle/crates");
        assert_eq!(
            found.commands(dir),
            format!("{}:dep rayon = \"1\"\n", course::dep_commands(dir))
        );
        let parts = found.parts();
        assert_eq!(parts.len(), 2);
        assert!(parts[0].course && parts[0].deps.is_empty());
        assert_eq!(parts[1].commands(dir), ":dep rayon = \"1\"\n");
    }

    /// The plain text of a display event.
    fn text_of(event: Event) -> String {
        match event {
            Event::Display { data, .. } => data["text/plain"].as_str().unwrap_or("").to_owned(),
            other => panic!("not a display: {other:?}"),
        }
    }

    #[test]
    fn the_waiting_note_shows_the_crates_build_and_how_the_wait_ended() {
        let target = std::env::temp_dir().join(format!("kettle-ahead-note-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&target);
        let since = std::time::SystemTime::now() - Duration::from_secs(1);
        // What cargo leaves while it compiles a crate: its unit's directory, with the start
        // stamp and no fingerprint yet (see `build_progress`).
        let unit = target
            .join("debug")
            .join(".fingerprint")
            .join("regex-0123456789abcdef");
        std::fs::create_dir_all(&unit).unwrap();
        std::fs::write(unit.join("invoked.timestamp"), "").unwrap();

        let mut reading = ReadingAhead {
            what: "regex".into(),
            build: None,
        };
        let mut shown = Vec::new();
        let note = WaitNote::show(reading.clone(), &mut |e| shown.push(text_of(e)));
        reading.build = Some((target.clone(), since));
        note.tick(&reading, &mut |e| shown.push(text_of(e)));
        note.end("added the crates this notebook declares: regex", &mut |e| {
            shown.push(text_of(e))
        });
        assert!(
            shown[0].starts_with("adding the crates this notebook declares: regex · 0.0 s"),
            "{shown:?}"
        );
        assert!(
            shown[1].starts_with(
                "adding the crates this notebook declares: regex · building regex · 0/1 crates · "
            ),
            "{shown:?}"
        );
        assert!(
            shown[2].starts_with("added the crates this notebook declares: regex · waited "),
            "{shown:?}"
        );
        std::fs::remove_dir_all(&target).unwrap();
    }

    #[test]
    fn what_is_not_a_notebook_declares_nothing() {
        assert!(declared("not json").is_empty());
        assert!(declared("{\"cells\": 3}").is_empty());
        assert!(declared(&notebook(&[("code", "let a = 1;".into())])).is_empty());
        assert_eq!(registry_crate("bad name = \"1\""), None);
        assert_eq!(registry_crate("broken = { version"), None);
    }

    #[test]
    fn the_notebook_is_found_by_full_path_or_beside_the_kernel() {
        let dir = std::env::temp_dir().join(format!("kettle-ahead-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("04-asyncio.ipynb");
        std::fs::write(&file, "{}").unwrap();
        let elsewhere = Path::new("/nonexistent");
        assert_eq!(
            notebook_path(file.as_os_str(), elsewhere),
            Some(file.clone())
        );
        // A path relative to the server's root, the kernel in the notebook's directory.
        assert_eq!(
            notebook_path(OsStr::new("course/04-asyncio.ipynb"), &dir),
            Some(file.clone())
        );
        assert_eq!(notebook_path(OsStr::new("missing.ipynb"), &dir), None);
        assert_eq!(notebook_path(OsStr::new("04-asyncio"), &dir), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
