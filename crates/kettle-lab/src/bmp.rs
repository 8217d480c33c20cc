//! 1-bit images ([`Bitmap`]) and the 1-bpp BMP file format they are stored in (C17–C23).
//!
//! The chapter's case study loads BMP files with Pillow and converts them to mode '1'; here a
//! hand-written codec reads and writes the one BMP flavour the course needs: a 14-byte file
//! header, a 40-byte `BITMAPINFOHEADER`, a 2-entry palette, rows bottom-up, each padded to a
//! multiple of 4 bytes, most significant bit = leftmost pixel. Reference:
//! <https://learn.microsoft.com/en-us/windows/win32/gdi/bitmap-storage>.
//!
//! Pixels follow Pillow's mode '1' as the book's `bitarray` saw it: `true` (bit 1) is white,
//! `false` (bit 0) is black.

use std::io;
use std::path::Path;

/// A black-and-white image, row-major from the top-left pixel, `true` = white.
#[derive(Clone, PartialEq, Eq)]
pub struct Bitmap {
    width: usize,
    height: usize,
    pixels: Vec<bool>,
}

impl std::fmt::Debug for Bitmap {
    // 40 million booleans are no use in an assertion message.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let white = self.pixels.iter().filter(|&&p| p).count();
        write!(
            f,
            "Bitmap({}×{}, {white} white pixels)",
            self.width, self.height
        )
    }
}

/// Bytes in the file header plus the info header plus the 2-colour palette.
const PIXEL_DATA_OFFSET: usize = 14 + 40 + 8;

impl Bitmap {
    /// An all-white image.
    pub fn new(width: usize, height: usize) -> Self {
        Bitmap::from_pixels(width, height, vec![true; width * height])
    }

    /// An image from its pixels, row-major, `true` = white.
    ///
    /// # Panics
    /// If `pixels.len() != width * height`.
    pub fn from_pixels(width: usize, height: usize, pixels: Vec<bool>) -> Self {
        assert_eq!(
            pixels.len(),
            width * height,
            "{width}×{height} pixels expected"
        );
        Bitmap {
            width,
            height,
            pixels,
        }
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// All pixels, row-major (the book's `bitarray` of the whole image).
    pub fn pixels(&self) -> &[bool] {
        &self.pixels
    }

    /// Consumes the image, returning its pixels.
    pub fn into_pixels(self) -> Vec<bool> {
        self.pixels
    }

    /// Row `y`, from the left.
    pub fn row(&self, y: usize) -> &[bool] {
        &self.pixels[y * self.width..(y + 1) * self.width]
    }

    /// The pixel at column `x`, row `y`.
    pub fn get(&self, x: usize, y: usize) -> bool {
        self.pixels[y * self.width + x]
    }

    /// Sets the pixel at column `x`, row `y` (`true` = white).
    pub fn set(&mut self, x: usize, y: usize, white: bool) {
        self.pixels[y * self.width + x] = white;
    }

    /// Paints the rectangle `[x0, x1) × [y0, y1)`, clipped to the image.
    pub fn fill(&mut self, (x0, y0): (usize, usize), (x1, y1): (usize, usize), white: bool) {
        let (x1, y1) = (x1.min(self.width), y1.min(self.height));
        for y in y0.min(y1)..y1 {
            self.pixels[y * self.width + x0.min(x1)..y * self.width + x1].fill(white);
        }
    }

    /// The image as a 1-bpp BMP file (palette: black, white).
    pub fn to_bmp(&self) -> Vec<u8> {
        let stride = bmp_stride(self.width);
        let size = PIXEL_DATA_OFFSET + stride * self.height;
        let mut out = Vec::with_capacity(size);
        // BITMAPFILEHEADER
        out.extend_from_slice(b"BM");
        out.extend_from_slice(&(size as u32).to_le_bytes());
        out.extend_from_slice(&[0; 4]); // reserved
        out.extend_from_slice(&(PIXEL_DATA_OFFSET as u32).to_le_bytes());
        // BITMAPINFOHEADER
        out.extend_from_slice(&40u32.to_le_bytes());
        out.extend_from_slice(&(self.width as i32).to_le_bytes());
        out.extend_from_slice(&(self.height as i32).to_le_bytes()); // positive: bottom-up
        out.extend_from_slice(&1u16.to_le_bytes()); // planes
        out.extend_from_slice(&1u16.to_le_bytes()); // bits per pixel
        out.extend_from_slice(&0u32.to_le_bytes()); // BI_RGB, no compression
        out.extend_from_slice(&((stride * self.height) as u32).to_le_bytes());
        out.extend_from_slice(&2835i32.to_le_bytes()); // 72 dpi, as Pillow writes
        out.extend_from_slice(&2835i32.to_le_bytes());
        out.extend_from_slice(&2u32.to_le_bytes()); // colours used
        out.extend_from_slice(&2u32.to_le_bytes()); // colours important
        // Palette, B G R 0: index 0 black, index 1 white, so a pixel's bit is its value.
        out.extend_from_slice(&[0, 0, 0, 0, 255, 255, 255, 0]);
        let mut row = vec![0u8; stride];
        for y in (0..self.height).rev() {
            pack_row(self.row(y), &mut row);
            out.extend_from_slice(&row);
        }
        out
    }

    /// Parses a 1-bpp BMP (bottom-up or top-down, either palette order).
    pub fn from_bmp(bytes: &[u8]) -> io::Result<Bitmap> {
        let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("BMP: {what}"));
        if bytes.len() < PIXEL_DATA_OFFSET || &bytes[..2] != b"BM" {
            return Err(bad("not a BMP file"));
        }
        let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().unwrap());
        let u16_at = |i: usize| u16::from_le_bytes(bytes[i..i + 2].try_into().unwrap());
        let data_offset = u32_at(10) as usize;
        let header_size = u32_at(14) as usize;
        let width = u32_at(18) as i32;
        let raw_height = u32_at(22) as i32;
        if u16_at(28) != 1 {
            return Err(bad("only 1 bit per pixel is supported"));
        }
        if u32_at(30) != 0 {
            return Err(bad("compressed BMPs are not supported"));
        }
        if width <= 0 || raw_height == 0 {
            return Err(bad("empty image"));
        }
        let (width, height) = (width as usize, raw_height.unsigned_abs() as usize);
        // The palette says which index is the lighter colour; Pillow writes black first, but
        // other tools do not have to.
        let palette = 14 + header_size;
        let brightness = |i: usize| {
            let p = &bytes[palette + 4 * i..palette + 4 * i + 3];
            p.iter().map(|&c| c as u32).sum::<u32>()
        };
        let one_is_white = brightness(1) >= brightness(0);
        let stride = bmp_stride(width);
        if bytes.len() < data_offset + stride * height {
            return Err(bad("pixel data is truncated"));
        }
        let mut pixels = vec![false; width * height];
        for (i, packed) in bytes[data_offset..].chunks(stride).take(height).enumerate() {
            let y = if raw_height > 0 { height - 1 - i } else { i };
            let row = &mut pixels[y * width..(y + 1) * width];
            // A byte at a time: 8 pixels per step, flipped once if the palette is inverted.
            let flip = if one_is_white { 0 } else { 0xFF };
            for (eight, &byte) in row.chunks_mut(8).zip(packed) {
                let byte = byte ^ flip;
                for (i, px) in eight.iter_mut().enumerate() {
                    *px = byte & (0x80 >> i) != 0;
                }
            }
        }
        Ok(Bitmap::from_pixels(width, height, pixels))
    }

    /// Reads a BMP file.
    pub fn read(path: impl AsRef<Path>) -> io::Result<Bitmap> {
        Bitmap::from_bmp(&std::fs::read(path)?)
    }

    /// Writes the image as a BMP file.
    pub fn write(&self, path: impl AsRef<Path>) -> io::Result<()> {
        std::fs::write(path, self.to_bmp())
    }

    /// A smaller copy, at most `max_width` wide, for showing inline. A block of the source
    /// becomes black if any of its pixels is black, so thin black lines survive the shrinking.
    pub fn thumbnail(&self, max_width: usize) -> Bitmap {
        let step = self.width.div_ceil(max_width.max(1)).max(1);
        let (w, h) = (self.width.div_ceil(step), self.height.div_ceil(step));
        let mut out = Bitmap::new(w, h);
        for y in 0..self.height {
            for (x, &px) in self.row(y).iter().enumerate() {
                if !px {
                    out.set(x / step, y / step, false);
                }
            }
        }
        out
    }
}

/// Bytes per BMP row: one bit per pixel, padded to a multiple of 4 bytes.
fn bmp_stride(width: usize) -> usize {
    width.div_ceil(32) * 4
}

/// Packs pixels into bytes, most significant bit first; `out` is zeroed first.
pub(crate) fn pack_row(pixels: &[bool], out: &mut [u8]) {
    out.fill(0);
    for (x, &px) in pixels.iter().enumerate() {
        out[x / 8] |= (px as u8) << (7 - x % 8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(width: usize, height: usize) -> Bitmap {
        let pixels = (0..width * height)
            .map(|i| (i * 7 + i / 3) % 5 < 2)
            .collect();
        Bitmap::from_pixels(width, height, pixels)
    }

    #[test]
    fn bmp_round_trips_for_awkward_widths() {
        for (w, h) in [
            (1, 1),
            (7, 3),
            (31, 2),
            (32, 5),
            (33, 4),
            (127, 3),
            (200, 9),
        ] {
            let image = sample(w, h);
            let bytes = image.to_bmp();
            assert_eq!(bytes.len(), PIXEL_DATA_OFFSET + bmp_stride(w) * h);
            assert_eq!(Bitmap::from_bmp(&bytes).unwrap(), image, "{w}×{h}");
        }
    }

    #[test]
    fn file_size_matches_pillows_for_the_big_page() {
        // The Python baseline's 7200×5600 BMP was 5,040,062 bytes.
        assert_eq!(PIXEL_DATA_OFFSET + bmp_stride(7200) * 5600, 5_040_062);
    }

    #[test]
    fn top_down_and_inverted_palettes_are_understood() {
        let image = sample(9, 4);
        let mut bytes = image.to_bmp();
        // Swap the palette (white first) and invert every data bit: same picture.
        bytes[54..62].copy_from_slice(&[255, 255, 255, 0, 0, 0, 0, 0]);
        for b in &mut bytes[PIXEL_DATA_OFFSET..] {
            *b = !*b;
        }
        assert_eq!(Bitmap::from_bmp(&bytes).unwrap(), image);
        // Top-down: negative height, rows in reading order.
        let mut top_down = image.to_bmp();
        top_down[22..26].copy_from_slice(&(-4i32).to_le_bytes());
        let rows: Vec<Vec<u8>> = top_down[PIXEL_DATA_OFFSET..]
            .chunks(4)
            .rev()
            .map(<[u8]>::to_vec)
            .collect();
        top_down.truncate(PIXEL_DATA_OFFSET);
        top_down.extend(rows.concat());
        assert_eq!(Bitmap::from_bmp(&top_down).unwrap(), image);
    }

    #[test]
    fn rejects_what_it_cannot_read() {
        assert!(Bitmap::from_bmp(b"GIF89a").is_err());
        let mut bytes = sample(8, 2).to_bmp();
        bytes[28] = 24; // 24 bits per pixel
        assert!(Bitmap::from_bmp(&bytes).is_err());
        let bytes = sample(8, 2).to_bmp();
        assert!(Bitmap::from_bmp(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn thumbnails_keep_thin_black_lines() {
        let mut image = Bitmap::new(100, 50);
        image.fill((0, 20), (100, 21), false);
        let thumb = image.thumbnail(10);
        assert_eq!((thumb.width(), thumb.height()), (10, 5));
        assert!((0..10).all(|x| !thumb.get(x, 2)));
        assert!((0..10).all(|x| thumb.get(x, 0)));
    }
}
