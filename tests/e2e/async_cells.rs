//! Async cells (issue 4, item 6): with tokio as a dependency a cell can `.await` at top level,
//! tasks spawned in one cell keep running while later cells execute, and rerunning a cell that
//! spawns tasks works (it fails in evcxr_jupyter: <https://github.com/evcxr/evcxr/issues/245>).
//!
//! The first run builds tokio into the kernel's persistent work slot (a minute or more on two
//! cores); later runs reuse it.

use crate::util::{Kernel, SharedKernel};

static KERNEL: SharedKernel = SharedKernel::new(1);

const SPAWN_TICKER: &str = "let ticks = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));\n\
    let counter = ticks.clone();\n\
    tokio::spawn(async move {\n\
        loop {\n\
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;\n\
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);\n\
        }\n\
    });\n\
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;\n\
    println!(\"spawned\");";

/// A later, synchronous cell: the ticker must advance while it runs.
fn ticker_advances_during_a_later_cell(k: &mut Kernel) {
    let c = k.execute(
        "let before = ticks.load(std::sync::atomic::Ordering::SeqCst);\n\
         std::thread::sleep(std::time::Duration::from_millis(500));\n\
         let after = ticks.load(std::sync::atomic::Ordering::SeqCst);\n\
         after > before",
    );
    assert_eq!(c.result_text().as_deref(), Some("true"), "{}", c.describe());
}

#[test]
fn top_level_await_and_tokio_tasks_that_outlive_their_cell_and_rerun() {
    let mut k = KERNEL.take();
    k.execute_ok(":dep tokio = { version = \"1\", features = [\"full\"] }");

    k.assert_result("async { 6 * 7 }.await", "42");

    let first = k.execute(SPAWN_TICKER);
    assert_eq!(first.status(), "ok", "{}", first.describe());
    ticker_advances_during_a_later_cell(&mut k);

    // Rerunning the spawning cell (evcxr issue 245) must work as the first run did.
    let again = k.execute(SPAWN_TICKER);
    assert_eq!(again.status(), "ok", "{}", again.describe());
    assert!(
        again.stream("stdout").contains("spawned"),
        "{}",
        again.describe()
    );
    ticker_advances_during_a_later_cell(&mut k);
}
