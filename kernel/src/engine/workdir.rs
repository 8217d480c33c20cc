//! A persistent working directory for evcxr, so dependencies are compiled once per machine
//! rather than once per kernel start.
//!
//! evcxr builds every cell as a small crate in its working directory (`EVCXR_TMPDIR`, by
//! default a fresh temporary directory), with the cell's dependencies (`:dep`, `:course`) in
//! that crate's `target/`. A fresh directory means every kernel start rebuilds rayon or tokio
//! (10–20 s each). kettle instead gives each kernel one of a few persistent *slots* under the
//! user's cache directory, locked with `flock` for the kernel's life so two kernels never share
//! one. Cargo's own fingerprints decide what is still valid: a different version, feature set
//! or compiler rebuilds, exactly as in any cargo project.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// How many kernels at once get a persistent slot; the next ones fall back to a temporary
/// directory (correct, only slower).
const SLOTS: usize = 8;

/// The directory holding the slots: `KETTLE_WORK_DIR`, else `$XDG_CACHE_HOME/kettle/work`, else
/// `~/.cache/kettle/work`.
pub fn root() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("KETTLE_WORK_DIR") {
        return Some(PathBuf::from(dir));
    }
    Some(cache_dir()?.join("work"))
}

/// kettle's cache directory: `$XDG_CACHE_HOME/kettle`, else `~/.cache/kettle`.
pub fn cache_dir() -> Option<PathBuf> {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(cache.join("kettle"))
}

/// Cargo settings for the cells' crates, in `.cargo/config.toml` above the slots: cargo reads
/// that file in every parent of the directory it builds in, and evcxr rewrites the one inside
/// each slot (its own `[net]` settings) but not this one.
///
/// `lto = "off"`: evcxr's profile has `lto = false`, which for an optimised build split into
/// codegen units still means rustc's thin LTO *within* the crate. For a cell that step is a
/// third of the compile: a notebook-01 cell took 331 ms to compile with it and 200 ms without
/// (median of 5 recompiles, as evcxr runs them, incremental). What it buys is inlining across
/// the crate's codegen units, which shows only in the user's own generic functions called in a
/// hot loop (up to ~20% slower here); std's hot generics are `#[inline]` and are instantiated
/// in the caller's unit either way, and the course's CPU-bound cells run as fast as before.
/// Cargo lets the environment win over config files: `CARGO_PROFILE_DEV_LTO=false` in the
/// kernel's environment restores evcxr's setting.
pub const CARGO_CONFIG: &str = "\
# Written by the kettle kernel (kernel/src/engine/workdir.rs) for the crates evcxr builds
# from notebook cells in the directories below. Rewritten when kettle's setting changes.
[profile.dev]
lto = \"off\"
";

/// Writes [`CARGO_CONFIG`] under `root` unless it is there already. Replaced whole (write,
/// then rename), so a cargo starting meanwhile reads the old file or the new one.
fn write_cargo_config(root: &Path) -> std::io::Result<()> {
    let path = root.join(".cargo").join("config.toml");
    if std::fs::read_to_string(&path).is_ok_and(|text| text == CARGO_CONFIG) {
        return Ok(());
    }
    write_whole(&path, CARGO_CONFIG.as_bytes())
}

/// Writes a file under a temporary name, then renames it: readers see the old file or the new.
pub(super) fn write_whole(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let partial = partial_name(path);
    std::fs::write(&partial, bytes)?;
    std::fs::rename(&partial, path)
}

/// Copies a file the way [`write_whole`] writes one: a process that has the old file open (a
/// child that loaded a library) keeps it.
pub(super) fn copy_whole(from: &Path, to: &Path) -> std::io::Result<()> {
    let partial = partial_name(to);
    std::fs::copy(from, &partial)?;
    std::fs::rename(&partial, to)
}

fn partial_name(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".kettle-{}", std::process::id()));
    path.with_file_name(name)
}

/// Whether `path` was last modified longer than `age` ago.
pub(super) fn unused_for(path: &Path, age: std::time::Duration) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .is_ok_and(|t| t.elapsed().is_ok_and(|elapsed| elapsed > age))
}

/// Claims a free slot under `root` and returns it; the lock lives as long as the process.
pub fn claim_slot(root: &Path) -> Option<PathBuf> {
    if let Err(error) = write_cargo_config(root) {
        // Cells still build, with evcxr's own settings.
        eprintln!(
            "kettle: cannot write {}/.cargo/config.toml: {error}",
            root.display()
        );
    }
    for slot in 0..SLOTS {
        let dir = root.join(format!("slot-{slot}"));
        if std::fs::create_dir_all(&dir).is_err() {
            return None;
        }
        let Ok(lock) = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(".lock"))
        else {
            continue;
        };
        // SAFETY: flock on an open descriptor has no memory-safety preconditions. The file is
        // close-on-exec (std opens it so), so children do not keep the lock after we exit.
        let locked = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
        if locked {
            // Held until the process exits, when the kernel closes it.
            std::mem::forget(lock);
            remove_old_cell_libraries(&dir);
            return Some(dir);
        }
    }
    None
}

/// What an earlier kernel left in the slot that no kernel uses again: its cell libraries
/// (`libcode_<n>.so`), and rustc's incremental state for cell crates with a set of dependencies
/// not compiled for a week. The latter grows by one directory (up to a few MiB, with the
/// sessions of compiles that were stopped) per set of dependencies a slot ever saw; a set
/// used again costs one compile without incremental state.
fn remove_old_cell_libraries(slot: &Path) {
    let Ok(targets) = std::fs::read_dir(slot.join("target")) else {
        return;
    };
    for target in targets.flatten() {
        let debug = target.path().join("debug");
        for file in std::fs::read_dir(debug.join("deps"))
            .into_iter()
            .flatten()
            .flatten()
        {
            if file.file_name().to_string_lossy().starts_with("libcode_") {
                let _ = std::fs::remove_file(file.path());
            }
        }
        let incremental = std::fs::read_dir(debug.join("incremental"));
        for dir in incremental.into_iter().flatten().flatten() {
            let a_week = std::time::Duration::from_secs(7 * 24 * 3600);
            if dir.file_name().to_string_lossy().starts_with("ctx-")
                && unused_for(&dir.path(), a_week)
            {
                let _ = std::fs::remove_dir_all(dir.path());
            }
        }
    }
}

/// Points evcxr at a persistent slot, unless the user chose a directory (`EVCXR_TMPDIR`).
///
/// Call it at the very start of the kernel process, while it is still single-threaded: it
/// sets an environment variable.
pub fn use_persistent_slot() -> Option<PathBuf> {
    if std::env::var_os("EVCXR_TMPDIR").is_some() {
        return None;
    }
    let dir = claim_slot(&root()?)?;
    // SAFETY: the caller guarantees no other thread exists yet, so nothing reads the
    // environment concurrently.
    unsafe { std::env::set_var("EVCXR_TMPDIR", &dir) };
    Some(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_slot_is_held_until_the_lock_is_gone() {
        let root = std::env::temp_dir().join(format!("kettle-slots-{}", std::process::id()));
        let first = claim_slot(&root).unwrap();
        let second = claim_slot(&root).unwrap();
        // The same process holds both locks: flock locks are per open file, so a second open
        // of slot-0 cannot lock it.
        assert_ne!(first, second);
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn the_cargo_settings_are_written_above_the_slots() {
        let root = std::env::temp_dir().join(format!("kettle-slot-config-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        claim_slot(&root).unwrap();
        let path = root.join(".cargo/config.toml");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), CARGO_CONFIG);
        // An old setting is replaced.
        std::fs::write(&path, "[profile.dev]\nlto = false\n").unwrap();
        claim_slot(&root).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), CARGO_CONFIG);
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn old_cell_libraries_are_removed_and_dependencies_kept() {
        let root = std::env::temp_dir().join(format!("kettle-slot-clean-{}", std::process::id()));
        let deps = root.join("slot-0/target/x86_64-unknown-linux-gnu/debug/deps");
        std::fs::create_dir_all(&deps).unwrap();
        std::fs::write(deps.join("libcode_3.so"), b"").unwrap();
        std::fs::write(deps.join("librayon-abc.rlib"), b"").unwrap();
        let incremental = deps.with_file_name("incremental");
        let old = |dir: &str| {
            let path = incremental.join(dir);
            std::fs::create_dir_all(path.join("s-1-working")).unwrap();
            let weeks_ago = std::time::SystemTime::now() - Duration::from_secs(8 * 24 * 3600);
            std::fs::File::open(&path)
                .unwrap()
                .set_modified(weeks_ago)
                .unwrap();
            path
        };
        let (old_cell, old_dependency) = (old("ctx-0aeb2137df72b"), old("kettle_display-1x"));
        let recent_cell = incremental.join("ctx-1bcd");
        std::fs::create_dir_all(&recent_cell).unwrap();
        remove_old_cell_libraries(&root.join("slot-0"));
        assert!(!deps.join("libcode_3.so").exists());
        assert!(deps.join("librayon-abc.rlib").exists());
        assert!(!old_cell.exists(), "a cell crate's state unused for a week");
        assert!(recent_cell.exists() && old_dependency.exists());
        let _ = std::fs::remove_dir_all(&root);
    }
}
