//! Conversions between Jupyter's cursor positions (Unicode code points) and the byte offsets
//! evcxr and rust-analyzer use.
//!
//! Messaging spec 5.2+: `cursor_pos` counts Unicode code points, not UTF-16 units or bytes.

/// Byte offset of the `cp`-th code point of `s`, clamped to the end of `s`.
pub fn byte_offset(s: &str, cp: usize) -> usize {
    s.char_indices().nth(cp).map_or(s.len(), |(byte, _)| byte)
}

/// Number of code points before byte offset `byte` of `s`. An offset inside a character or
/// past the end is clamped to the nearest character boundary before it.
pub fn code_point_offset(s: &str, byte: usize) -> usize {
    let mut byte = byte.min(s.len());
    while !s.is_char_boundary(byte) {
        byte -= 1;
    }
    s[..byte].chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_offsets_are_identical() {
        let s = "let x = 1;";
        for i in 0..=s.len() {
            assert_eq!(byte_offset(s, i), i);
            assert_eq!(code_point_offset(s, i), i);
        }
    }

    #[test]
    fn non_ascii_text_before_the_cursor() {
        // "é" is 2 bytes, "🫖" is 4 bytes.
        let s = "let s = \"héllo🫖\"; s";
        let cp_of_final_s = s.chars().count() - 1;
        let byte_of_final_s = s.len() - 1;
        assert_eq!(byte_offset(s, cp_of_final_s), byte_of_final_s);
        assert_eq!(code_point_offset(s, byte_of_final_s), cp_of_final_s);
        // Round trip for every code point.
        for cp in 0..=s.chars().count() {
            assert_eq!(code_point_offset(s, byte_offset(s, cp)), cp);
        }
    }

    #[test]
    fn out_of_range_and_mid_character_offsets_clamp() {
        let s = "aé";
        assert_eq!(byte_offset(s, 99), s.len());
        assert_eq!(code_point_offset(s, 99), 2);
        // Byte 2 is inside "é" (bytes 1..3): clamps to the boundary before it.
        assert_eq!(code_point_offset(s, 2), 1);
    }
}
