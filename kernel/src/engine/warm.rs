//! `kettle warm`: compiles the course's dependencies once, ahead of the first notebook.
//!
//! A fresh machine would otherwise spend the first use of each dependency compiling it in front
//! of the learner (rayon ~10 s, tokio ~60 s on two cores). The warm-up runs the same cells a
//! notebook runs, in a kernel's persistent work slot (see [`super::workdir`]), so later kernels
//! find everything built. A stamp records what was warmed with which compiler; `kettle lab`
//! warms again only when that changes.

use super::{Engine, EngineConfig, Event, Outcome};
use std::path::PathBuf;

/// The dependencies the course notebooks use, exactly as they write them: cargo reuses a build
/// only for the same version requirement and features.
pub const COURSE_DEPS: &[&str] = &[
    ":course",
    ":dep rayon = \"1\"",
    ":dep tokio = { version = \"1\", features = [\"full\"] }",
];

/// What the warm-up depends on: our version, the compiler, the dependency lines, the cargo
/// settings kettle gives the cells' crates (another profile builds the dependencies again).
fn stamp_text() -> String {
    format!(
        "kettle {}\nrustc {}\n{}\n{}",
        env!("CARGO_PKG_VERSION"),
        Engine::language_version(),
        COURSE_DEPS.join("\n"),
        super::workdir::CARGO_CONFIG
    )
}

fn stamp_path() -> Option<PathBuf> {
    Some(super::workdir::root()?.join("warm-stamp"))
}

/// Whether the last warm-up on this machine was for this kettle, compiler and dependency list.
pub fn is_warm() -> bool {
    stamp_path()
        .and_then(|path| std::fs::read_to_string(path).ok())
        .is_some_and(|text| text == stamp_text())
}

/// Set in the second `kettle warm` that [`warm_two_slots`] starts.
const SECOND_SLOT_ENV: &str = "KETTLE_WARM_SECOND_SLOT";

/// `kettle warm`: warms the first free work slot, then (through a second `kettle warm`, which
/// gets the next free slot while this process holds its own) the one after. A kernel and the
/// spare it prepares for the next start ([`crate::spare`]) work in two slots at once, and a
/// kernel that takes over a spare must find the dependencies built as well.
pub fn warm_two_slots(mut progress: impl FnMut(&str)) -> anyhow::Result<()> {
    let slot = super::workdir::use_persistent_slot();
    warm_up(&mut progress)?;
    if slot.is_some() && std::env::var_os(SECOND_SLOT_ENV).is_none() {
        progress("warming a second work slot, for spare kernels");
        let status = std::process::Command::new(std::env::current_exe()?)
            .arg("warm")
            .env(SECOND_SLOT_ENV, "1")
            .status()?;
        anyhow::ensure!(
            status.success(),
            "warming the second slot failed ({status})"
        );
    }
    Ok(())
}

/// Runs the warm-up cells in a fresh engine, reporting progress through `progress`. Needs the
/// work slot to be claimed already (`workdir::use_persistent_slot`), or it warms a throwaway
/// directory.
pub fn warm_up(mut progress: impl FnMut(&str)) -> anyhow::Result<()> {
    let engine = Engine::start(EngineConfig::default())?;
    for line in COURSE_DEPS {
        progress(&format!("building {line}"));
        let started = std::time::Instant::now();
        let outcome = engine.execute(line, false, &mut |event| {
            if let Event::Stream { text, .. } = event {
                progress(text.trim_end());
            }
        });
        if let Outcome::Error { ename, evalue, .. } = outcome {
            engine.shutdown();
            anyhow::bail!("warming `{line}` failed: {ename}: {evalue}");
        }
        progress(&format!(
            "  done in {:.1} s",
            started.elapsed().as_secs_f64()
        ));
    }
    engine.shutdown();
    if let Some(path) = stamp_path() {
        std::fs::write(path, stamp_text())?;
    }
    Ok(())
}
