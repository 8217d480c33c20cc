//! Rich display from user code (issue 4, item 3): `kettle-display` calls become `display_data`,
//! `update_display_data` and `clear_output` while the cell runs, from any thread; a `Rich` value
//! is the cell's `execute_result`; evcxr's `EVCXR_BEGIN_CONTENT` blocks each become a display.

use crate::util::{Collected, Msg, SharedKernel};

static KERNEL: SharedKernel = SharedKernel::new(8);

/// `data["text/html"]` of each `display_data`, in order.
fn html_displays(c: &Collected) -> Vec<String> {
    c.of_type("display_data")
        .iter()
        .map(|m| {
            m.content["data"]["text/html"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect()
}

fn display_id(m: &Msg) -> &str {
    m.content["transient"]["display_id"].as_str().unwrap_or("")
}

#[test]
fn two_displays_in_one_cell_are_two_display_data_messages() {
    let mut k = KERNEL.take();
    let c = k.execute(
        ":course\n\
         kettle_display::display(kettle_display::html(\"<b>first</b>\"));\n\
         kettle_display::display(kettle_display::html(\"<b>second</b>\"));",
    );
    assert_eq!(c.status(), "ok", "{}", c.describe());
    let htmls = html_displays(&c);
    assert_eq!(
        htmls,
        vec!["<b>first</b>".to_owned(), "<b>second</b>".to_owned()],
        "{}",
        c.describe()
    );
    for m in c.of_type("display_data") {
        assert!(
            m.content["data"]["text/plain"].is_string(),
            "no text/plain fallback: {:#}",
            m.content
        );
    }
}

#[test]
fn a_handle_update_is_update_display_data_with_the_same_display_id() {
    let mut k = KERNEL.take();
    let c = k.execute(
        ":course\n\
         let h = kettle_display::display(kettle_display::html(\"<i>working</i>\"));\n\
         std::thread::sleep(std::time::Duration::from_millis(100));\n\
         h.update(kettle_display::html(\"<i>done</i>\"));",
    );
    assert_eq!(c.status(), "ok", "{}", c.describe());
    let shown = c.of_type("display_data");
    let updates = c.of_type("update_display_data");
    assert_eq!(shown.len(), 1, "{}", c.describe());
    assert_eq!(updates.len(), 1, "{}", c.describe());
    let id = display_id(shown[0]);
    assert!(!id.is_empty(), "display_data without transient.display_id");
    assert_eq!(display_id(updates[0]), id, "{}", c.describe());
    assert_eq!(updates[0].content["data"]["text/html"], "<i>done</i>");
    // The display is shown while the cell runs, before the update replaces it.
    assert!(shown[0].arrived <= updates[0].arrived);
}

#[test]
fn clear_output_is_published_with_its_wait_flag() {
    let mut k = KERNEL.take();
    let c = k.execute(
        ":course\n\
         println!(\"old\");\n\
         kettle_display::clear_output(true);\n\
         kettle_display::display(kettle_display::html(\"<p>new</p>\"));",
    );
    assert_eq!(c.status(), "ok", "{}", c.describe());
    let clears = c.of_type("clear_output");
    assert_eq!(clears.len(), 1, "{}", c.describe());
    assert_eq!(clears[0].content["wait"], true);
    assert_eq!(html_displays(&c), vec!["<p>new</p>".to_owned()]);
}

#[test]
fn a_display_from_a_spawned_thread_is_shown_on_the_cell() {
    let mut k = KERNEL.take();
    let c = k.execute(
        ":course\n\
         std::thread::Builder::new().name(\"painter\".into()).spawn(|| {\n\
             kettle_display::display(kettle_display::svg(\"<svg xmlns='http://www.w3.org/2000/svg'/>\"));\n\
         }).unwrap().join().unwrap();",
    );
    assert_eq!(c.status(), "ok", "{}", c.describe());
    let shown = c.of_type("display_data");
    assert_eq!(shown.len(), 1, "{}", c.describe());
    assert!(
        shown[0].content["data"]["image/svg+xml"]
            .as_str()
            .unwrap_or("")
            .contains("<svg"),
        "{:#}",
        shown[0].content
    );
}

/// Defines `ty` with a `Rich` bundle of "N points"; `how` gives it its `evcxr_display`.
fn define_score(k: &mut crate::util::Kernel, ty: &str, how: &str) {
    k.execute_ok(&format!(
        ":course\n\
         struct {ty}(u32);\n\
         impl kettle_display::Rich for {ty} {{\n\
             fn bundle(&self) -> kettle_display::Bundle {{\n\
                 kettle_display::Bundle::text(format!(\"{{}} points\", self.0))\n\
                     .with_html(format!(\"<b>{{}}</b> points\", self.0))\n\
             }}\n\
         }}\n\
         {how}"
    ));
}

fn assert_rich_result(c: &Collected) {
    assert_eq!(c.status(), "ok", "{}", c.describe());
    let results = c.of_type("execute_result");
    assert_eq!(results.len(), 1, "{}", c.describe());
    assert_eq!(results[0].content["data"]["text/html"], "<b>7</b> points");
    assert_eq!(results[0].content["data"]["text/plain"], "7 points");
    assert!(c.of_type("display_data").is_empty(), "{}", c.describe());
}

#[test]
fn a_rich_value_is_the_cells_execute_result() {
    let mut k = KERNEL.take();
    define_score(
        &mut k,
        "Score",
        "impl Score {\n\
             pub fn evcxr_display(&self) { kettle_display::show_as_value(self) }\n\
         }",
    );
    let c = k.execute("Score(7)");
    assert_rich_result(&c);
}

#[test]
fn a_type_implementing_rich_in_one_cell_shows_richly_in_a_later_cell() {
    let mut k = KERNEL.take();
    // What notebooks do: implement `Rich` in one cell (with the crate's prelude in scope) and
    // show a value in a later one.
    define_score(&mut k, "Points", "use kettle_display::*;");
    let c = k.execute("Points(7)");
    assert_rich_result(&c);
}

#[test]
fn two_evcxr_content_blocks_are_two_separate_displays() {
    let mut k = KERNEL.take();
    let c = k.execute(
        "println!(\"EVCXR_BEGIN_CONTENT text/html\\n<p>block one</p>\\nEVCXR_END_CONTENT\");\n\
         println!(\"between\");\n\
         println!(\"EVCXR_BEGIN_CONTENT text/html\\n<p>block two</p>\\nEVCXR_END_CONTENT\");",
    );
    assert_eq!(c.status(), "ok", "{}", c.describe());
    let htmls: Vec<String> = html_displays(&c)
        .iter()
        .map(|h| h.trim_end().to_owned())
        .collect();
    assert_eq!(
        htmls,
        vec!["<p>block one</p>".to_owned(), "<p>block two</p>".to_owned()],
        "{}",
        c.describe()
    );
    let out = c.stream("stdout");
    assert!(out.contains("between"), "{}", c.describe());
    assert!(
        !out.contains("EVCXR_"),
        "markers leaked into stdout\n{}",
        c.describe()
    );
}

#[test]
fn text_and_displays_appear_in_the_order_the_cell_made_them() {
    let mut k = KERNEL.take();
    let c = k.execute(
        ":course\n\
         for i in 0..5 {\n\
             println!(\"text {i}\");\n\
             kettle_display::display(kettle_display::html(format!(\"<b>{i}</b>\")));\n\
         }\n\
         eprintln!(\"done\");",
    );
    assert_eq!(c.status(), "ok", "{}", c.describe());
    // Everything in publication order, as a frontend shows it.
    let mut shown = Vec::new();
    for m in &c.iopub {
        match m.msg_type() {
            "stream" => shown.extend(
                m.content["text"]
                    .as_str()
                    .unwrap_or("")
                    .lines()
                    .map(str::to_owned),
            ),
            "display_data" => shown.push(
                m.content["data"]["text/html"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
            ),
            _ => {}
        }
    }
    let mut expected: Vec<String> = (0..5)
        .flat_map(|i| [format!("text {i}"), format!("<b>{i}</b>")])
        .collect();
    expected.push("done".to_owned());
    assert_eq!(shown, expected, "{}", c.describe());
}
