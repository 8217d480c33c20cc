//! The sort service's data (C15–C16): seeded random lists, the JSON they travel as, and gnome
//! sort, for the notebook's cells and the worker's `sort` subcommand (the process flavour).
//!
//! The book sends `json.dumps(list)`: `[3, 1, 2]`, a comma and a space between numbers. The
//! sorted list then has exactly as many bytes as the unsorted one, which the book's client
//! relies on (it reads `len(data)` bytes back). [`to_json`] writes the same spelling.

use crate::rng::splitmix64;

/// `n` integers in `0..below`, the same for the same `seed` (the book: `randrange(10000)`).
pub fn random_list(seed: u64, n: usize, below: u64) -> Vec<u64> {
    (0..n as u64)
        .map(|i| splitmix64(seed ^ splitmix64(i)) % below.max(1))
        .collect()
}

/// The list as JSON, spelled like Python's `json.dumps`: `[1, 2, 3]`.
pub fn to_json(list: &[u64]) -> String {
    let mut out = String::with_capacity(list.len() * 6 + 2);
    out.push('[');
    for (i, n) in list.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&n.to_string());
    }
    out.push(']');
    out
}

/// Parses a JSON array of non-negative integers (whitespace allowed anywhere between tokens).
pub fn parse_json_list(bytes: &[u8]) -> Result<Vec<u64>, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
    let inner = text
        .trim()
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .ok_or("expected a JSON array: [1, 2, 3]")?;
    if inner.trim().is_empty() {
        return Ok(Vec::new());
    }
    inner
        .split(',')
        .map(|n| {
            n.trim()
                .parse::<u64>()
                .map_err(|e| format!("{:?} is not a non-negative integer: {e}", n.trim()))
        })
        .collect()
}

/// Gnome sort, as in the book: walk forward while the pair is ordered, otherwise swap it and
/// step back. Quadratic on purpose: the service must have something slow to do.
pub fn gnome_sort(list: &mut [u64]) {
    let mut i = 0;
    while i < list.len() {
        if i == 0 || list[i - 1] <= list[i] {
            i += 1;
        } else {
            list.swap(i - 1, i);
            i -= 1;
        }
    }
}

/// The book's `sort_in_process`: JSON in, gnome-sorted JSON out.
pub fn sort_json(data: &[u8]) -> Result<Vec<u8>, String> {
    let mut list = parse_json_list(data)?;
    gnome_sort(&mut list);
    Ok(to_json(&list).into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gnome_sort_sorts() {
        for seed in 0..20 {
            let mut list = random_list(seed, seed as usize * 7, 50);
            let mut expected = list.clone();
            expected.sort_unstable();
            gnome_sort(&mut list);
            assert_eq!(list, expected);
        }
    }

    #[test]
    fn json_round_trips_in_pythons_spelling() {
        assert_eq!(to_json(&[3, 10, 0]), "[3, 10, 0]");
        assert_eq!(to_json(&[]), "[]");
        assert_eq!(parse_json_list(b" [ 3,10 ,0 ] ").unwrap(), [3, 10, 0]);
        assert_eq!(parse_json_list(b"[]").unwrap(), Vec::<u64>::new());
        assert!(parse_json_list(b"[1, -2]").is_err());
        assert!(parse_json_list(b"{}").is_err());
    }

    #[test]
    fn sorted_json_has_the_same_length() {
        let list = random_list(1, 10_000, 10_000);
        let json = to_json(&list);
        let sorted = sort_json(json.as_bytes()).unwrap();
        assert_eq!(sorted.len(), json.len());
        assert!(list.iter().all(|&n| n < 10_000));
        assert_eq!(random_list(1, 10_000, 10_000), list);
    }
}
