//! Cargo works from this machine's cache first, and goes online only for what is not there.
//!
//! evcxr runs cargo online by default. Every `:dep` first resolves the crate on its own (evcxr
//! writes a manifest with just that dependency into the crate directory and runs `cargo
//! metadata`), so cargo asks the crates.io index about the crate and each of its dependencies
//! even when all of them are in the local cache (`kettle warm` puts the course's there). Without
//! a network such a cell fails ("failed to get `rayon`"), although nothing needs downloading;
//! with one, it waits for the round trips. So the engine switches cargo offline at start
//! ([`commands`]), and when a cell that adds dependencies fails because cargo would need the
//! network ([`needs_network`]: cargo's own error, while resolving or building the dependencies,
//! so none of the cell's code ran), it says so and runs that cell once more online.
//!
//! Offline, cargo picks the newest version *in the cache* that fits: `:dep rand = "0.8"` gets
//! the cached 0.8.x, not a newer one from crates.io.
//!
//! A learner who chose otherwise keeps their choice: the engine stays out when the kernel's
//! environment sets `CARGO_NET_OFFLINE` or an `evcxr.toml` sets `offline_mode`
//! ([`chosen_elsewhere`]), and stops switching once a cell uses `:offline`.

use std::path::Path;

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

/// The mode a cell's own `:offline` commands leave evcxr in, or `None` if it has none: the
/// last one decides, and only an argument of exactly `1` means offline.
pub fn chosen_by(code: &str) -> Option<bool> {
    super::commands::of(code)
        .filter(|(name, _)| *name == COMMAND)
        .map(|(_, argument)| argument == Some("1"))
        .last()
}

/// Whether the learner chose cargo's network use before the kernel started: `CARGO_NET_OFFLINE`
/// in the environment (`environment_value`), or `offline_mode` in the `evcxr.toml` evcxr reads
/// (the one in `cwd`, else the one in `config_dir`).
pub fn chosen_elsewhere(
    environment_value: Option<&std::ffi::OsStr>,
    cwd: Option<&Path>,
    config_dir: Option<&Path>,
) -> bool {
    if environment_value.is_some() {
        return true;
    }
    let toml = [cwd, config_dir]
        .into_iter()
        .flatten()
        .map(|dir| dir.join("evcxr.toml"))
        .find(|path| path.exists());
    // evcxr reads `offline_mode` in its `[evcxr]` table.
    toml.and_then(|path| std::fs::read_to_string(path).ok())
        .and_then(|text| text.parse::<toml::Table>().ok())
        .and_then(|table| table.get("evcxr")?.get("offline_mode").cloned())
        .is_some()
}

/// Shown on the cell's stderr before the online attempt.
pub const GOING_ONLINE: &str =
    "kettle: this cell needs crates that are not in this machine's cargo cache; asking crates.io\n";

/// Whether a cell failed because cargo, offline, would have needed the network. Only cargo's
/// own errors count: evcxr relays those as a message (a failed build) or as errors without a
/// rustc code (a `:dep` that did not resolve). A cell whose code ran and died, or a rustc error
/// about the cell's code, is never run again. Every such cargo error names the flag: "you're
/// using offline mode (--offline)", "but --offline was specified", "you are in the offline mode
/// (--offline)".
pub fn needs_network(error: &evcxr::Error) -> bool {
    let names_the_flag = |text: &str| text.contains("--offline");
    match error {
        evcxr::Error::Message(message) => names_the_flag(message),
        evcxr::Error::CompilationErrors(errors) => errors
            .iter()
            .any(|e| e.code().is_none() && names_the_flag(&e.message())),
        evcxr::Error::SubprocessTerminated(_) | evcxr::Error::TypeRedefinedVariablesLost(_) => {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_cargos_own_errors_that_want_the_network_make_a_cell_run_again() {
        let message = |text: &str| evcxr::Error::Message(text.to_owned());
        // cargo 1.95: a build that would download; a resolution without the crate in the cache.
        assert!(needs_network(&message(
            "error: failed to download `itoa v1.0.99`\n\nCaused by:\n  attempting to make an \
             HTTP request, but --offline was specified"
        )));
        assert!(needs_network(&message(
            "error: no matching package named `bytesize` found\nAs a reminder, you're using \
             offline mode (--offline) which can sometimes cause surprising resolution failures"
        )));
        // Online and still failing: going online again would not help.
        assert!(!needs_network(&message(
            "error: failed to get `rayon`\n\nCaused by:\n  download of config.json failed"
        )));
        // The cell's code ran (and printed the words before it died): never again.
        assert!(!needs_network(&evcxr::Error::SubprocessTerminated(
            "--offline was specified".to_owned()
        )));
    }

    #[test]
    fn the_last_offline_command_decides() {
        assert_eq!(chosen_by("let x = 1;"), None);
        assert_eq!(chosen_by(":offline 1\nx"), Some(true));
        assert_eq!(chosen_by(":offline 1\n\n// note\n:offline 0"), Some(false));
        assert_eq!(chosen_by("  :dep rayon = \"1\"\n :offline 1"), Some(true));
        // As in evcxr: anything but exactly `1`, or nothing, is online.
        assert_eq!(chosen_by(":offline"), Some(false));
        assert_eq!(chosen_by(":offline 1 "), Some(false));
        assert_eq!(chosen_by(":offline true"), Some(false));
        // After the first line of Rust there are no commands.
        assert_eq!(chosen_by("let x = 1;\n:offline 1"), None);
        assert_eq!(
            commands(true),
            ":offline 1\n:build_env CARGO_NET_OFFLINE=true"
        );
    }

    #[test]
    fn a_choice_made_before_the_kernel_started_is_found() {
        let dir = std::env::temp_dir().join(format!("kettle-network-{}", std::process::id()));
        let (cwd, config) = (dir.join("notebooks"), dir.join("config"));
        std::fs::create_dir_all(&cwd).unwrap();
        std::fs::create_dir_all(&config).unwrap();
        let chosen = || chosen_elsewhere(None, Some(&cwd), Some(&config));
        assert!(!chosen());
        assert!(chosen_elsewhere(Some("false".as_ref()), Some(&cwd), None));
        std::fs::write(config.join("evcxr.toml"), "[evcxr]\noffline_mode = false\n").unwrap();
        assert!(chosen());
        // evcxr reads the one in the current directory first, and only that one.
        std::fs::write(cwd.join("evcxr.toml"), "[evcxr]\nopt_level = \"1\"\n").unwrap();
        assert!(!chosen());
        // Only evcxr's own table counts, as evcxr reads it.
        std::fs::write(cwd.join("evcxr.toml"), "[other]\noffline_mode = true\n").unwrap();
        assert!(!chosen());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
