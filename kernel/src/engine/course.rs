//! `:course`: one line that makes the course's helper crates available in a notebook.
//!
//! The helper crates live in the kettle workspace (`crates/`); a notebook should not have to
//! know where that is. A line `:course` in a cell is run as evcxr `:dep` commands for
//! `kettle-display`, `kettle-timing` and `kettle-lab` by path, before the rest of the cell; the
//! line itself is blanked, so line numbers in the cell's errors stay right.

use std::path::PathBuf;

/// The command, alone on its line.
pub const COMMAND: &str = ":course";
/// The helper crates, by package name.
pub const CRATES: [&str; 3] = ["kettle-display", "kettle-timing", "kettle-lab"];

/// Where the helper crates are: `KETTLE_CRATES_DIR`, else those of the kettle workspace around
/// the current directory (the notebook's), else those of the workspace this kernel was built
/// from (cargo does not rebuild the kernel when only the workspace moved, so that one can be
/// a checkout that is gone).
pub fn crates_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("KETTLE_CRATES_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(root) = std::env::current_dir()
        .ok()
        .and_then(|cwd| crate::lab::find_workspace_root(&cwd))
        && root.join("crates").join(CRATES[0]).is_dir()
    {
        return root.join("crates");
    }
    let built_from = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../crates"));
    built_from.canonicalize().unwrap_or(built_from)
}

/// The `:dep` commands that `:course` stands for.
pub fn dep_commands(dir: &std::path::Path) -> String {
    CRATES
        .iter()
        .map(|name| {
            let path = dir.join(name);
            // TOML basic string: escape backslashes and quotes.
            let path = path
                .to_string_lossy()
                .replace('\\', "\\\\")
                .replace('"', "\\\"");
            format!(":dep {name} = {{ path = \"{path}\" }}\n")
        })
        .collect()
}

/// Splits `code` into whether it asks for the course crates and the code with the command
/// lines blanked.
pub fn take_command(code: &str) -> (bool, String) {
    let mut found = false;
    let rest: Vec<&str> = code
        .split('\n')
        .map(|line| {
            if line.trim() == COMMAND {
                found = true;
                ""
            } else {
                line
            }
        })
        .collect();
    (found, rest.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_blanked_and_other_lines_kept() {
        let (found, rest) = take_command(":course\nuse kettle_timing::time;\nlet x = 1;");
        assert!(found);
        assert_eq!(rest, "\nuse kettle_timing::time;\nlet x = 1;");
        assert_eq!(
            take_command("let course = 1;"),
            (false, "let course = 1;".to_owned())
        );
    }

    #[test]
    fn deps_point_at_each_helper_crate() {
        let deps = dep_commands(std::path::Path::new("/opt/kettle/crates"));
        assert_eq!(
            deps,
            ":dep kettle-display = { path = \"/opt/kettle/crates/kettle-display\" }\n\
             :dep kettle-timing = { path = \"/opt/kettle/crates/kettle-timing\" }\n\
             :dep kettle-lab = { path = \"/opt/kettle/crates/kettle-lab\" }\n"
        );
    }

    #[test]
    fn the_workspace_crates_exist() {
        for name in CRATES {
            assert!(
                crates_dir().join(name).join("Cargo.toml").is_file(),
                "{name}"
            );
        }
    }
}
