//! Crates read ahead from the notebook (issue 7): a kernel that Jupyter Server started for a
//! notebook (`JPY_SESSION_NAME`) adds the registry crates its cells declare before the first
//! cell runs; a cell sent meanwhile shows that it waits; what cannot be added offline is left
//! for its own cell. With the network cut off, as in `cargo_network`.

use crate::cargo_network::without_network;
use crate::util::{Channel, Collected, Kernel, temp_dir, write_notebook};
use serde_json::json;

/// A kernel started for a notebook with `cells` (code cells' sources), in its directory.
fn kernel_for_notebook(cells: &[&str]) -> Kernel {
    let dir = temp_dir("kettle-e2e-notebook");
    let path = write_notebook(&dir.join("lesson.ipynb"), cells);
    let mut launch = without_network();
    launch.env.push((
        "JPY_SESSION_NAME".into(),
        path.to_string_lossy().into_owned(),
    ));
    launch.cwd = Some(dir);
    Kernel::start_with(&launch)
}

/// The texts the cell's dependency displays showed, in order.
fn notes(c: &Collected) -> Vec<String> {
    c.build_displays()
        .iter()
        .filter_map(|m| m.content["data"]["text/plain"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn a_notebooks_registry_crates_are_there_before_its_cells_run() {
    let mut k = kernel_for_notebook(&[
        // Not in any cache (left for its cell), a path crate (never read ahead), then two
        // crates that are: the one missing must not keep the others out.
        ":dep kettle-test-no-such-crate = \"1\"\n:dep local = { path = \"./local\" }\n:dep cfg-if = \"1\"\nlet x = 1;",
        ":dep itoa = \"1\"\nitoa::Buffer::new().format(7).to_owned()",
    ]);

    // Sent at once: the engine is still starting and adding the crates; the cell waits, says so,
    // and then finds itoa although no cell has run `:dep itoa` yet.
    let first = k.assert_result("itoa::Buffer::new().format(42).to_owned()", "\"42\"");
    let shown = notes(&first);
    let declared = "kettle-test-no-such-crate, cfg-if, itoa";
    assert!(
        shown.first().is_some_and(
            |n| n.starts_with("adding the crates this notebook declares") && n.contains(declared)
        ),
        "{shown:?}"
    );
    // The end says what was added and what was not (that crate's cell will say why).
    assert!(
        shown.last().is_some_and(|n| n.starts_with(
            "added the crates this notebook declares: cfg-if, itoa; \
             left for their cells: kettle-test-no-such-crate · waited"
        )),
        "{shown:?}"
    );

    let deps = k.execute(":show_deps");
    let listed = deps.result_text().unwrap_or_default();
    assert!(
        listed.contains("cfg-if") && listed.contains("itoa"),
        "{}",
        deps.describe()
    );
    assert!(
        !listed.contains("kettle-test-no-such-crate") && !listed.contains("local"),
        "{}",
        deps.describe()
    );

    // The learner's own `:dep` line finds the crate there: nothing to resolve, no waiting note.
    let own = k.assert_result(
        ":dep itoa = \"1\"\nitoa::Buffer::new().format(7).to_owned()",
        "\"7\"",
    );
    assert!(notes(&own).is_empty(), "{}", own.describe());
}

#[test]
fn a_notebook_that_declares_nothing_adds_nothing() {
    let mut k = kernel_for_notebook(&["let x = 1;\nx"]);
    let first = k.assert_result("1 + 1", "2");
    assert!(notes(&first).is_empty(), "{}", first.describe());
    let deps = k.execute(":show_deps");
    assert!(
        !deps.result_text().unwrap_or_default().contains(" = "),
        "{}",
        deps.describe()
    );
}

#[test]
fn an_interrupt_ends_a_cell_waiting_for_the_notebooks_crates_and_the_kernel_goes_on() {
    let mut k = kernel_for_notebook(&[":dep cfg-if = \"1\""]);
    // The engine is still starting (seconds): the cell waits for the crates, then gives up.
    let waiting = k.send_execute(json!({"code": "1 + 1"}));
    let reply = k.request(Channel::Control, "interrupt_request", json!({}));
    assert_eq!(reply.content["status"], "ok", "{reply:?}");
    let c = k.collect(&waiting);
    c.assert_error_named("Interrupted");
    assert!(
        notes(&c)
            .last()
            .is_some_and(|n| n.starts_with("stopped waiting (interrupted)")),
        "{}",
        c.describe()
    );
    // Nothing was lost: the next cell runs, after the crates (or what is left of them).
    k.assert_result("2 + 2", "4");
}
