//! `kettle-worker rle`: the case study's compression (C20–C22) in a child process.
//!
//! - `rle rows <width>`: packed rows on stdin (`width.div_ceil(8)` bytes each, as
//!   [`crate::rle::pack_rows`] writes them), their RLE bytes on stdout. The per-row process
//!   flavour: the parent hands each child a block of rows and concatenates the answers in order.
//! - `rle file <in.bmp> <out.rle> [seq|threads|processes]`: compresses a whole image file, rows
//!   split over this process's threads or over `rle rows` grandchildren (the book's "pools
//!   inside pools"); prints `<out.rle> <bytes>`. The per-image process flavour: only file names
//!   cross the process boundary.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;

use super::{WorkerError, parse_arg};
use crate::Bitmap;
use crate::rle::{compress_packed_rows, compress_row, header, pack_rows};

/// Arguments and behaviour, for `kettle-worker` without arguments.
pub const USAGE: &str = "rows <width> | file <in.bmp> <out.rle> [seq|threads|processes]";

/// Entry point.
pub fn run(args: &[String]) -> Result<(), WorkerError> {
    match args.first().map(String::as_str) {
        Some("rows") => {
            let width: usize = parse_arg(args.get(1), "width")?;
            let mut packed = Vec::new();
            std::io::stdin().lock().read_to_end(&mut packed)?;
            let mut out = std::io::stdout().lock();
            out.write_all(&compress_packed_rows(&packed, width))?;
            out.flush()?;
            Ok(())
        }
        Some("file") => {
            let (Some(input), Some(output)) = (args.get(1), args.get(2)) else {
                return Err(WorkerError::Usage(format!("rle {USAGE}")));
            };
            let rows = match args.get(3).map(String::as_str).unwrap_or("seq") {
                "seq" => Rows::Sequential,
                "threads" => Rows::Threads,
                "processes" => Rows::Processes,
                other => return Err(WorkerError::Usage(format!("unknown row strategy `{other}`"))),
            };
            let image = Bitmap::read(input)?;
            let rle = compress_file_rows(&image, rows)?;
            std::fs::write(output, &rle)?;
            println!("{} {}", Path::new(output).display(), rle.len());
            Ok(())
        }
        _ => Err(WorkerError::Usage(format!("rle {USAGE}"))),
    }
}

/// How `rle file` spreads an image's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rows {
    Sequential,
    Threads,
    Processes,
}

/// The `.rle` bytes of `image`, its rows split as `rows` says over as many workers as cores.
fn compress_file_rows(image: &Bitmap, rows: Rows) -> std::io::Result<Vec<u8>> {
    let workers = thread::available_parallelism().map_or(2, |n| n.get());
    // Contiguous blocks of rows, one per worker: the answers concatenate in row order.
    let blocks: Vec<(usize, usize)> = (0..workers)
        .map(|i| (image.height() * i / workers, image.height() * (i + 1) / workers))
        .collect();
    let mut out = header(image.width(), image.height());
    match rows {
        Rows::Sequential => {
            for y in 0..image.height() {
                compress_row(image.row(y), &mut out);
            }
        }
        Rows::Threads => {
            let parts: Vec<Vec<u8>> = thread::scope(|s| {
                let handles: Vec<_> = blocks
                    .iter()
                    .map(|&(a, b)| {
                        s.spawn(move || {
                            let mut part = Vec::new();
                            for y in a..b {
                                compress_row(image.row(y), &mut part);
                            }
                            part
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            out.extend(parts.concat());
        }
        Rows::Processes => {
            let exe = std::env::current_exe()?;
            let mut children = Vec::new();
            for &(a, b) in &blocks {
                let mut child = Command::new(&exe)
                    .args(["rle", "rows", &image.width().to_string()])
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .spawn()?;
                let packed = pack_rows((a..b).map(|y| image.row(y)), image.width());
                let mut stdin = child.stdin.take().expect("piped");
                // Write on a thread: a child blocked on a full stdout pipe would otherwise
                // never finish reading its stdin.
                let writer = thread::spawn(move || stdin.write_all(&packed));
                children.push((child, writer));
            }
            for (child, writer) in children {
                let output = child.wait_with_output()?;
                writer.join().expect("writer thread")?;
                if !output.status.success() {
                    return Err(std::io::Error::other(format!("rle rows: {}", output.status)));
                }
                out.extend(output.stdout);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::images::blocky_text;

    #[test]
    fn threads_and_sequential_agree_with_the_reference() {
        let image = blocky_text(500, 301, 4);
        let expected = crate::rle::compress_image(&image);
        assert_eq!(compress_file_rows(&image, Rows::Sequential).unwrap(), expected);
        assert_eq!(compress_file_rows(&image, Rows::Threads).unwrap(), expected);
    }
}
