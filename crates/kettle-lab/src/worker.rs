//! Building the MuchCPU worker program ([`muchcpu_program`]) that cell X5 runs as child
//! processes.
//!
//! A notebook cell is compiled into a shared library inside the kernel, so "run this function in
//! another process" needs a real executable. Python's `multiprocessing` re-runs the interpreter;
//! here we compile `muchcpu_worker.rs` (embedded as text) with the same `rustc` the kernel uses,
//! once per process, into the system temp dir. That takes a fraction of a second and needs no
//! build system, and learners can read the whole program in the crate.

use std::io;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The worker program's source, exactly as compiled.
pub const MUCHCPU_SOURCE: &str = include_str!("muchcpu_worker.rs");

/// The path of the MuchCPU worker executable (`<it> <iterations>`), compiled with optimisation
/// on first use. `rustc` is taken from `$RUSTC`, else `PATH`.
///
/// ```no_run
/// let out = std::process::Command::new(kettle_lab::muchcpu_program()?).arg("1000").output()?;
/// assert!(out.status.success());
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn muchcpu_program() -> io::Result<PathBuf> {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    if let Some(path) = BUILT.get() {
        return Ok(path.clone());
    }
    // One directory per process: two notebooks building at once never share a half-written file.
    let dir = std::env::temp_dir().join(format!("kettle-muchcpu-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let source = dir.join("muchcpu.rs");
    std::fs::write(&source, MUCHCPU_SOURCE)?;
    let exe = dir.join("muchcpu");
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(rustc)
        .args(["--edition", "2024", "-C", "opt-level=2", "-o"])
        .arg(&exe)
        .arg(&source)
        .output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "rustc could not build the MuchCPU worker:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(BUILT.get_or_init(|| exe).clone())
}
