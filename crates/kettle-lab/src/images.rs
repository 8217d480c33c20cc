//! Generated 1-bit test images for the case study (C17–C23), instead of the book's sample BMPs
//! (xkcd comics and others that cannot be redistributed).
//!
//! Each generator is deterministic given its size and seed. [`SampleImages`] writes a set of
//! them as BMP files into a fresh temporary directory and removes it when dropped.
//!
//! | image | what it exercises |
//! |---|---|
//! | [`stripes`] | long runs, many chunk boundaries at 127 bits |
//! | [`checkerboard`] | regular runs, alternating rows |
//! | [`blocky_text`] | a page of "words", like a scanned text; [`page`] is the 7200×5600 one |
//! | [`noise`] | the worst case: runs of 1–2 pixels, so RLE makes the data *bigger* |

use std::io;
use std::path::{Path, PathBuf};

use crate::Bitmap;
use crate::rng::splitmix64;

/// Width and height of the book's large image (C21), and of [`page`].
pub const PAGE_SIZE: (usize, usize) = (7200, 5600);

/// A sequential seeded generator (SplitMix64 over a counter).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(1);
        splitmix64(self.0)
    }
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo + 1) as u64) as usize
    }
    /// `true` with probability 1/`n`.
    fn one_in(&mut self, n: u64) -> bool {
        self.next().is_multiple_of(n)
    }
}

/// Vertical black and white bands of widths 3, 10, 40 and 200 pixels, repeating.
pub fn stripes(width: usize, height: usize) -> Bitmap {
    let pattern: Vec<bool> = [3, 10, 40, 200]
        .iter()
        .enumerate()
        .flat_map(|(i, &w)| [vec![false; w], vec![true; w + i]].concat())
        .collect();
    let row: Vec<bool> = (0..width).map(|x| pattern[x % pattern.len()]).collect();
    Bitmap::from_pixels(width, height, row.repeat(height))
}

/// Black and white squares of side `cell`.
pub fn checkerboard(width: usize, height: usize, cell: usize) -> Bitmap {
    let cell = cell.max(1);
    let pixels = (0..height)
        .flat_map(|y| (0..width).map(move |x| (x / cell + y / cell).is_multiple_of(2)))
        .collect();
    Bitmap::from_pixels(width, height, pixels)
}

/// Independent random pixels, about half black: the worst case for run-length encoding.
pub fn noise(width: usize, height: usize, seed: u64) -> Bitmap {
    let mut rng = Rng(seed);
    let mut pixels = Vec::with_capacity(width * height);
    while pixels.len() < width * height {
        let bits = rng.next();
        let take = (width * height - pixels.len()).min(64);
        pixels.extend((0..take).map(|i| bits >> i & 1 == 1));
    }
    Bitmap::from_pixels(width, height, pixels)
}

/// A white page of black "words": lines of glyph rectangles, like the Python baseline's
/// `gen_image.py`. Margins are 1/36 of the width, lines 96 px apart; words have 2–9 glyphs,
/// 12–40 px wide and 24–48 px tall on a common baseline, 8 px apart, 36 px between words;
/// about a quarter of the glyphs have a white hole and about 1 line in 8 ends early.
pub fn blocky_text(width: usize, height: usize, seed: u64) -> Bitmap {
    let mut rng = Rng(seed);
    let mut image = Bitmap::new(width, height);
    let margin = (width / 36).max(4);
    let mut baseline = margin + 48;
    while baseline + margin <= height {
        let line_end = if rng.one_in(8) {
            rng.range(margin + 1, width - margin)
        } else {
            width - margin
        };
        let mut x = margin;
        'line: loop {
            let glyphs = rng.range(2, 9);
            for _ in 0..glyphs {
                let (w, h) = (rng.range(12, 40), rng.range(24, 48));
                if x + w > line_end {
                    break 'line;
                }
                image.fill((x, baseline - h), (x + w, baseline), false);
                if rng.one_in(4) {
                    image.fill(
                        (x + w / 3, baseline - 2 * h / 3),
                        (x + 2 * w / 3, baseline - h / 3),
                        true,
                    );
                }
                x += w + 8;
            }
            x += 28; // 36 px between words, counting the last glyph's 8
        }
        baseline += 96;
    }
    image
}

/// The large 7200×5600 page of the C21/C22 experiments.
pub fn page(seed: u64) -> Bitmap {
    blocky_text(PAGE_SIZE.0, PAGE_SIZE.1, seed)
}

/// BMP files written into a fresh temporary directory, removed again on drop.
///
/// ```
/// let set = kettle_lab::SampleImages::small()?;
/// assert_eq!(set.paths().len(), 4);
/// let image = kettle_lab::Bitmap::read(&set.paths()[0])?;
/// assert_eq!(image.width(), 640);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct SampleImages {
    dir: PathBuf,
    paths: Vec<PathBuf>,
}

impl SampleImages {
    /// An empty set in a new directory under the system temp dir.
    pub fn empty() -> io::Result<SampleImages> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        // pid + counter: two notebooks (or two tests) never share a directory.
        let dir = std::env::temp_dir().join(format!(
            "kettle-images-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)?;
        Ok(SampleImages {
            dir,
            paths: Vec::new(),
        })
    }

    /// The four small images: `stripes.bmp`, `checkerboard.bmp`, `text.bmp`, `noise.bmp`
    /// (640×480 each).
    pub fn small() -> io::Result<SampleImages> {
        let mut set = SampleImages::empty()?;
        set.add("stripes.bmp", &stripes(640, 480))?;
        set.add("checkerboard.bmp", &checkerboard(640, 480, 40))?;
        set.add("text.bmp", &blocky_text(640, 480, 1))?;
        set.add("noise.bmp", &noise(640, 480, 1))?;
        Ok(set)
    }

    /// `n` large pages (`page_1.bmp` … with seeds 1..=n), as in the Python baseline's 2×2 run.
    pub fn pages(n: u64) -> io::Result<SampleImages> {
        let mut set = SampleImages::empty()?;
        for seed in 1..=n {
            set.add(&format!("page_{seed}.bmp"), &page(seed))?;
        }
        Ok(set)
    }

    /// Writes `image` as `name` into the directory and adds it to the set.
    pub fn add(&mut self, name: &str, image: &Bitmap) -> io::Result<PathBuf> {
        let path = self.dir.join(name);
        image.write(&path)?;
        self.paths.push(path.clone());
        Ok(path)
    }

    /// The directory holding the files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The image files, in the order they were added.
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }
}

impl Drop for SampleImages {
    fn drop(&mut self) {
        // Best effort: a learner may have the directory open in a file browser.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generators_are_deterministic_and_sized() {
        assert_eq!(blocky_text(300, 200, 3), blocky_text(300, 200, 3));
        assert_ne!(blocky_text(300, 200, 3), blocky_text(300, 200, 4));
        assert_eq!(noise(50, 40, 1), noise(50, 40, 1));
        let s = stripes(1000, 2);
        assert_eq!((s.width(), s.height()), (1000, 2));
        assert_eq!(s.row(0), s.row(1));
        assert!(!s.get(0, 0) && s.get(3, 0));
        let c = checkerboard(8, 8, 2);
        assert!(c.get(0, 0) && !c.get(2, 0) && !c.get(0, 2) && c.get(2, 2));
    }

    #[test]
    fn page_looks_like_text() {
        let p = page(1);
        assert_eq!((p.width(), p.height()), PAGE_SIZE);
        let black = p.pixels().iter().filter(|&&px| !px).count();
        let share = black as f64 / p.pixels().len() as f64;
        assert!((0.05..0.5).contains(&share), "black share {share}");
        // Margins stay white.
        assert!(p.row(10).iter().all(|&px| px));
        assert!((0..p.height()).all(|y| p.get(5, y)));
    }

    #[test]
    fn noise_is_about_half_black() {
        let n = noise(200, 100, 9);
        let black = n.pixels().iter().filter(|&&px| !px).count();
        assert!((9_000..11_000).contains(&black), "{black}");
    }

    #[test]
    fn sample_dir_is_removed_on_drop() {
        let set = SampleImages::small().unwrap();
        let dir = set.dir().to_owned();
        assert!(set.paths().iter().all(|p| p.exists()));
        assert_eq!(
            Bitmap::read(&set.paths()[1]).unwrap(),
            checkerboard(640, 480, 40)
        );
        drop(set);
        assert!(!dir.exists());
    }
}
