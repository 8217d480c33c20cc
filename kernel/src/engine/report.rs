//! Turns evcxr's errors into what a Jupyter `error` message carries: `ename`, `evalue` and a
//! traceback of ANSI-coloured lines that frontends render as the cell's error output.
//!
//! Compile errors are rendered against the cell's own source (its line and column, the rustc
//! error code), since the generated crate evcxr compiles is not something the learner wrote.

use evcxr::CompilationError;

const RED_BOLD: &str = "\x1b[1;31m";
const YELLOW_BOLD: &str = "\x1b[1;33m";
const BLUE_BOLD: &str = "\x1b[1;34m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

/// A rendered error, ready for the protocol.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub ename: String,
    pub evalue: String,
    pub traceback: Vec<String>,
}

/// Renders compile errors against `source`, the cell the user wrote.
pub fn compile_errors(errors: &[CompilationError], source: &str) -> Report {
    let source_lines: Vec<&str> = source.lines().collect();
    let mut traceback = Vec::new();
    let mut first_summary = None;
    for error in errors {
        let code = error.code();
        let summary = match code {
            Some(code) => format!("error[{code}]: {}", error.message()),
            None => format!("{}: {}", error.level(), error.message()),
        };
        first_summary.get_or_insert_with(|| summary.clone());
        render_one(error, code, &source_lines, &mut traceback);
        traceback.push(String::new());
    }
    while traceback.last().is_some_and(|l| l.is_empty()) {
        traceback.pop();
    }
    let count = errors.len();
    let evalue = match (first_summary, count) {
        (Some(summary), 1) => summary,
        (Some(summary), n) => format!("{summary} (and {} more)", n - 1),
        (None, _) => "compilation failed".to_owned(),
    };
    Report {
        ename: "CompileError".to_owned(),
        evalue,
        traceback,
    }
}

fn render_one(
    error: &CompilationError,
    code: Option<&str>,
    source_lines: &[&str],
    out: &mut Vec<String>,
) {
    let colour = if error.level() == "warning" {
        YELLOW_BOLD
    } else {
        RED_BOLD
    };
    let head = match code {
        Some(code) => format!("{}[{code}]", error.level()),
        None => error.level().to_owned(),
    };
    out.push(format!(
        "{colour}{head}{RESET}{BOLD}: {}{RESET}",
        error.message()
    ));

    let spanned: Vec<_> = error
        .spanned_messages()
        .iter()
        .filter_map(|m| m.span.map(|span| (span, m)))
        .collect();
    if spanned.is_empty() {
        // Nothing points into the cell (e.g. an error in code evcxr generated): rustc's own
        // rendering is the most useful thing left.
        let rendered = error.rendered();
        out.extend(rendered.lines().skip(1).map(str::to_owned));
    }
    let gutter = spanned
        .iter()
        .map(|(span, _)| span.end_line.to_string().len())
        .max()
        .unwrap_or(1);
    let pad = " ".repeat(gutter);
    for (i, (span, message)) in spanned.iter().enumerate() {
        if i == 0 {
            out.push(format!(
                "{pad}{BLUE_BOLD}-->{RESET} cell:{}:{}",
                span.start_line, span.start_column
            ));
            out.push(format!("{pad} {BLUE_BOLD}|{RESET}"));
        }
        for line_no in span.start_line..=span.end_line {
            let Some(text) = source_lines.get(line_no.wrapping_sub(1)) else {
                continue;
            };
            out.push(format!("{BLUE_BOLD}{line_no:>gutter$} |{RESET} {text}"));
            let width = text.chars().count();
            let start = if line_no == span.start_line {
                span.start_column.saturating_sub(1)
            } else {
                0
            };
            let end = if line_no == span.end_line {
                span.end_column.saturating_sub(1).min(width)
            } else {
                width
            };
            let marks = "^".repeat(end.saturating_sub(start).max(1));
            let label = if line_no == span.end_line {
                message.label.as_str()
            } else {
                ""
            };
            let mark_colour = if message.is_primary {
                colour
            } else {
                BLUE_BOLD
            };
            out.push(format!(
                "{pad} {BLUE_BOLD}|{RESET} {}{mark_colour}{marks} {label}{RESET}",
                " ".repeat(start)
            ));
        }
    }
    for help in error.help() {
        out.push(format!(
            "{pad} {BLUE_BOLD}={RESET} {BOLD}help{RESET}: {help}"
        ));
    }
    if let Some(hint) = error.evcxr_extra_hint() {
        out.push(format!(
            "{pad} {BLUE_BOLD}={RESET} {BOLD}note{RESET}: {hint}"
        ));
    }
    if let Some(code) = code {
        out.push(format!(
            "{pad} {BLUE_BOLD}={RESET} {BOLD}explain{RESET}: rustc --explain {code}"
        ));
    }
}

/// A panic in the cell's own thread. `generated` is the source of the crate evcxr built for
/// the cell (its `src/lib.rs`), when readable, and `cell` the code the learner wrote.
pub fn panic(
    thread: &str,
    location: &str,
    message: &str,
    generated: Option<&str>,
    cell: &str,
) -> Report {
    // Locations in `src/lib.rs` are in the crate evcxr generated around the cell; name the
    // cell's own line instead, found by the text of the generated line.
    let location = match location.strip_prefix("src/lib.rs:") {
        Some(line_col) => {
            cell_location(line_col, generated, cell).unwrap_or_else(|| "this cell".to_owned())
        }
        None => location.to_owned(),
    };
    let mut traceback = vec![format!(
        "{RED_BOLD}thread '{thread}' panicked{RESET} at {location}:"
    )];
    traceback.extend(message.lines().map(|l| format!("{BOLD}{l}{RESET}")));
    Report {
        ename: "panic".to_owned(),
        evalue: message.to_owned(),
        traceback,
    }
}

/// "cell line N" for `line:column` of the generated source, when that line's text occurs
/// exactly once in the cell.
fn cell_location(line_col: &str, generated: Option<&str>, cell: &str) -> Option<String> {
    let line: usize = line_col.split(':').next()?.parse().ok()?;
    let text = generated?.lines().nth(line.checked_sub(1)?)?.trim();
    if text.is_empty() {
        return None;
    }
    let mut found = cell
        .lines()
        .enumerate()
        .filter(|(_, l)| l.trim() == text)
        .map(|(i, _)| i + 1);
    match (found.next(), found.next()) {
        (Some(n), None) => Some(format!("cell line {n}")),
        _ => None,
    }
}

/// The process running user code died (exit, abort, signal) or was stopped by an interrupt.
pub fn process_died(interrupted: bool, detail: &str, lost: &[String]) -> Report {
    let (ename, evalue) = if interrupted {
        (
            "Interrupted",
            "the cell was interrupted: the process running it was stopped".to_owned(),
        )
    } else {
        (
            "ProcessDied",
            format!("the process running the cell died: {}", detail.trim()),
        )
    };
    let mut traceback = vec![format!("{RED_BOLD}{ename}{RESET}: {evalue}")];
    if !interrupted && !detail.trim().is_empty() {
        traceback.extend(detail.trim().lines().map(str::to_owned));
    }
    if lost.is_empty() {
        traceback.push("No variables were lost; functions and types are kept.".to_owned());
    } else {
        traceback.push(format!(
            "Variables lost: {} (functions, types and dependencies are kept).",
            lost.join(", ")
        ));
    }
    Report {
        ename: ename.to_owned(),
        evalue,
        traceback,
    }
}

/// The cell stopped by itself after an interrupt (cooperative code saw the flag).
pub fn interrupted_cooperatively() -> Report {
    let evalue = "the cell was interrupted and stopped by itself; variables are kept".to_owned();
    Report {
        ename: "Interrupted".to_owned(),
        traceback: vec![format!("{RED_BOLD}Interrupted{RESET}: {evalue}")],
        evalue,
    }
}

/// Any other engine error.
pub fn other(ename: &str, evalue: String) -> Report {
    Report {
        ename: ename.to_owned(),
        traceback: vec![format!("{RED_BOLD}{ename}{RESET}: {evalue}")],
        evalue,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_in_generated_code_is_located_on_the_cells_line() {
        let generated = "fn wrapper() {\nlet v: Vec<u8> = Vec::new();\n    v[3];\n}\n";
        let cell = "let v: Vec<u8> = Vec::new();\nv[3];";
        let r = panic(
            "main",
            "src/lib.rs:3:5",
            "index out of bounds",
            Some(generated),
            cell,
        );
        assert!(
            r.traceback[0].contains("at cell line 2:"),
            "{:?}",
            r.traceback
        );
        // A line the cell does not contain, or contains twice: no guess.
        let r = panic("main", "src/lib.rs:1:1", "boom", Some(generated), cell);
        assert!(
            r.traceback[0].contains("at this cell:"),
            "{:?}",
            r.traceback
        );
        let r = panic(
            "main",
            "/rustc/x/library/core/src/panicking.rs:9:1",
            "boom",
            None,
            cell,
        );
        assert!(
            r.traceback[0].contains("panicking.rs:9:1"),
            "{:?}",
            r.traceback
        );
    }
}
