//! Notebook 05 ("Case study") without Jupyter: every Rust cell of
//! `notebooks/05-case-study.ipynb` lives here, between `// [cell ID]` and `// [end]`, and runs as
//! an ordinary test. The notebook's compressor is checked byte for byte against
//! `kettle_lab::rle`, and its decompressor against the original pixels.

// [cell setup]
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::Instant;

use kettle_lab::{Bitmap, SampleImages};
use kettle_timing::Compare;
use rayon::prelude::*;
// [end]

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[test]
fn c17_c23_compress_and_decompress() -> TestResult {
    // [cell C17]
    /// The book's `compress_chunk`: one byte per run, `(bit << 7) | run_length`, for a chunk
    /// of at most 127 pixels (so a run length always fits in 7 bits).
    fn compress_chunk(chunk: &[bool]) -> Vec<u8> {
        let mut compressed = Vec::new();
        let mut count = 1;
        let mut last = chunk[0];
        for &bit in &chunk[1..] {
            if bit != last {
                compressed.push(count | (128 * last as u8));
                count = 0;
                last = bit;
            }
            count += 1;
        }
        compressed.push(count | (128 * last as u8));
        compressed
    }
    // [end]

    // [cell C18]
    /// The book's generator `split_bits`: consecutive slices of `width` bits. A slice is a
    /// view into the image, not a copy, so this costs nothing.
    fn split_bits(bits: &[bool], width: usize) -> std::slice::Chunks<'_, bool> {
        bits.chunks(width)
    }

    /// The book's `compress_row`: the row in 127-pixel chunks, each chunk's runs in turn.
    fn compress_row(row: &[bool]) -> Vec<u8> {
        let mut compressed = Vec::new();
        for chunk in split_bits(row, 127) {
            compressed.extend(compress_chunk(chunk));
        }
        compressed
    }
    // [end]

    // [cell C20]
    /// Where `compress_in_executor` runs the rows.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Executor {
        /// No executor: a plain loop.
        Sequential,
        /// One rayon task per row (the book's `executor.submit` per row, on a thread pool).
        Rayon,
        /// One scoped thread per core, each compressing a contiguous block of rows.
        Threads,
        /// One `kettle-worker rle rows` child per core, rows sent packed over a pipe.
        Processes,
    }

    /// The book's `compress_in_executor`: every row compressed, then the results joined in
    /// row order.
    fn compress_in_executor(
        executor: Executor,
        bits: &[bool],
        width: usize,
    ) -> io::Result<Vec<u8>> {
        let cores = thread::available_parallelism()?.get();
        Ok(match executor {
            Executor::Sequential => split_bits(bits, width).flat_map(compress_row).collect(),
            Executor::Rayon => bits
                .par_chunks(width)
                .map(compress_row)
                .collect::<Vec<_>>()
                .concat(),
            Executor::Threads => {
                let rows: Vec<&[bool]> = split_bits(bits, width).collect();
                thread::scope(|s| {
                    let blocks: Vec<_> = rows
                        .chunks(rows.len().div_ceil(cores))
                        .map(|block| {
                            s.spawn(move || {
                                block
                                    .iter()
                                    .flat_map(|r| compress_row(r))
                                    .collect::<Vec<u8>>()
                            })
                        })
                        .collect();
                    blocks
                        .into_iter()
                        .map(|b| b.join().unwrap())
                        .collect::<Vec<_>>()
                        .concat()
                })
            }
            Executor::Processes => compress_in_processes(bits, width, cores)?,
        })
    }

    /// The process flavour: the rows cross a pipe (packed 8 pixels a byte, the book's
    /// reason for `bitarray`) and the compressed bytes come back. Python pickles; we copy.
    fn compress_in_processes(bits: &[bool], width: usize, workers: usize) -> io::Result<Vec<u8>> {
        let worker = kettle_lab::worker_path()?;
        let rows: Vec<&[bool]> = split_bits(bits, width).collect();
        let parts = thread::scope(|s| {
            let children: Vec<_> = rows
                .chunks(rows.len().div_ceil(workers))
                .map(|block| {
                    let worker = &worker;
                    s.spawn(move || -> io::Result<Vec<u8>> {
                        let mut child = Command::new(worker)
                            .args(["rle", "rows", &width.to_string()])
                            .stdin(Stdio::piped())
                            .stdout(Stdio::piped())
                            .spawn()?;
                        let packed = kettle_lab::rle::pack_rows(block.iter().copied(), width);
                        // The worker reads all its input before it writes: no pipe deadlock.
                        child.stdin.take().expect("piped").write_all(&packed)?;
                        Ok(child.wait_with_output()?.stdout)
                    })
                })
                .collect();
            children
                .into_iter()
                .map(|c| c.join().unwrap())
                .collect::<io::Result<Vec<_>>>()
        })?;
        Ok(parts.concat())
    }
    // [end]

    // [cell C21]
    /// The book's `compress_image`: load, convert to bits, write a 4-byte header (width and
    /// height, little-endian) and the compressed rows. Returns the size written.
    fn compress_image(in_path: &Path, out_path: &Path, executor: Executor) -> io::Result<usize> {
        let image = Bitmap::read(in_path)?; // Pillow's Image.open(...).convert('1')
        let (width, height) = (image.width(), image.height());
        let mut out = Vec::new();
        out.extend((width as u16).to_le_bytes());
        out.extend((height as u16).to_le_bytes());
        out.extend(compress_in_executor(executor, image.pixels(), width)?);
        std::fs::write(out_path, &out)?;
        Ok(out.len())
    }

    let samples = SampleImages::small()?; // stripes, checkerboard, text, noise: 640×480
    println!("{:<18} {:>9} {:>9} {:>7}", "image", "BMP", "RLE", "RLE/BMP");
    for path in samples.paths() {
        let rle = path.with_extension("rle");
        let size = compress_image(path, &rle, Executor::Sequential)?;
        let bmp = std::fs::metadata(path)?.len() as usize;
        let name = path.file_name().unwrap().to_string_lossy();
        println!(
            "{name:<18} {bmp:>9} {size:>9} {:>6.0}%",
            100.0 * size as f64 / bmp as f64
        );
    }
    // [end]
    for path in samples.paths() {
        let ours = std::fs::read(path.with_extension("rle"))?;
        assert_eq!(ours, kettle_lab::rle::compress_image(&Bitmap::read(path)?));
    }

    // [cell C21-page]
    let pages = SampleImages::pages(1)?; // the 7200×5600 page, 5,040,062 bytes
    let page: PathBuf = pages.paths()[0].clone();
    let start = Instant::now();
    let size = compress_image(&page, &page.with_extension("rle"), Executor::Rayon)?;
    let total = start.elapsed().as_secs_f64();
    println!(
        "compress_image(page_1.bmp): {size} bytes in {total:.3} s (Python: 3.42 s with processes)"
    );

    let image = Bitmap::read(&page)?;
    let width = image.width();
    let executors = [
        Executor::Sequential,
        Executor::Rayon,
        Executor::Threads,
        Executor::Processes,
    ];
    let outputs: Vec<Vec<u8>> = executors
        .iter()
        .map(|&e| compress_in_executor(e, image.pixels(), width))
        .collect::<io::Result<_>>()?;
    println!(
        "all four executors wrote the same bytes: {}",
        outputs.iter().all(|o| *o == outputs[0])
    );

    // In a block: the closures borrow `image`, and a notebook cannot keep borrows between cells.
    let per_row = {
        let mut compare = Compare::new("compress_in_executor, one 7200×5600 page").runs(5);
        for executor in executors {
            let image = &image;
            compare = compare.variant(format!("{executor:?}"), move || {
                compress_in_executor(executor, image.pixels(), width).unwrap()
            });
        }
        compare.run()
    };
    // [end]
    let rle = std::fs::read(page.with_extension("rle"))?;
    assert_eq!(rle[4..], outputs[0][..]);
    assert_eq!(rle, kettle_lab::rle::compress_image(&image));
    assert!(outputs.iter().all(|o| *o == outputs[0]));
    assert_eq!(per_row.variants.len(), 4);

    // [cell C22]
    /// The book's `compress_dir`: one task per image, each with its own per-row executor:
    /// executors inside executors ("don't do this in real life").
    fn compress_dir(
        in_dir: &Path,
        out_dir: &Path,
        per_image: Executor,
        per_row: Executor,
    ) -> io::Result<()> {
        let mut bmps: Vec<PathBuf> = std::fs::read_dir(in_dir)?
            .map(|entry| entry.map(|e| e.path()))
            .collect::<io::Result<_>>()?;
        bmps.retain(|p| p.extension().is_some_and(|e| e == "bmp"));
        let rle_of = |bmp: &Path| out_dir.join(bmp.file_name().unwrap()).with_extension("rle");
        match per_image {
            // A child process per image: only the file names cross the process boundary.
            Executor::Processes => {
                let rows = match per_row {
                    Executor::Processes => "processes",
                    Executor::Sequential => "seq",
                    _ => "threads",
                };
                let worker = kettle_lab::worker_path()?;
                let children = bmps
                    .iter()
                    .map(|bmp| {
                        Command::new(&worker)
                            .args(["rle", "file"])
                            .args([bmp, &rle_of(bmp)])
                            .arg(rows)
                            .stdout(Stdio::null())
                            .spawn()
                    })
                    .collect::<io::Result<Vec<_>>>()?;
                for mut child in children {
                    let status = child.wait()?;
                    if !status.success() {
                        return Err(io::Error::other(format!("kettle-worker rle: {status}")));
                    }
                }
            }
            // No executor for the images: one after another.
            Executor::Sequential => {
                for bmp in &bmps {
                    compress_image(bmp, &rle_of(bmp), per_row)?;
                }
            }
            // A thread per image.
            _ => thread::scope(|s| {
                let tasks: Vec<_> = bmps
                    .iter()
                    .map(|bmp| s.spawn(move || compress_image(bmp, &rle_of(bmp), per_row)))
                    .collect();
                tasks
                    .into_iter()
                    .try_for_each(|t| t.join().unwrap().map(drop))
            })?,
        }
        Ok(())
    }

    // 4 pages, seeds 1–4, as in the Python run. (A new name: `pages` still holds C21's page.)
    let four_pages = SampleImages::pages(4)?;
    let out_dir = four_pages.dir().join("rle");
    std::fs::create_dir_all(&out_dir)?;
    let dir = four_pages.dir().to_path_buf();
    let two_by_two = Compare::new("compress_dir: 4 pages of 7200×5600")
        .runs(3)
        .warmup(0)
        .variant("process / process", || {
            compress_dir(&dir, &out_dir, Executor::Processes, Executor::Processes).unwrap()
        })
        .variant("process / thread", || {
            compress_dir(&dir, &out_dir, Executor::Processes, Executor::Threads).unwrap()
        })
        .variant("thread / process", || {
            compress_dir(&dir, &out_dir, Executor::Threads, Executor::Processes).unwrap()
        })
        .variant("thread / thread", || {
            compress_dir(&dir, &out_dir, Executor::Threads, Executor::Rayon).unwrap()
        })
        .variant("sequential", || {
            compress_dir(&dir, &out_dir, Executor::Sequential, Executor::Sequential).unwrap()
        })
        .measure();

    let secs: Vec<f64> = two_by_two
        .variants
        .iter()
        .map(|v| v.median().as_secs_f64())
        .collect();
    kettle_display::display(kettle_display::markdown(format!(
        "| per image ↓ \\ per row → | process | thread |\n|---|---|---|\n\
         | **process** | {:.3} s (Python 7.14 s, book 42 s) | {:.3} s (Python 6.47 s, book 34 s) |\n\
         | **thread** | {:.3} s (Python 10.93 s, book 53 s) | {:.3} s (Python 12.40 s, book 64 s) |\n\
         | *sequential* | {:.3} s (Python 12.34 s) | |\n",
        secs[0], secs[1], secs[2], secs[3], secs[4]
    )));
    let fastest = secs[..4].iter().copied().fold(f64::MAX, f64::min);
    println!(
        "fastest Rust cell vs fastest Python cell (6.47 s): {:.0}× faster",
        6.47 / fastest
    );
    // [end]
    for bmp in four_pages.paths() {
        let ours = std::fs::read(out_dir.join(bmp.file_name().unwrap()).with_extension("rle"))?;
        assert_eq!(ours, kettle_lab::rle::compress_image(&Bitmap::read(bmp)?));
    }

    // [cell C23]
    /// The book's `decompress`: each byte is a run, colour in the top bit and length in the
    /// other 7; pixels are filled in order, wrapping at the end of each row.
    fn decompress(width: usize, height: usize, bytes: &[u8]) -> Bitmap {
        let mut image = Bitmap::new(width, height);
        let (mut x, mut y) = (0, 0);
        for &byte in bytes {
            let color = byte >> 7 == 1;
            let count = byte & 0x7F;
            for _ in 0..count {
                image.set(x, y, color);
                x += 1;
                if x == width {
                    x = 0;
                    y += 1;
                }
            }
        }
        image
    }

    let rle = std::fs::read(page.with_extension("rle"))?;
    let width = u16::from_le_bytes([rle[0], rle[1]]) as usize;
    let height = u16::from_le_bytes([rle[2], rle[3]]) as usize;
    let start = Instant::now();
    let decoded = decompress(width, height, &rle[4..]);
    println!(
        "decompressed {width}×{height} in {:.3} s",
        start.elapsed().as_secs_f64()
    );
    println!("round trip equal: {}", decoded == image);
    decoded.write(page.with_extension("decoded.bmp"))?;

    /// The top-left quarter of a page, shrunk to 450 pixels wide.
    fn corner(im: &Bitmap) -> Bitmap {
        let (w, h) = (im.width() / 4, im.height() / 4);
        let pixels = (0..h).flat_map(|y| im.row(y)[..w].to_vec()).collect();
        Bitmap::from_pixels(w, h, pixels).thumbnail(450)
    }
    // The input and the decoded image.
    kettle_display::display(kettle_display::png(&corner(&image).to_png()));
    kettle_display::display(kettle_display::png(&corner(&decoded).to_png()));
    for path in samples.paths() {
        let rle = std::fs::read(path.with_extension("rle"))?;
        let (w, h) = (
            u16::from_le_bytes([rle[0], rle[1]]),
            u16::from_le_bytes([rle[2], rle[3]]),
        );
        let equal = decompress(w as usize, h as usize, &rle[4..]) == Bitmap::read(path)?;
        println!(
            "{}: round trip equal: {equal}",
            path.file_name().unwrap().to_string_lossy()
        );
    }
    // [end]
    assert_eq!(decoded, image);
    Ok(())
}
