//! A minimal PNG encoder for [`Bitmap`]s, so notebooks can show an image inline
//! (`kettle_display::png(&image.to_png())`) without an image crate.
//!
//! One IHDR (1-bit greyscale), one IDAT and an IEND, per the PNG spec
//! (<https://www.w3.org/TR/png-3/>). The zlib stream uses *stored* (uncompressed) deflate
//! blocks, which every decoder accepts: a thumbnail of a few hundred pixels is a few kB anyway,
//! and a real deflate would be most of the code.

use crate::Bitmap;

impl Bitmap {
    /// The image as a PNG file (1-bit greyscale: bit 1 is white, as in the bitmap).
    pub fn to_png(&self) -> Vec<u8> {
        // Scanlines: a filter-type byte (0, none) and the packed pixels.
        let stride = self.width().div_ceil(8);
        let mut raw = Vec::with_capacity((stride + 1) * self.height());
        let mut row = vec![0u8; stride];
        for y in 0..self.height() {
            crate::bmp::pack_row(self.row(y), &mut row);
            raw.push(0);
            raw.extend_from_slice(&row);
        }

        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = Vec::with_capacity(13);
        ihdr.extend_from_slice(&(self.width() as u32).to_be_bytes());
        ihdr.extend_from_slice(&(self.height() as u32).to_be_bytes());
        // bit depth 1, colour type 0 (greyscale), deflate, filter method 0, no interlace
        ihdr.extend_from_slice(&[1, 0, 0, 0, 0]);
        chunk(&mut png, b"IHDR", &ihdr);
        chunk(&mut png, b"IDAT", &zlib_stored(&raw));
        chunk(&mut png, b"IEND", &[]);
        png
    }
}

/// Appends one PNG chunk: length, type, data, CRC-32 of type and data.
fn chunk(png: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    png.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = png.len();
    png.extend_from_slice(kind);
    png.extend_from_slice(data);
    let crc = crc32(&png[start..]);
    png.extend_from_slice(&crc.to_be_bytes());
}

/// A zlib stream (RFC 1950) of stored deflate blocks (RFC 1951 §3.2.4).
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    const MAX_BLOCK: usize = 65_535;
    let mut out = Vec::with_capacity(data.len() + data.len() / MAX_BLOCK * 5 + 11);
    out.extend_from_slice(&[0x78, 0x01]); // deflate, 32 K window, no dictionary; (0x7801 % 31 == 0)
    let blocks: Vec<&[u8]> = if data.is_empty() {
        vec![&[]]
    } else {
        data.chunks(MAX_BLOCK).collect()
    };
    for (i, block) in blocks.iter().enumerate() {
        let last = i + 1 == blocks.len();
        out.push(last as u8); // BFINAL, BTYPE = 00 (stored)
        let len = block.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    out.extend_from_slice(&adler32(data).to_be_bytes());
    out
}

/// CRC-32 (ISO-HDLC, the one PNG and zip use), bit by bit: thumbnails are small.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= byte as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Adler-32, zlib's checksum of the uncompressed data.
fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + byte as u32) % 65_521;
        b = (b + a) % 65_521;
    }
    (b << 16) | a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_match_known_vectors() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b"IEND"), 0xAE42_6082);
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
    }

    #[test]
    fn png_layout_is_well_formed() {
        let mut image = Bitmap::new(10, 3);
        image.set(0, 0, false);
        let png = image.to_png();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(&png[12..16], b"IHDR");
        assert_eq!(&png[16..20], &10u32.to_be_bytes());
        assert_eq!(&png[png.len() - 12..], b"\0\0\0\0IEND\xaeB`\x82");
        // IDAT holds 3 scanlines of 1 + 2 bytes; first pixel black, rest white.
        let idat_len = u32::from_be_bytes(png[33..37].try_into().unwrap()) as usize;
        assert_eq!(&png[37..41], b"IDAT");
        let zlib = &png[41..41 + idat_len];
        assert_eq!(&zlib[..3], &[0x78, 0x01, 1]);
        assert_eq!(&zlib[7..10], &[0, 0b0111_1111, 0b1100_0000]);
    }

    #[test]
    fn large_data_is_split_into_stored_blocks() {
        let data = vec![7u8; 150_000];
        let z = zlib_stored(&data);
        assert_eq!(z.len(), 2 + 3 * 5 + 150_000 + 4);
        assert_eq!(z[2], 0); // first block is not final
        assert_eq!(z[2 + 5 + 65_535], 0);
        assert_eq!(z[2 + 2 * (5 + 65_535)], 1); // third is
    }
}
