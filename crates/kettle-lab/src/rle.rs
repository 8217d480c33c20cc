//! The case study's run-length encoding (C17–C23), as a reference implementation.
//!
//! The notebook writes `compress_chunk`, `compress_row` and `decompress` itself, as the book
//! does; this module is the same format for the places a notebook cell cannot reach: the worker
//! executable's `rle` subcommand (the process flavour) and the tests, which check that the
//! notebook's output is byte-identical to it.
//!
//! Format (the book's): a header of width and height as 2-byte little-endian integers, then
//! each row split into chunks of at most 127 pixels, each run inside a chunk one byte
//! `(bit << 7) | run_length` with `run_length` in 1..=127. Rows and chunks never share a byte,
//! so the data can be decoded as one stream of runs, wrapping at the image width.

use std::io;

use crate::Bitmap;

/// Pixels per chunk: a run length must fit in the 7 low bits of a byte.
pub const CHUNK_BITS: usize = 127;

/// Appends the runs of one chunk of at most [`CHUNK_BITS`] pixels to `out`.
pub fn compress_chunk(chunk: &[bool], out: &mut Vec<u8>) {
    let Some((&first, rest)) = chunk.split_first() else {
        return;
    };
    debug_assert!(chunk.len() <= CHUNK_BITS);
    let (mut last, mut count) = (first, 1u8);
    for &bit in rest {
        if bit != last {
            out.push(count | (last as u8) << 7);
            (last, count) = (bit, 0);
        }
        count += 1;
    }
    out.push(count | (last as u8) << 7);
}

/// Appends the runs of one row to `out`.
pub fn compress_row(row: &[bool], out: &mut Vec<u8>) {
    for chunk in row.chunks(CHUNK_BITS) {
        compress_chunk(chunk, out);
    }
}

/// The whole `.rle` file for an image: header, then every row in order.
pub fn compress_image(image: &Bitmap) -> Vec<u8> {
    let mut out = header(image.width(), image.height());
    for y in 0..image.height() {
        compress_row(image.row(y), &mut out);
    }
    out
}

/// The 4-byte header: width and height as little-endian `u16`.
///
/// # Panics
/// If a side is larger than 65,535 pixels, which the format cannot say.
pub fn header(width: usize, height: usize) -> Vec<u8> {
    let side = |n: usize| u16::try_from(n).expect("the RLE header holds sides up to 65,535");
    [side(width).to_le_bytes(), side(height).to_le_bytes()].concat()
}

/// Decodes an `.rle` file (header included).
pub fn decompress(rle: &[u8]) -> io::Result<Bitmap> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("RLE: {what}"));
    if rle.len() < 4 {
        return Err(bad("no header"));
    }
    let width = u16::from_le_bytes([rle[0], rle[1]]) as usize;
    let height = u16::from_le_bytes([rle[2], rle[3]]) as usize;
    let mut pixels = Vec::with_capacity(width * height);
    for &byte in &rle[4..] {
        let run = (byte & 0x7F) as usize;
        if run == 0 || pixels.len() + run > width * height {
            return Err(bad("a run is empty or runs past the image"));
        }
        pixels.extend(std::iter::repeat_n(byte >> 7 == 1, run));
    }
    if pixels.len() != width * height {
        return Err(bad("the data ends before the image does"));
    }
    Ok(Bitmap::from_pixels(width, height, pixels))
}

/// Packs rows for a pipe: each row `width.div_ceil(8)` bytes, most significant bit first.
/// That is 8× smaller than a byte per pixel, the reason the book used `bitarray`.
pub fn pack_rows<'a>(rows: impl IntoIterator<Item = &'a [bool]>, width: usize) -> Vec<u8> {
    let stride = width.div_ceil(8);
    let mut out = Vec::new();
    let mut packed = vec![0; stride];
    for row in rows {
        crate::bmp::pack_row(row, &mut packed);
        out.extend_from_slice(&packed);
    }
    out
}

/// Compresses rows packed by [`pack_rows`] (what the worker's `rle rows` does with its stdin).
pub fn compress_packed_rows(packed: &[u8], width: usize) -> Vec<u8> {
    let stride = width.div_ceil(8);
    let mut row = vec![false; width];
    let mut out = Vec::with_capacity(packed.len());
    for bytes in packed.chunks_exact(stride.max(1)) {
        for (x, px) in row.iter_mut().enumerate() {
            *px = bytes[x / 8] >> (7 - x % 8) & 1 == 1;
        }
        compress_row(&row, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::images;

    #[test]
    fn chunks_encode_runs_with_the_colour_in_the_top_bit() {
        let mut out = Vec::new();
        compress_chunk(&[true, true, false, true, true, true], &mut out);
        assert_eq!(out, [0x82, 0x01, 0x83]);
        // A row of 300 black pixels: chunks of 127 + 127 + 46.
        out.clear();
        compress_row(&[false; 300], &mut out);
        assert_eq!(out, [127, 127, 46]);
    }

    #[test]
    fn images_round_trip() {
        for image in [
            images::stripes(700, 5),
            images::checkerboard(300, 64, 16),
            images::blocky_text(400, 300, 2),
            images::noise(129, 7, 3),
        ] {
            let rle = compress_image(&image);
            assert_eq!(decompress(&rle).unwrap(), image);
        }
    }

    #[test]
    fn noise_inflates_and_text_shrinks() {
        let noise = images::noise(640, 480, 1);
        assert!(compress_image(&noise).len() > noise.pixels().len() / 8);
        let text = images::blocky_text(640, 480, 1);
        assert!(compress_image(&text).len() < text.pixels().len() / 8 / 2);
    }

    #[test]
    fn packed_rows_compress_like_rows() {
        let image = images::blocky_text(333, 40, 5);
        let packed = pack_rows((0..40).map(|y| image.row(y)), 333);
        let mut expected = header(333, 40);
        expected.extend(compress_packed_rows(&packed, 333));
        assert_eq!(expected, compress_image(&image));
    }

    #[test]
    fn corrupt_data_is_an_error() {
        assert!(decompress(&[1, 0]).is_err());
        assert!(decompress(&[2, 0, 1, 0, 0x80]).is_err()); // empty run
        assert!(decompress(&[2, 0, 1, 0, 0x81]).is_err()); // one pixel short
        assert!(decompress(&[2, 0, 1, 0, 0x83]).is_err()); // one pixel too many
    }
}
