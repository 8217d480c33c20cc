//! Which lines of a cell evcxr runs as its commands (`:dep`, `:offline`, `:fmt`, `:quit` …):
//! the engine decides things before evcxr sees a cell, and must read it the same way.
//!
//! evcxr takes lines of the form ` :name argument` up to the cell's first line of Rust (blank
//! lines, `//` comments and `!` shell lines may come between); the argument is the rest of the
//! line after the spaces, trailing spaces included ([`of`]). A `:dep` after a line of Rust is
//! not a command, nor is one inside a comment.

/// The commands of `code`, as (name, argument), in order.
pub fn of(code: &str) -> impl Iterator<Item = (&str, Option<&str>)> {
    code.lines()
        .filter(|line| !(line.starts_with('!') || line.starts_with("//") || line.trim().is_empty()))
        .map_while(|line| {
            let command = line.trim_start_matches(' ');
            command
                .starts_with(':')
                .then(|| match command.split_once(' ') {
                    Some((name, rest)) => (name, Some(rest.trim_start_matches(' '))),
                    None => (command, None),
                })
        })
}

/// Whether a line of `code` starts with one of the commands `names`, e.g. `":dep"`, wherever
/// it stands: the cautious reading, for decisions where a command evcxr will not run costs
/// little (rust-analyzer warmed again, the value display turned off, a cell refused that would
/// not have compiled), and missing one costs more.
pub fn mentioned(code: &str, names: &[&str]) -> bool {
    code.lines()
        .filter_map(|line| line.split_whitespace().next())
        .any(|word| names.contains(&word))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_the_lines_before_the_first_line_of_rust() {
        let code = "  :dep rayon = \"1\"\n\n// why\n!ls\n:offline 1 \nlet x = 1;\n:quit";
        assert_eq!(
            of(code).collect::<Vec<_>>(),
            [(":dep", Some("rayon = \"1\"")), (":offline", Some("1 "))]
        );
        assert_eq!(of(":vars").collect::<Vec<_>>(), [(":vars", None)]);
        // The cautious reading also sees the `:quit` evcxr would not run.
        assert!(mentioned(code, &[":dep"]) && mentioned(code, &[":quit"]));
        assert!(!mentioned("let dep = 1; // :dep in a comment", &[":dep"]));
    }
}
