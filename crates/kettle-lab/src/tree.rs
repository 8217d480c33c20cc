//! A generated directory tree ([`Tree`]) for the chapter's `find_files` (C12), instead of
//! walking the whole filesystem from `/`.
//!
//! The shape is the Python baseline's: every directory holds ten files (`f0.py f1.py f2.py
//! f3.txt f4.txt f5.rs f6.rs f7.md f8.json f9.pyc`) and `fanout` subdirectories `d0`, `d1`, ...
//! down to `depth` levels; `d0/loop` is a symlink back to the root, which a walk must not follow.
//! Depth 4 and fan-out 6 give 1,555 directories, 15,550 files and 6,220 paths containing ".py".
//!
//! Two extra directories are there to make a walk fail, as `/` does:
//! - `locked/` has no permissions (mode 000). Listing it fails, *unless you are root*: root
//!   ignores mode bits, and CI often runs as root.
//! - `latin1/` holds a file whose name is not UTF-8 (`caf\xE9.py`, Latin-1 "café"). Linux allows
//!   any bytes in a name; a walk that matches names as `&str` must report an error here, and
//!   that fails for root too.

use std::io;
use std::path::{Path, PathBuf};

use crate::scratch::ScratchDir;

/// The ten files of every directory.
pub const TREE_FILES: [&str; 10] = [
    "f0.py", "f1.py", "f2.py", "f3.txt", "f4.txt", "f5.rs", "f6.rs", "f7.md", "f8.json", "f9.pyc",
];

/// A directory tree in a temporary directory, removed (permissions restored first) when dropped.
#[derive(Debug)]
pub struct Tree {
    // Declared before `dir`, whose drop removes the files: see `Drop for Tree`.
    locked: PathBuf,
    locked_is_readable: bool,
    latin1: PathBuf,
    ordinary_files: Vec<PathBuf>,
    locked_files: Vec<PathBuf>,
    dirs: usize,
    dir: ScratchDir,
}

impl Tree {
    /// The Python baseline's tree: depth 4, fan-out 6.
    pub fn book() -> io::Result<Self> {
        Self::generate(4, 6)
    }

    /// A tree `depth` levels deep below the root with `fanout` subdirectories per directory.
    ///
    /// ```
    /// let tree = kettle_lab::Tree::generate(1, 2)?;
    /// assert_eq!(tree.dirs(), 1 + 2);
    /// assert!(tree.root().join("d1/f9.pyc").is_file());
    /// assert_eq!(tree.expected_matches(".rs").len(), 3 * 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn generate(depth: u32, fanout: u32) -> io::Result<Self> {
        let dir = ScratchDir::new("tree")?;
        let root = dir.path().join("tree");
        let mut ordinary_files = Vec::new();
        let mut dirs = 0;
        let mut level = vec![root.clone()];
        for d in 0..=depth {
            let mut next = Vec::new();
            for parent in &level {
                std::fs::create_dir_all(parent)?;
                dirs += 1;
                for name in TREE_FILES {
                    let file = parent.join(name);
                    std::fs::write(&file, b"")?;
                    ordinary_files.push(file);
                }
                if d < depth {
                    next.extend((0..fanout).map(|i| parent.join(format!("d{i}"))));
                }
            }
            level = next;
        }
        if fanout > 0 && depth > 0 {
            symlink_dir(&root, &root.join("d0").join("loop"))?;
        }

        let locked = root.join("locked");
        std::fs::create_dir(&locked)?;
        let locked_files = vec![locked.join("secret.py")];
        std::fs::write(&locked_files[0], b"")?;
        let locked_is_readable = lock(&locked)?;

        let latin1 = root.join("latin1");
        std::fs::create_dir(&latin1)?;
        write_non_utf8_name(&latin1)?;

        ordinary_files.sort();
        Ok(Tree {
            locked,
            locked_is_readable,
            latin1,
            ordinary_files,
            locked_files,
            dirs,
            dir,
        })
    }

    /// The tree's root directory.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("tree")
    }

    /// How many directories of the regular shape there are (without `locked/` and `latin1/`).
    pub fn dirs(&self) -> usize {
        self.dirs
    }

    /// How many files of the regular shape there are.
    pub fn files(&self) -> usize {
        self.ordinary_files.len()
    }

    /// The directory without permissions.
    pub fn locked_dir(&self) -> &Path {
        &self.locked
    }

    /// Whether this process can list [`locked_dir`](Self::locked_dir) anyway (it is root).
    pub fn locked_is_readable(&self) -> bool {
        self.locked_is_readable
    }

    /// The directory holding a file whose name is not UTF-8.
    pub fn latin1_dir(&self) -> &Path {
        &self.latin1
    }

    /// The files whose full path contains `query` that a correct walk finds, sorted: every
    /// regular file, plus `locked/`'s if this process can read it; never `latin1/`'s, whose
    /// listing a `&str` walk must reject.
    pub fn expected_matches(&self, query: &str) -> Vec<PathBuf> {
        let readable_locked = if self.locked_is_readable {
            &self.locked_files[..]
        } else {
            &[]
        };
        let mut found: Vec<PathBuf> = self
            .ordinary_files
            .iter()
            .chain(readable_locked)
            .filter(|p| p.to_str().is_some_and(|s| s.contains(query)))
            .cloned()
            .collect();
        found.sort();
        found
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        // Give the locked directory its permissions back, or removing the tree fails for anyone
        // but root; the ScratchDir removes everything afterwards.
        let _ = unlock(&self.locked);
    }
}

#[cfg(unix)]
fn symlink_dir(target: &Path, link: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(not(unix))]
fn symlink_dir(_target: &Path, _link: &Path) -> io::Result<()> {
    Ok(()) // symlinks need privileges on Windows; the tree simply has no loop there
}

/// Takes every permission away from `dir`; returns whether it can still be listed (root).
#[cfg(unix)]
fn lock(dir: &Path) -> io::Result<bool> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o000))?;
    Ok(std::fs::read_dir(dir).is_ok())
}

#[cfg(not(unix))]
fn lock(_dir: &Path) -> io::Result<bool> {
    Ok(true)
}

#[cfg(unix)]
fn unlock(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
}

#[cfg(not(unix))]
fn unlock(_dir: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn write_non_utf8_name(dir: &Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    std::fs::write(dir.join(std::ffi::OsStr::from_bytes(b"caf\xE9.py")), b"")
}

#[cfg(not(unix))]
fn write_non_utf8_name(_dir: &Path) -> io::Result<()> {
    Ok(()) // Windows names are UTF-16; there is no such file to trip over
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_book_tree_has_the_baseline_counts() {
        let tree = Tree::book().unwrap();
        assert_eq!(tree.dirs(), 1555);
        assert_eq!(tree.files(), 15_550);
        let extra = usize::from(tree.locked_is_readable());
        assert_eq!(tree.expected_matches(".py").len(), 6220 + extra);
        assert!(tree.root().join("d0/loop").is_symlink());
    }

    #[test]
    fn a_locked_tree_is_removed_on_drop() {
        let tree = Tree::generate(1, 1).unwrap();
        let root = tree.root();
        assert!(tree.latin1_dir().read_dir().unwrap().count() == 1);
        drop(tree);
        assert!(!root.exists());
    }
}
