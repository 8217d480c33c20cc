//! Live build progress: while a cell waits for its dependencies to compile, the cell shows
//! which crate is being compiled, how many are done and for how long, instead of silence.
//!
//! Cargo's own progress is out of reach: evcxr captures cargo's output, and copies to the
//! kernel's stderr only the `Compiling <crate>` lines of crates whose names have no `-` (its
//! pattern is `Compiling (\w+)`: `crossbeam-utils` or `proc-macro2` never show). What cargo is
//! doing can be read from the build directory instead ([`scan`]): before it starts any unit of
//! a build (a crate's library, a build script and its run), cargo makes the unit's directory
//! `.fingerprint/<package>-<hash>/`; it writes `invoked.timestamp` there when the unit starts
//! and the unit's fingerprint (`<kind>-<target>.json`) when it is done. So while a cell runs, a
//! clock thread reads the cell crate's `target/` every [`TICK`], and the display says which
//! crates are being built and how many of the build's crates are done: `building rayon-core,
//! crossbeam-epoch · 5/8 crates · 1.5 s`. Crates count by package name (two versions of `syn`
//! are one); a crate rebuilt because it changed keeps its directory and joins the count when it
//! starts. Cargo compiles the cell's own crate last: when that starts, the display shows
//! `dependencies built` and the directory is not read again while the cell runs.
//!
//! The kernel also reads its own stderr: fd 2 becomes a pipe whose reader forwards every line to
//! the original stderr (the Jupyter server's log, as before). A `Compiling` line there makes the
//! display look at once, and without a known build directory (evcxr's own temporary one) the
//! lines are all it shows.

use super::output::SharedSink;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::FromRawFd;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// How often the build display looks at the build and moves its clock.
const TICK: std::time::Duration = std::time::Duration::from_millis(500);

/// evcxr's name for the crate it builds from the cells: not a dependency.
pub(super) const CELL_CRATE: &str = "ctx";

/// The crates of the build running in a target directory, as far as cargo's fingerprint
/// directories tell (see the module docs).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Crates {
    /// Packages with a unit in this build.
    pub total: usize,
    /// Packages all of whose units in this build are done.
    pub done: usize,
    /// Packages started and not done, by name: a unit of theirs is compiling, or done while
    /// another is not (the build script is running, say).
    pub building: Vec<String>,
    /// Whether the cell's own crate started compiling: cargo builds it last, so the
    /// dependencies are built.
    pub cell_started: bool,
}

impl Crates {
    /// What cargo is doing, for a display: "building regex, regex-syntax", or "building
    /// dependencies" between crates.
    pub fn activity(&self) -> String {
        if self.building.is_empty() {
            "building dependencies".to_owned()
        } else {
            format!("building {}", self.building.join(", "))
        }
    }
}

/// Where cargo keeps its units' fingerprint directories in `target`: for the target platform
/// (`target/<triple>/debug`, since evcxr passes `--target`) and for the host (`target/debug`:
/// build scripts, proc macros and what they use).
fn fingerprint_roots(target: &Path) -> Vec<PathBuf> {
    let mut roots = vec![target.join("debug")];
    if let Ok(entries) = std::fs::read_dir(target) {
        roots.extend(entries.flatten().map(|e| e.path().join("debug")));
    }
    roots
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// When cargo last started compiling the cell crate in `target`, if it ever did.
pub(super) fn cell_invoked(target: &Path) -> Option<SystemTime> {
    fingerprint_roots(target)
        .iter()
        .filter_map(|root| std::fs::read_dir(root.join(".fingerprint")).ok())
        .flat_map(|units| units.flatten())
        .filter(|unit| package_of(&unit.file_name().to_string_lossy()) == Some(CELL_CRATE))
        .filter_map(|unit| modified(&unit.path().join("invoked.timestamp")))
        .max()
}

/// What cargo has built, and is building, in `target` (a cargo target directory) since `since`:
/// units whose fingerprint directory was made, or that were started, after it.
pub(super) fn scan(target: &Path, since: SystemTime) -> Crates {
    let roots = fingerprint_roots(target);
    // Per package: (all its units done, one of them started).
    let mut packages: BTreeMap<String, (bool, bool)> = BTreeMap::new();
    let mut cell_started = false;
    for root in roots {
        let Ok(units) = std::fs::read_dir(root.join(".fingerprint")) else {
            continue;
        };
        for unit in units.flatten() {
            let name = unit.file_name();
            let Some(package) = package_of(&name.to_string_lossy()).map(str::to_owned) else {
                continue;
            };
            let dir = unit.path();
            let invoked = modified(&dir.join("invoked.timestamp")).filter(|t| *t >= since);
            if package == CELL_CRATE {
                cell_started |= invoked.is_some();
                continue;
            }
            let made_now = modified(&dir).is_some_and(|t| t >= since);
            if !made_now && invoked.is_none() {
                continue;
            }
            // A unit's fingerprint is written when it is done (a build script's run has no
            // `invoked.timestamp`, only the fingerprint).
            let after = invoked.unwrap_or(since);
            let done = std::fs::read_dir(&dir).is_ok_and(|files| {
                files.flatten().any(|f| {
                    f.file_name().to_string_lossy().ends_with(".json")
                        && modified(&f.path()).is_some_and(|t| t >= after)
                })
            });
            let state = packages.entry(package).or_insert((true, false));
            state.0 &= done;
            state.1 |= invoked.is_some() || done;
        }
    }
    Crates {
        total: packages.len(),
        done: packages.values().filter(|(done, _)| *done).count(),
        building: packages
            .iter()
            .filter(|(_, (done, started))| *started && !done)
            .map(|(name, _)| name.clone())
            .collect(),
        cell_started,
    }
}

/// `crossbeam-utils-04a4315db728e8ff` (a fingerprint directory) -> `crossbeam-utils`.
fn package_of(unit: &str) -> Option<&str> {
    let (package, hash) = unit.rsplit_once('-')?;
    (hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) && !package.is_empty())
        .then_some(package)
}

/// `Compiling tokio v1.54.1` (cargo indents it) -> `tokio v1.54.1`.
pub(super) fn compiling(line: &str) -> Option<&str> {
    let rest = line.trim_start().strip_prefix("Compiling ")?;
    let what = rest.split(" (").next()?.trim();
    (!what.is_empty()).then_some(what)
}

/// The descriptor the forwarder writes to (the kernel's real stderr), once there is one.
static ORIGINAL: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

/// Makes `fd` the kernel's stderr from now on: what the forwarder copies goes there, or fd 2
/// itself when stderr is not captured.
pub(super) fn redirect_stderr(fd: std::os::fd::RawFd) -> std::io::Result<()> {
    let target = match ORIGINAL.load(std::sync::atomic::Ordering::SeqCst) {
        -1 => 2,
        original => original,
    };
    // Close-on-exec like the descriptor it replaces (fd 2 is inherited on purpose): cargo, rustc
    // and spares must not hold the launcher's stderr open.
    let flags = if target == 2 { 0 } else { libc::O_CLOEXEC };
    // SAFETY: dup3 onto a descriptor this module owns (or fd 2); no memory is involved.
    if unsafe { libc::dup3(fd, target, flags) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Puts a pipe on fd 2 and forwards what arrives; see the module docs.
pub(super) fn capture_stderr(sink: SharedSink) -> std::io::Result<()> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 writes two descriptors into the array on success.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fcntl/dup2/close on descriptors we own or on fd 2; results are checked.
    let original = unsafe {
        let original = libc::fcntl(2, libc::F_DUPFD_CLOEXEC, 10);
        if original < 0 || libc::dup2(fds[1], 2) < 0 {
            libc::close(fds[0]);
            libc::close(fds[1]);
            if original >= 0 {
                libc::close(original);
            }
            return Err(std::io::Error::last_os_error());
        }
        libc::close(fds[1]);
        ORIGINAL.store(original, std::sync::atomic::Ordering::SeqCst);
        std::fs::File::from_raw_fd(original)
    };
    // SAFETY: fds[0] is a fresh descriptor owned by nothing else.
    let reader = unsafe { std::fs::File::from_raw_fd(fds[0]) };
    let ticking = std::sync::Arc::clone(&sink);
    std::thread::Builder::new()
        .name("kettle-stderr".into())
        .spawn(move || forward(reader, original, &sink))?;
    std::thread::Builder::new()
        .name("kettle-build-clock".into())
        .spawn(move || {
            loop {
                std::thread::sleep(TICK);
                if !look(&ticking) {
                    lock(&ticking).build_tick();
                }
            }
        })?;
    Ok(())
}

fn lock(sink: &SharedSink) -> std::sync::MutexGuard<'_, super::output::Sink> {
    sink.lock().unwrap_or_else(|p| p.into_inner())
}

/// Reads the running cell's build directory, if it has one, and updates the display (and its
/// clock); returns whether it could. The directory is read without holding the sink.
fn look(sink: &SharedSink) -> bool {
    let Some((target, since)) = lock(sink).build_watch() else {
        return false;
    };
    let crates = scan(&target, since);
    lock(sink).build_crates(crates, since);
    true
}

fn forward(reader: std::fs::File, mut original: std::fs::File, sink: &SharedSink) {
    // Never stop reading: evcxr treats a failed write to stderr as fatal.
    for line in BufReader::new(reader).split(b'\n') {
        let Ok(mut line) = line else { break };
        if let Some(what) = compiling(&String::from_utf8_lossy(&line))
            && !look(sink)
        {
            lock(sink).build_step(what);
        }
        line.push(b'\n');
        let _ = original.write_all(&line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A fingerprint directory `unit` under `root` (`target/debug` or `target/<triple>/debug`)
    /// holding `files` (name, modified), itself last modified at `made`.
    fn unit(root: &Path, unit: &str, files: &[(&str, SystemTime)], made: SystemTime) {
        let dir = root.join(".fingerprint").join(unit);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, modified) in files {
            let file = std::fs::File::create(dir.join(name)).unwrap();
            file.set_modified(*modified).unwrap();
        }
        std::fs::File::open(&dir)
            .unwrap()
            .set_modified(made)
            .unwrap();
    }

    #[test]
    fn a_build_is_read_from_the_fingerprint_directories_cargo_makes_and_fills() {
        let target = std::env::temp_dir().join(format!("kettle-build-scan-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&target);
        let host = target.join("debug");
        let platform = target.join("x86_64-unknown-linux-gnu").join("debug");
        let since = SystemTime::now();
        let old = since - Duration::from_secs(3600);
        let now = since + Duration::from_secs(1);
        let later = since + Duration::from_secs(2);
        // Built by an earlier cell: not part of this build.
        unit(
            &platform,
            "either-88b07ece0188aa68",
            &[("invoked.timestamp", old), ("lib-either.json", old)],
            old,
        );
        // The cell crate is not a dependency; it has not started yet.
        unit(
            &platform,
            "ctx-0aeb2137df72b0c2",
            &[("invoked.timestamp", old)],
            old,
        );
        // crossbeam-utils: its build script is compiled (host) and run, its library compiles.
        unit(
            &host,
            "crossbeam-utils-5e573efcbf5ba021",
            &[
                ("invoked.timestamp", now),
                ("build-script-build-script-build.json", later),
            ],
            now,
        );
        unit(
            &platform,
            "crossbeam-utils-04a4315db728e8ff",
            &[("run-build-script-build-script-build.json", later)],
            now,
        );
        unit(
            &platform,
            "crossbeam-utils-19cb5f91f1099f3a",
            &[("invoked.timestamp", later)],
            now,
        );
        // rayon-core: queued.
        unit(&platform, "rayon-core-12103a5f16c35df4", &[], now);
        // itoa: made and done in this build.
        unit(
            &platform,
            "itoa-a5ef598472671a55",
            &[("invoked.timestamp", now), ("lib-itoa.json", later)],
            now,
        );
        // memchr: built before, now rebuilt (started again; its old fingerprint still there).
        unit(
            &platform,
            "memchr-5c4c62dc1f3a3b4b",
            &[("invoked.timestamp", now), ("lib-memchr.json", old)],
            old,
        );

        let crates = scan(&target, since);
        assert_eq!(
            crates,
            Crates {
                total: 4,
                done: 1,
                building: vec!["crossbeam-utils".to_owned(), "memchr".to_owned()],
                cell_started: false,
            }
        );
        // cargo compiles the cell's crate once the dependencies are built.
        unit(
            &platform,
            "ctx-0aeb2137df72b0c2",
            &[("invoked.timestamp", later)],
            old,
        );
        assert!(scan(&target, since).cell_started);
        assert_eq!(cell_invoked(&target), Some(later));
        // Nothing happened there since: no build.
        assert_eq!(
            scan(&target, later + Duration::from_secs(1)),
            Crates::default()
        );
        assert_eq!(scan(&target.join("missing"), since), Crates::default());
        let _ = std::fs::remove_dir_all(&target);
    }

    #[test]
    fn fingerprint_directories_are_named_after_their_package() {
        assert_eq!(
            package_of("crossbeam-utils-04a4315db728e8ff"),
            Some("crossbeam-utils")
        );
        assert_eq!(package_of("itoa-a5ef598472671a55"), Some("itoa"));
        assert_eq!(package_of("itoa-a5ef5984"), None);
        assert_eq!(package_of("no-hash-here-zzzzzzzzzzzzzzzz"), None);
        assert_eq!(package_of("-a5ef598472671a55"), None);
    }

    #[test]
    fn cargo_compiling_lines_name_the_crate_and_version() {
        assert_eq!(
            compiling("   Compiling tokio v1.54.1"),
            Some("tokio v1.54.1")
        );
        assert_eq!(
            compiling("   Compiling kettle-lab v0.1.0 (/work/main/crates/kettle-lab)"),
            Some("kettle-lab v0.1.0")
        );
        assert_eq!(compiling("warning: unused variable"), None);
        assert_eq!(compiling("   Compiling "), None);
    }
}
