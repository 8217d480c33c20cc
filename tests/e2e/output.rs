//! Output delivery: streams arrive while the cell runs, and a flood neither hangs nor loses
//! lines.

use crate::util::SharedKernel;

static KERNEL: SharedKernel = SharedKernel::new(2);

#[test]
fn output_printed_while_a_cell_runs_arrives_before_the_cell_ends() {
    let mut k = KERNEL.take();
    let c = k.execute(
        "println!(\"early\");\n\
         std::thread::sleep(std::time::Duration::from_secs(1));\n\
         println!(\"late\");",
    );
    assert_eq!(c.status(), "ok", "{}", c.describe());
    let streams = c.of_type("stream");
    let text = |m: &&crate::util::Msg| m.content["text"].as_str().unwrap_or("").to_owned();
    let early = streams
        .iter()
        .find(|m| text(m).contains("early"))
        .unwrap_or_else(|| panic!("no early line\n{}", c.describe()));
    let late = streams
        .iter()
        .find(|m| text(m).contains("late"))
        .unwrap_or_else(|| panic!("no late line\n{}", c.describe()));
    assert!(
        !text(early).contains("late"),
        "early and late came in one message: output was held until the cell ended"
    );
    let idle = c.iopub.last().expect("idle");
    assert!(early.arrived < late.arrived && late.arrived <= idle.arrived);
    // The one-second sleep separates the two lines; the end of the cell follows the late
    // line closely. So the early line is far (relatively) from the end of the cell.
    let early_to_late = late.arrived - early.arrived;
    let late_to_reply = c.reply.arrived.saturating_duration_since(late.arrived);
    assert!(
        early_to_late > late_to_reply,
        "early line not streamed ahead: early->late {early_to_late:?}, late->reply \
         {late_to_reply:?}"
    );
}

#[test]
fn a_cell_printing_100k_lines_completes_with_all_lines() {
    let mut k = KERNEL.take();
    let c = k.execute("for i in 0..100_000 { println!(\"line {i}\"); }");
    assert_eq!(c.status(), "ok", "{}", c.reply.content);
    let out = c.stream("stdout");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 100_000, "stdout has {} lines", lines.len());
    assert_eq!(lines.first(), Some(&"line 0"));
    assert_eq!(lines.last(), Some(&"line 99999"));
}
