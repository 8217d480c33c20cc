//! Compiled cells kept across kernels (issue 7): a notebook run again in a new kernel finds its
//! cells compiled, and gets the same results, errors and panic locations; what a cell's
//! compile read (a dependency rebuilt from changed source, an environment variable) still
//! counts.
//!
//! Each test has a cache directory of its own (`KETTLE_CELL_CACHE_DIR`), and tells hits from
//! compiles by the entries there: one directory per kept compile, with a line in its `hits`
//! file per time it was used instead of rustc.

use crate::util::{Kernel, Launch, temp_dir};
use std::path::{Path, PathBuf};

/// The kept compiles in `cache` (`<key>/<variant>/` directories): how many, and how often
/// they were used.
fn entries_and_hits(cache: &Path) -> (usize, usize) {
    let mut entries = 0;
    let mut hits = 0;
    let keys = std::fs::read_dir(cache).into_iter().flatten().flatten();
    for key in keys.filter(|k| k.file_name().len() == 64) {
        for variant in std::fs::read_dir(key.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if variant.file_name().len() == 16 {
                entries += 1;
                hits += std::fs::read_to_string(variant.path().join("hits"))
                    .map(|t| t.lines().count())
                    .unwrap_or(0);
            }
        }
    }
    (entries, hits)
}

fn kernel(cache: &Path, env: &[(&str, &str)]) -> Kernel {
    let mut vars = vec![(
        "KETTLE_CELL_CACHE_DIR".to_owned(),
        cache.display().to_string(),
    )];
    vars.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Kernel::start_with(&Launch {
        env: vars,
        ..Launch::default()
    })
}

/// A path crate `helper` whose `value()` is `value`, in `root`.
fn write_helper(root: &Path, value: i32) -> PathBuf {
    let dir = root.join("helper");
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        "[package]\nname = \"helper\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("src/lib.rs"),
        format!("pub fn value() -> i32 {{ {value} }}\n"),
    )
    .unwrap();
    dir
}

/// The cells of the "notebook" every kernel here runs, with what they must give.
fn run_notebook(k: &mut Kernel, helper: &Path, expected_sum: &str) -> String {
    k.execute_ok(&format!(
        ":dep helper = {{ path = \"{}\" }}",
        helper.display()
    ));
    // Two items in one cell, and a variable: evcxr writes them in an order of its own.
    k.execute_ok("fn twice(x: i32) -> i32 { x * 2 }\nfn three() -> i32 { 3 }\nlet base = 1;");
    k.assert_result("helper::value() + twice(base)", expected_sum);
    // A panic in an item of the cell: the kernel names the cell's line by reading the source,
    // which must be the one the library was built from.
    let c = k.execute(
        "fn boom(n: i32) -> i32 {\n    if n > 1 { panic!(\"too big: {n}\") }\n    n\n}\n\
         boom(base + three())",
    );
    c.assert_error_named("panic");
    c.error().content["traceback"].to_string()
}

#[test]
fn a_notebook_run_again_in_a_new_kernel_finds_its_cells_compiled() {
    let root = temp_dir("kettle-e2e-cell-cache");
    let cache = root.join("cache");
    let helper = write_helper(&root, 1);

    let mut first = kernel(&cache, &[]);
    let panic_first = run_notebook(&mut first, &helper, "3");
    first.shut_down(false);
    let (kept, hits) = entries_and_hits(&cache);
    assert!(kept >= 3, "the cells' compiles were kept: {kept}");
    assert_eq!(hits, 0);

    // A second kernel, held open so that the third one takes another work slot.
    let mut second = kernel(&cache, &[]);
    let panic_second = run_notebook(&mut second, &helper, "3");
    let (kept_after, hits) = entries_and_hits(&cache);
    assert_eq!(kept_after, kept, "nothing compiled again");
    assert!(hits >= 3, "the cells were found compiled: {hits} hits");
    assert_eq!(panic_second, panic_first);
    assert!(panic_second.contains("cell line 2"), "{panic_second}");

    // The path crate changes: its library keeps its name, but the cells that use it compile
    // again, and see the new code.
    let helper = write_helper(&root, 40);
    let mut third = kernel(&cache, &[]);
    run_notebook(&mut third, &helper, "42");
    drop(second);
}

#[test]
fn a_compile_that_read_an_environment_variable_is_kept_for_that_value() {
    let root = temp_dir("kettle-e2e-cell-cache-env");
    let cache = root.join("cache");
    let cell = "env!(\"KETTLE_E2E_GREETING\")";
    kernel(&cache, &[("KETTLE_E2E_GREETING", "hello")]).assert_result(cell, "\"hello\"");
    kernel(&cache, &[("KETTLE_E2E_GREETING", "hello")]).assert_result(cell, "\"hello\"");
    assert!(entries_and_hits(&cache).1 >= 1, "the same value was a hit");
    kernel(&cache, &[("KETTLE_E2E_GREETING", "bye")]).assert_result(cell, "\"bye\"");
}

#[test]
fn the_cache_can_be_turned_off() {
    let root = temp_dir("kettle-e2e-cell-cache-off");
    let cache = root.join("cache");
    let mut k = kernel(&cache, &[("KETTLE_CELL_CACHE_MB", "0")]);
    k.assert_result("6 * 7", "42");
    assert_eq!(entries_and_hits(&cache), (0, 0));
}
