//! A generated corpus of source-like files ([`Corpus`]) for the chapter's queue search engine
//! (C9–C11), instead of "the files of the current directory".
//!
//! The layout is the one the Python baseline was measured on: file *i* of `file_000.py` ...
//! has a line `def handler_{i}_{j}(request, value):` for every tenth line *j*, and lines that
//! never contain "def" otherwise. So the number of matches for "def" is known in advance, and
//! the Rust and Python timings are for the same 12 MB of text.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use crate::scratch::ScratchDir;

/// Files of text lines in a temporary directory, removed when the corpus is dropped.
#[derive(Debug)]
pub struct Corpus {
    dir: ScratchDir,
    files: Vec<PathBuf>,
    lines_per_file: usize,
}

impl Corpus {
    /// The Python baseline's corpus: 200 files of 1,000 lines (12 MB), 20,000 "def" lines.
    pub fn book() -> io::Result<Self> {
        Self::generate(200, 1000)
    }

    /// `files` files of `lines_per_file` lines each; one line in ten is a `def`.
    ///
    /// ```
    /// let corpus = kettle_lab::Corpus::generate(3, 20)?;
    /// assert_eq!(corpus.paths().len(), 3);
    /// assert_eq!(corpus.expected_matches("def"), 6);
    /// let first = std::fs::read_to_string(&corpus.paths()[0])?;
    /// assert_eq!(first.lines().next(), Some("def handler_0_0(request, value):"));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn generate(files: usize, lines_per_file: usize) -> io::Result<Self> {
        let dir = ScratchDir::new("corpus")?;
        let mut paths = Vec::with_capacity(files);
        for i in 0..files {
            let path = dir.path().join(format!("file_{i:03}.py"));
            std::fs::write(&path, file_text(i, lines_per_file))?;
            paths.push(path);
        }
        Ok(Corpus {
            dir,
            files: paths,
            lines_per_file,
        })
    }

    /// The directory holding the files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The files, in name order.
    pub fn paths(&self) -> &[PathBuf] {
        &self.files
    }

    /// Total size of the files in bytes.
    pub fn bytes(&self) -> u64 {
        self.files
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum()
    }

    /// How many lines contain `query`, counted in freshly generated text rather than in the
    /// files, so a search that reads the files is checked against an independent answer.
    pub fn expected_matches(&self, query: &str) -> usize {
        (0..self.files.len())
            .map(|i| {
                file_text(i, self.lines_per_file)
                    .lines()
                    .filter(|l| l.trim().contains(query))
                    .count()
            })
            .sum()
    }
}

/// The text of file `i`: the same every time.
fn file_text(i: usize, lines: usize) -> String {
    let mut text = String::with_capacity(lines * 60);
    for j in 0..lines {
        if j.is_multiple_of(10) {
            let _ = writeln!(text, "def handler_{i}_{j}(request, value):");
        } else {
            let _ = writeln!(
                text,
                "    result_{j} = compute(value, {i}, {j}) + offset  # step {j}"
            );
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_book_corpus_has_20000_defs_and_is_removed_on_drop() {
        let corpus = Corpus::book().unwrap();
        assert_eq!(corpus.paths().len(), 200);
        assert_eq!(corpus.expected_matches("def"), 20_000);
        assert!(corpus.bytes() > 10_000_000);
        let dir = corpus.dir().to_owned();
        drop(corpus);
        assert!(!dir.exists());
    }

    #[test]
    fn files_are_the_same_every_time() {
        let a = Corpus::generate(2, 30).unwrap();
        let b = Corpus::generate(2, 30).unwrap();
        assert_ne!(a.dir(), b.dir());
        for (x, y) in a.paths().iter().zip(b.paths()) {
            assert_eq!(std::fs::read(x).unwrap(), std::fs::read(y).unwrap());
        }
    }
}
