//! A temporary directory that removes itself ([`ScratchDir`]), for the generated fixtures.
//!
//! std has no tempdir, and the crate takes no dependencies. Names combine the process id, a
//! per-process counter and the time, so parallel tests and two kernels never share one.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A fresh directory under the system temp dir, deleted with everything in it when dropped.
#[derive(Debug)]
pub(crate) struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    /// Creates `<temp>/kettle-<what>-<pid>-<n>-<nanos>`.
    pub(crate) fn new(what: &str) -> io::Result<Self> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path =
            std::env::temp_dir().join(format!("kettle-{what}-{}-{n}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path)?;
        Ok(ScratchDir { path })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        // Best effort: a fixture that cannot be removed must not turn into a panic in a notebook.
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
