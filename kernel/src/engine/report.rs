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

/// A panic in the cell's own thread.
pub fn panic(thread: &str, location: &str, message: &str) -> Report {
    // Locations in `src/lib.rs` are in the crate evcxr generated around the cell; its line
    // numbers mean nothing to the learner, so name the cell instead.
    let location = if location.starts_with("src/lib.rs:") {
        "this cell"
    } else {
        location
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
