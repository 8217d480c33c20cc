//! A tiny seeded random generator (SplitMix64) for reproducible jitter.
//!
//! The stand-ins need "random but the same every run" numbers, nothing cryptographic, and the
//! crate takes no dependencies, so this is the 10-line SplitMix64 (Steele, Lea, Flood 2014).

/// Mixes `x` into a well-distributed 64-bit value (the SplitMix64 output function).
pub(crate) fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform value in `[0, 1)` derived from `seed` and a per-draw `index`.
///
/// Keyed by index rather than by a mutable state, so concurrent connections can each draw their
/// own value without sharing a lock: request *n* always gets the same jitter for a given seed.
pub(crate) fn unit(seed: u64, index: u64) -> f64 {
    let bits = splitmix64(seed ^ splitmix64(index));
    // The top 53 bits fill an f64 mantissa exactly.
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_is_in_range_and_reproducible() {
        for i in 0..1000 {
            let u = unit(7, i);
            assert!((0.0..1.0).contains(&u), "got {u}");
            assert_eq!(u, unit(7, i));
        }
        assert_ne!(unit(7, 1), unit(8, 1));
    }
}
