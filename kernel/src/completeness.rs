//! Answers the shell channel's `is_complete_request`: is a cell ready to run, does it need more
//! lines, or is it broken beyond repair?
//!
//! Spec: <https://jupyter-client.readthedocs.io/en/latest/messaging.html#code-completeness>.
//! Console frontends (`jupyter console`, qtconsole) ask this on every Enter; only `incomplete`
//! keeps the prompt open, so a wrong `Incomplete` is the costly mistake (the user cannot run the
//! cell), while `Invalid` and `Complete` both run it and let evcxr report any error.
//!
//! A cell is evcxr-shaped: leading `:command` / `!shell` / blank / `//` lines, then Rust
//! statements, items and an optional trailing expression. Rather than counting braces we use the
//! real tokenizer (`proc_macro2`) and parser (`syn`) in two phases:
//!
//! 1. **Lexical completion.** Lex the code; on an error, look at where the tokenizer stopped. An
//!    unterminated string or block comment is closed, open delimiters are closed in reverse
//!    order, and we lex again. A stray or mismatched closing delimiter, or an unknown character,
//!    can never be repaired by *appending* text, so the cell is `Invalid`.
//! 2. **Syntactic check.** Parse the (possibly closed) text as the contents of a block. An error
//!    inside the user's text is `Invalid`; an error at the end of input (`let x = 1 +`,
//!    `fn f()`) or only inside what phase 1 appended means more input could help: `Incomplete`.
//!
//! Type errors are not our business: `let x: u8 = "s";` parses, so it is `Complete`.

use proc_macro2::{LexError, Literal, TokenStream, TokenTree};
use std::str::FromStr;

/// Whether a cell is ready to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IsComplete {
    /// Ready to execute.
    Complete,
    /// More input expected; `indent` is the suggested indentation of the next line.
    Incomplete { indent: String },
    /// Cannot parse, and more input would not help.
    Invalid,
}

/// One indentation level, as rustfmt uses.
const INDENT_UNIT: &str = "    ";

/// Upper bound on repair rounds in phase 1. Each round fixes one unterminated literal or comment
/// nesting level (or all open delimiters at once), so real cells need a handful; the bound only
/// guards against a repair that does not make progress.
const MAX_REPAIRS: usize = 32;

/// Stack of the classifying thread. Only touched pages are committed, so this is address space,
/// not memory. Measured: `syn` needs up to ~2 KiB per token of a nested chain in a release
/// build (~40 KiB in debug), so together with [`MAX_TOKENS`] this keeps adversarial cells safe.
const PARSER_STACK_BYTES: usize = 256 << 20;

/// Largest cell (in tokens) we hand to `syn`; larger ones are judged by the tokenizer alone.
/// Unoptimised `syn` uses ~20x the stack per level, hence the smaller bound in debug builds.
const MAX_TOKENS: usize = if cfg!(debug_assertions) {
    4_000
} else {
    20_000
};

/// Deepest delimiter nesting we hand to `syn`. Beyond it the cell is judged by the tokenizer
/// alone: real cells stay far below, and deeper ones are left for the compiler to judge.
const MAX_NESTING: usize = 256;

/// Classifies `code` for an `is_complete_reply`.
///
/// ```
/// use kettle::completeness::{is_complete, IsComplete};
/// assert_eq!(is_complete("let x = 1;"), IsComplete::Complete);
/// assert_eq!(is_complete("fn f() {"), IsComplete::Incomplete { indent: "    ".into() });
/// assert_eq!(is_complete("let x = );"), IsComplete::Invalid);
/// ```
pub fn is_complete(code: &str) -> IsComplete {
    let rust = rust_part(code);
    if rust.trim().is_empty() {
        return IsComplete::Complete;
    }
    // A thread of our own, for two reasons. `syn` parses by recursive descent, so a long chain
    // (`Vec<Vec<...>>`, `!!!!x`, closures returning closures) needs deep stack; a stack overflow
    // aborts the whole kernel, so we give it a large one. And the fallback tokenizer records
    // every lexed text in a thread-local source map to resolve spans; this request comes on
    // every Enter of a long session, and the map is freed when the thread ends.
    let rust = rust.to_owned();
    let worker = std::thread::Builder::new()
        .name("is-complete".into())
        .stack_size(PARSER_STACK_BYTES)
        .spawn(move || classify(&rust));
    // If we cannot tell, say `Complete`: the frontend then runs the cell and the compiler
    // reports whatever is wrong, while a wrong `Incomplete` would trap the user at the prompt.
    match worker.map(std::thread::JoinHandle::join) {
        Ok(Ok(verdict)) => verdict,
        Ok(Err(_)) | Err(_) => IsComplete::Complete,
    }
}

/// Skips the leading lines evcxr treats as commands, mirroring
/// `CodeBlock::from_original_user_code` in evcxr 0.22: `:cmd` lines (regex `^ *:`), `!shell`
/// lines, blank lines and `//` lines, up to the first line of Rust. Later `:` lines are Rust to
/// evcxr too (and a syntax error there), so we do the same.
fn rust_part(code: &str) -> &str {
    let mut start = 0;
    for line in code.split_inclusive('\n') {
        let text = line.trim_end_matches(['\n', '\r']);
        let is_prelude = text.trim_start_matches(' ').starts_with(':')
            || text.starts_with('!')
            || text.starts_with("//")
            || text.trim().is_empty();
        if !is_prelude {
            break;
        }
        start += line.len();
    }
    &code[start..]
}

/// What phase 1 had to append to make the text lex.
#[derive(Debug, Default)]
struct Repair {
    /// The user's code followed by the appended closers.
    text: String,
    /// The code ends inside a string literal: indenting would change its value.
    in_literal: bool,
    /// Byte offsets (into the user's code) of delimiters still open at its end, outermost first.
    open_delimiters: Vec<usize>,
    /// More than [`MAX_NESTING`] delimiters are open: we stopped repairing, `text` does not lex.
    too_deep: bool,
}

fn classify(code: &str) -> IsComplete {
    let Some(repair) = repair_lexically(code) else {
        return IsComplete::Invalid;
    };
    if repair.too_deep {
        return IsComplete::Incomplete {
            indent: indent_for(code, &repair),
        };
    }
    match syntax_error_offset(&repair.text) {
        // Nothing appended and nothing missing.
        None if repair.text.len() == code.len() => IsComplete::Complete,
        Some(offset) if offset < code.trim_end().len() => IsComplete::Invalid,
        // Either phase 1 appended closers, or the parser ran out of input: more text helps.
        _ => IsComplete::Incomplete {
            indent: indent_for(code, &repair),
        },
    }
}

/// Phase 1: appends the closers an unfinished cell lacks, or returns `None` when the lexical
/// error cannot be fixed by appending text.
fn repair_lexically(code: &str) -> Option<Repair> {
    let mut repair = Repair {
        text: code.to_owned(),
        ..Repair::default()
    };
    for _ in 0..MAX_REPAIRS {
        let Err(err) = TokenStream::from_str(&repair.text) else {
            return Some(repair);
        };
        let at = lex_error_offset(&err);
        // Every appended closer is right by construction, so an error there means our repair
        // failed; refuse to guess rather than loop.
        if at >= code.len() {
            return None;
        }
        let rest = &repair.text[at..];
        match rest.chars().next()? {
            // The tokenizer reports an unclosed group at its opening delimiter, once it has
            // reached the end of input.
            '(' | '[' | '{' => {
                repair.open_delimiters = open_delimiters(&repair.text, at);
                if repair.open_delimiters.len() > MAX_NESTING {
                    repair.too_deep = true;
                    return Some(repair);
                }
                // A newline first, in case the code ends in a `//` comment.
                repair.text.push('\n');
                for &open in repair.open_delimiters.iter().rev() {
                    repair.text.push(closer_of(repair.text.as_bytes()[open]));
                }
            }
            // A closer without (or with the wrong) opener: appending cannot fix what is before.
            ')' | ']' | '}' => return None,
            // Only an unterminated block comment stops the tokenizer at `/*`; a space first so a
            // trailing `/` does not turn our `*/` into a nested `/*`.
            '/' if rest.starts_with("/*") => repair.text.push_str(" */"),
            _ => {
                let closer = literal_closer(rest)?;
                repair.text.push_str(&closer);
                repair.in_literal = true;
            }
        }
    }
    None
}

/// The offsets of all delimiters open at the end of `text`, given the innermost one at
/// `innermost`. Everything between two nested openers is balanced, so lexing the prefix up to an
/// opener fails exactly at the next enclosing opener (or succeeds at the outermost level).
fn open_delimiters(text: &str, innermost: usize) -> Vec<usize> {
    let mut stack = vec![innermost];
    let mut end = innermost;
    // Each round lexes a prefix again; stop once the cell is too deep to parse anyway.
    while stack.len() <= MAX_NESTING
        && let Err(err) = TokenStream::from_str(&text[..end])
    {
        let at = lex_error_offset(&err);
        if at >= end || !matches!(text.as_bytes()[at], b'(' | b'[' | b'{') {
            break;
        }
        stack.push(at);
        end = at;
    }
    stack.reverse();
    stack
}

fn closer_of(open: u8) -> char {
    match open {
        b'(' => ')',
        b'[' => ']',
        _ => '}',
    }
}

/// If `rest` starts with a string, byte-string, C-string, raw-string or char literal that only
/// lacks its end, returns text that terminates it. Candidates are checked with the tokenizer's own
/// literal parser, so an invalid escape (`"\q`) stays invalid.
fn literal_closer(rest: &str) -> Option<String> {
    // `r#"...` needs as many `#` after the closing quote as before the opening one.
    let hashes = rest
        .trim_start_matches(['b', 'c'])
        .strip_prefix('r')
        .map_or(0, |raw| raw.len() - raw.trim_start_matches('#').len());
    let raw_close = format!("\"{}", "#".repeat(hashes));
    // Plain close; finish a dangling `\` escape; finish a `\u{...` escape; a char after `'`.
    let candidates = [
        raw_close,
        "\\\"".to_owned(),
        "}\"".to_owned(),
        "'".to_owned(),
        "x'".to_owned(),
        "\\'".to_owned(),
        "}'".to_owned(),
    ];
    candidates
        .into_iter()
        .find(|closer| Literal::from_str(&format!("{rest}{closer}")).is_ok())
}

/// Phase 2: parses `text` as the contents of a block (statements, items, trailing expression)
/// and returns the byte offset into `text` of the first syntax error, if any. An error at the end
/// of input gets an offset at or beyond `text.len()`.
fn syntax_error_offset(text: &str) -> Option<usize> {
    // The braces give "unexpected end of input" errors a real position (the closing brace)
    // instead of the call-site span, which has none. The newline keeps a final `//` comment
    // from swallowing the brace.
    let wrapped = format!("{{{text}\n}}");
    let tokens = match TokenStream::from_str(&wrapped) {
        Ok(tokens) => tokens,
        // Phase 1 made `text` lex, so this cannot happen; treat it as an error at the start.
        Err(_) => return Some(0),
    };
    let (depth, count) = shape(tokens.clone());
    if depth > MAX_NESTING || count > MAX_TOKENS {
        return None;
    }
    let parse_block = |input: syn::parse::ParseStream| {
        let content;
        syn::braced!(content in input);
        // Accept `#![allow(...)]` at the top of a cell, as the body of a fn would.
        content.call(syn::Attribute::parse_inner)?;
        content.call(syn::Block::parse_within)?;
        Ok(())
    };
    let err = syn::parse::Parser::parse2(parse_block, tokens).err()?;
    // Undo the shift by the opening brace we added.
    Some(err.span().byte_range().start.saturating_sub(1))
}

/// The deepest group nesting in `tokens` and the number of token trees, computed without
/// recursion (that is the point: the input may be too deep to recurse over).
fn shape(tokens: TokenStream) -> (usize, usize) {
    let (mut depth, mut count) = (0, 0);
    let mut stack = vec![tokens.into_iter()];
    while let Some(top) = stack.last_mut() {
        let Some(tree) = top.next() else {
            stack.pop();
            continue;
        };
        count += 1;
        if let TokenTree::Group(group) = tree {
            stack.push(group.stream().into_iter());
            depth = depth.max(stack.len() - 1);
        }
    }
    (depth, count)
}

fn lex_error_offset(err: &LexError) -> usize {
    err.span().byte_range().start
}

/// One indentation level per source line that opened a still-open delimiter, as rustfmt indents
/// `foo(bar(` once but `fn f() {` + `let v = vec![` twice. Inside a string literal we suggest no
/// indentation, since spaces would become part of the string.
fn indent_for(code: &str, repair: &Repair) -> String {
    if repair.in_literal {
        return String::new();
    }
    let mut lines: Vec<usize> = repair
        .open_delimiters
        .iter()
        .map(|&at| code[..at].matches('\n').count())
        .collect();
    lines.dedup();
    INDENT_UNIT.repeat(lines.len())
}

#[cfg(test)]
mod tests {
    use super::{IsComplete, is_complete};

    fn complete(code: &str) {
        assert_eq!(is_complete(code), IsComplete::Complete, "code: {code:?}");
    }

    fn invalid(code: &str) {
        assert_eq!(is_complete(code), IsComplete::Invalid, "code: {code:?}");
    }

    fn incomplete(code: &str, indent: &str) {
        let expected = IsComplete::Incomplete {
            indent: indent.to_owned(),
        };
        assert_eq!(is_complete(code), expected, "code: {code:?}");
    }

    #[test]
    fn empty_and_blank_cells_are_complete() {
        complete("");
        complete("   \n\n\t");
        complete("// just a comment");
    }

    #[test]
    fn statements_items_and_trailing_expression_are_complete() {
        complete("let x = 1;");
        complete("let x = 1;\nx + 1");
        complete("fn f() -> u8 { 1 }\nstruct S;\nimpl S { fn g(&self) {} }\nf()");
        complete("use std::sync::{Arc, Mutex};");
        complete("for i in 0..3 { println!(\"{i}\"); }");
    }

    #[test]
    fn type_errors_are_not_syntax_errors() {
        complete("let x: u8 = \"s\";");
        complete("undefined_function(1, 2)");
    }

    #[test]
    fn evcxr_commands_are_complete() {
        complete(":dep rayon");
        complete(":vars");
        complete(":dep rayon = \"1\"\n:dep crossbeam\nuse rayon::prelude::*;");
        complete("!ls -l");
        // A command line is complete even though `:` would be a Rust syntax error.
        complete("  :timing");
    }

    #[test]
    fn code_after_commands_is_still_checked() {
        incomplete(":dep rayon\nfn f() {", "    ");
        invalid(":dep rayon\nlet x = );");
        // Only leading lines are commands; evcxr reads a later `:` line as Rust.
        invalid("let x = 1;\n:vars");
    }

    #[test]
    fn open_delimiters_are_incomplete_with_indent() {
        incomplete("fn f() {", "    ");
        incomplete("fn f() {\n    let v = vec![1,", "        ");
        incomplete("let v = vec![1,", "    ");
        incomplete("foo(bar(1,", "    ");
        incomplete(
            "impl S {\n    fn g(&self) {\n        if true {",
            "            ",
        );
    }

    #[test]
    fn unterminated_literals_and_comments_are_incomplete() {
        incomplete("let s = \"hello", "");
        incomplete("let s = r#\"a \" quote", "");
        incomplete("let b = b\"bytes", "");
        incomplete("let s = \"ends with backslash \\", "");
        incomplete("fn f() {\n    /* a comment", "    ");
        incomplete("/* outer /* inner */", "");
        incomplete("let c = '\\", "");
    }

    #[test]
    fn trailing_operator_or_equals_is_incomplete() {
        incomplete("let x = 1 +", "");
        incomplete("let x =", "");
        incomplete("let x = a &&", "");
        incomplete("let x = 1", "");
        incomplete("x.", "");
    }

    #[test]
    fn unfinished_item_headers_are_incomplete() {
        incomplete("fn f()", "");
        incomplete("fn f() -> u8", "");
        incomplete("struct S", "");
        incomplete("impl X for Y", "");
        incomplete("#[derive(Debug)]", "");
        incomplete("if x { 1 } else", "");
    }

    #[test]
    fn stray_or_mismatched_closers_are_invalid() {
        invalid("let x = ) ;");
        invalid("}");
        invalid("(]");
        invalid("fn f() { ) }");
        // A closer that does not match, even with other openers still open.
        invalid("fn f() {\n    foo(1]");
    }

    #[test]
    fn syntax_errors_before_the_end_are_invalid() {
        invalid("let x = 1 1;");
        invalid("let = 5;");
        invalid("fn f( { }");
        invalid("x\ny");
        // The error comes first, so the open brace after it cannot help.
        invalid("let x = 1 1;\nfn f() {");
        invalid("let s = \"bad escape \\q");
        invalid("let x = 1 × 2;");
    }

    #[test]
    fn strings_containing_delimiters_do_not_count() {
        complete("let s = \"{ ( [\";");
        complete("let s = \"}\";");
        complete("let s = r\"}]) \\\";");
        complete("let c = '{';");
        incomplete("let s = \"}\"; fn f() {", "    ");
    }

    #[test]
    fn comments_containing_delimiters_do_not_count() {
        complete("let x = 1; // fn f() {");
        complete("/* } */ let x = 1;");
        incomplete("fn f() { // }", "    ");
        complete("/// docs with a brace {\nfn f() {}");
    }

    #[test]
    fn macros_with_brace_bodies() {
        complete("macro_rules! m { ($x:expr) => { $x + 1 }; }");
        complete("thread::scope(|s| { s.spawn(|| println!(\"{}\", 1)); });");
        complete("println!(\"{{}} {}\", 1)");
        // Macro bodies are opaque token trees; only their delimiters matter.
        complete("m! { anything goes here = + }");
        incomplete("macro_rules! m {\n    ($x:expr) => {", "        ");
    }

    #[test]
    fn attributes() {
        complete("#[derive(Debug, Clone)]\nstruct P { x: i32 }");
        complete("#![allow(unused)]\nlet x = 1;");
        incomplete("#[derive(Debug", "    ");
    }

    #[test]
    fn lifetimes_are_not_char_literals() {
        complete("fn first<'a>(s: &'a str) -> &'a str { s }");
        complete("struct R<'a> { s: &'a str }");
        complete("'outer: loop { break 'outer; }");
        incomplete("fn f<'a>(s: &'a str) {", "    ");
    }

    #[test]
    fn non_ascii_text() {
        complete("let café = \"naïve ☕\";");
        complete("let s = \"日本語 {\";\ns.len()");
        incomplete("let s = \"日本語\";\nfn f() {\n    let ß = \"ü", "");
        incomplete("fn größe() {", "    ");
        invalid("let x = \"é\"; )");
    }

    #[test]
    fn deep_nesting_does_not_overflow_the_stack() {
        let depth = super::MAX_NESTING - 1;
        complete(&format!("{}1{};", "(".repeat(depth), ")".repeat(depth)));
        complete(&format!("{}{}", "{".repeat(depth), "}".repeat(depth)));
        incomplete(&"{".repeat(depth), "    ");
        invalid(&format!("{}1 1{};", "(".repeat(depth), ")".repeat(depth)));
        // Long chains without delimiters recurse in syn too; our thread's stack covers them.
        complete(&format!(
            "let v: {}u8{};",
            "Vec<".repeat(1_000),
            ">".repeat(1_000)
        ));
        complete(&format!("let f = {}1;", "|x| ".repeat(2_000)));
        // Far deeper than syn's recursion could take: judged by the tokenizer alone.
        complete(&format!("{}1{};", "(".repeat(10_000), ")".repeat(10_000)));
        incomplete(&"[".repeat(10_000), "    ");
        invalid(&format!("{}1]", "(".repeat(10_000)));
    }

    #[test]
    fn concurrency_course_snippets() {
        complete(
            "use std::thread;\nlet h = thread::spawn(move || {\n    42\n});\nh.join().unwrap()",
        );
        incomplete("let h = thread::spawn(move || {", "    ");
        complete("async fn f() -> u8 { 1 }\nf().await");
    }
}
