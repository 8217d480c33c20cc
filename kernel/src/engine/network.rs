//! Cargo works from this machine's cache first, and goes online only for what is not there.
//!
//! evcxr runs cargo online by default. Every `:dep` first resolves the crate in a throwaway
//! manifest that has no lock file, so cargo asks the crates.io index about the crate and each of
//! its dependencies even when all of them are in the local cache (`kettle warm` puts the
//! course's there). Without a network such a cell fails ("failed to get `rayon`"), although
//! nothing needs downloading; with one, it waits for the round trips. So the engine switches
//! cargo offline at start ([`commands`]), and when a cell that adds dependencies fails
//! because cargo would need the network, it says so and runs that cell once more online: none of
//! the cell ran, since it stopped while resolving or building dependencies. Once a learner
//! types `:offline` themselves, their setting stands and the engine stops switching.

/// evcxr's command, as a learner would type it.
pub const COMMAND: &str = ":offline";

/// The evcxr commands that put cargo offline or online. `:offline` makes evcxr pass `--offline`
/// and write `net.offline` into the crate's `.cargo/config.toml`, which rust-analyzer's
/// `cargo metadata` reads; but evcxr writes that file only when it compiles, and `:dep`
/// resolves the crate before that, under the file of the previous mode. The environment wins
/// over the file, so the same setting also goes into the environment of evcxr's cargo runs.
pub fn commands(offline: bool) -> String {
    format!(
        "{COMMAND} {}\n:build_env CARGO_NET_OFFLINE={offline}",
        if offline { 1 } else { 0 }
    )
}

/// The mode a cell's own `:offline` lines leave evcxr in (evcxr: only `1` means offline), or
/// `None` if it has none.
pub fn chosen_by(code: &str) -> Option<bool> {
    code.lines().rev().find_map(|line| {
        let mut words = line.split_whitespace();
        (words.next() == Some(COMMAND)).then(|| words.next() == Some("1"))
    })
}

/// Shown on the cell's stderr before the online attempt.
pub const GOING_ONLINE: &str =
    "kettle: this cell needs crates that are not in this machine's cargo cache; asking crates.io\n";

/// Whether cargo's error (as evcxr relays it) says the network would have been needed. Every
/// such cargo error names the flag: "you're using offline mode (--offline)", "but --offline was
/// specified", "you are in the offline mode (--offline)".
pub fn needs_network(error: &str) -> bool {
    error.contains("--offline")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cargo_errors_that_want_the_network_are_told_from_other_errors() {
        // cargo 1.95, `cargo metadata --offline` with a crate missing from the cache.
        let missing = "error: no matching package named `bytesize` found\n\
            location searched: crates.io index\n\
            As a reminder, you're using offline mode (--offline) which can sometimes cause \
            surprising resolution failures";
        assert!(needs_network(missing));
        let download = "error: failed to download `itoa v1.0.99`\n\nCaused by:\n  \
            attempting to make an HTTP request, but --offline was specified";
        assert!(needs_network(download));
        // Online and still failing: going online again would not help.
        let online = "error: failed to get `rayon`\n\nCaused by:\n  download of config.json \
            failed";
        assert!(!needs_network(online));
        assert!(!needs_network("error[E0308]: mismatched types"));
    }

    #[test]
    fn the_last_offline_line_of_a_cell_decides() {
        assert_eq!(chosen_by("let x = 1;"), None);
        assert_eq!(chosen_by(":offline 1\nx"), Some(true));
        assert_eq!(chosen_by(":offline 1\n:offline 0"), Some(false));
        // As in evcxr: anything but `1`, or nothing, is online.
        assert_eq!(chosen_by(" :offline"), Some(false));
        assert_eq!(chosen_by(":offline true"), Some(false));
        assert_eq!(
            commands(true),
            ":offline 1\n:build_env CARGO_NET_OFFLINE=true"
        );
    }
}
