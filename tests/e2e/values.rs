//! Cells ending in a value (issue 7): common std values are shown as evcxr's `{:?}` fallback
//! shows them, but from the first compilation (engine/value_display.rs); everything else still
//! goes through the fallback, with the same result as before. And what evcxr's own commands
//! answer (`:vars`, `:timing`, …) is shown.

use crate::util::Kernel;

/// The source evcxr compiled last: the fallback's when the first attempt did not compile.
fn last_source(k: &mut Kernel) -> String {
    let c = k.execute_ok(":last_compile_dir");
    let dir = c.result_text().unwrap_or_default().trim().to_owned();
    std::fs::read_to_string(std::path::Path::new(&dir).join("src").join("lib.rs"))
        .unwrap_or_else(|e| panic!("no lib.rs in {dir:?}: {e}\n{}", c.describe()))
}

/// Runs `code`, checks the value shown, and whether the value needed evcxr's fallback.
fn shows(k: &mut Kernel, code: &str, expected: &str, fallback: bool) {
    k.assert_result(code, expected);
    let source = last_source(k);
    assert_eq!(
        source.contains("evcxr_send_text_plain("),
        fallback,
        "{code}: fallback expected: {fallback}\n{source}"
    );
}

#[test]
fn values_show_as_before_and_common_ones_compile_once() {
    let mut k = Kernel::start();
    // The trait is there before the first cell: "Run All" never leaves the kernel idle.
    shows(&mut k, "1 + 1", "2", false);
    k.execute_ok("let v = vec![1u8, 2];");
    shows(&mut k, "v", "[1, 2]", false);
    shows(&mut k, "&v[..]", "[1, 2]", false);
    shows(&mut k, "(1u8, 'c', 2.5f64)", "(1, 'c', 2.5)", false);
    shows(
        &mut k,
        "Some(std::time::Duration::from_millis(1500))",
        "Some(1.5s)",
        false,
    );
    shows(&mut k, "v.len()", "2", false);
    shows(&mut k, "1 + 1", "2", false);
    // Left to the fallback: strings and user types.
    shows(&mut k, "\"abc\"", "\"abc\"", true);
    shows(&mut k, "String::from(\"s\")", "\"s\"", true);
    shows(
        &mut k,
        "#[derive(Debug)] struct Point { x: i32 }\nPoint { x: 3 }",
        "Point { x: 3 }",
        true,
    );
    // A unit value still shows nothing.
    let c = k.execute_ok("fn nothing() {}\nnothing()");
    assert_eq!(c.result_text(), None, "{}", c.describe());
    // Not Debug: the same compile error as without the trait.
    let c = k.execute("struct Opaque;\nOpaque");
    assert_eq!(c.status(), "error", "{}", c.describe());
    assert!(
        c.error().content["evalue"]
            .as_str()
            .unwrap_or("")
            .contains("Debug"),
        "{}",
        c.describe()
    );
    // `:fmt` changes the fallback's format; from then on every value takes the fallback.
    k.execute_ok(":fmt {:#?}");
    shows(
        &mut k,
        "vec![(1u8, 2u8)]",
        "[\n    (\n        1,\n        2,\n    ),\n]",
        true,
    );
}

#[test]
fn what_evcxr_commands_answer_is_shown() {
    let mut k = Kernel::start();
    k.execute_ok("let answer = 42u8;");
    k.assert_result(":vars", "answer: u8\n");
    k.assert_result(":timing", "Timing: true\n");
    // With timing on, a cell also shows how long it took and where the time went (evcxr's
    // phases), beside its own value.
    let c = k.assert_result("answer", "42");
    let took = c.of_type("display_data");
    assert!(
        took.iter().any(
            |m| m.content["data"]["text/plain"]
                .as_str()
                .is_some_and(|t| t.starts_with("Took ")
                    && t.contains(" · Final compile ")
                    && t.contains(" · Execution ")
                    && t.ends_with(" ms"))
        ),
        "{}",
        c.describe()
    );
    // `:quit` would end the process (evcxr calls exit); it is refused instead.
    let c = k.execute(":quit");
    assert_eq!(
        c.error().content["ename"],
        "Unsupported",
        "{}",
        c.describe()
    );
    k.assert_result("answer", "42");
}

#[test]
fn cells_are_built_with_the_cargo_settings_kettle_keeps_above_the_work_slots() {
    let mut k = Kernel::start();
    k.assert_result("1 + 1", "2");
    let c = k.execute_ok(":last_compile_dir");
    let dir = c.result_text().unwrap_or_default().trim().to_owned();
    // Cargo reads .cargo/config.toml in every parent of the directory it builds in.
    let config = std::path::Path::new(&dir)
        .parent()
        .map(|root| root.join(".cargo").join("config.toml"))
        .unwrap_or_else(|| panic!("no parent for {dir:?}"));
    let text = std::fs::read_to_string(&config)
        .unwrap_or_else(|e| panic!("no {}: {e}\n{}", config.display(), c.describe()));
    assert!(
        text.lines().any(|line| line.trim() == "lto = \"off\""),
        "{text}"
    );
}
