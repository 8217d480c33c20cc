//! Output floods (issue 4, item 7): a cell printing a million lines or fifty threads printing as
//! fast as they can leave the kernel responsive, stream messages are coalesced, output below the
//! per-cell cap arrives whole, and past the cap one notice says how much was not shown.

use crate::util::{Channel, Collected, EXECUTE_TIMEOUT, Msg, SharedKernel};
use serde_json::json;
use std::time::{Duration, Instant};

static KERNEL: SharedKernel = SharedKernel::new(2);

/// The budget is about 50 stream messages per second per stream; 60 leaves room for a
/// message that straddles a window edge.
const MAX_MESSAGES_PER_SECOND: usize = 60;

/// Seconds since midnight from a header's ISO 8601 `date`: when the kernel *sent* a message,
/// which, unlike our arrival stamps, does not bunch up while the client is busy elsewhere.
fn sent_at(m: &Msg) -> f64 {
    let date = m.header["date"].as_str().unwrap_or("");
    let time = date.split('T').nth(1).unwrap_or("");
    let time = time.trim_end_matches('Z');
    let time = time.split('+').next().unwrap_or(time);
    let mut parts = time.split(':');
    let mut field = || -> f64 { parts.next().and_then(|p| p.parse().ok()).unwrap_or(0.0) };
    let (h, m, s) = (field(), field(), field());
    h * 3600.0 + m * 60.0 + s
}

/// The most stream messages of one stream sent within any one-second window.
fn busiest_second(c: &Collected, name: &str) -> usize {
    let mut times: Vec<f64> = c
        .of_type("stream")
        .iter()
        .filter(|m| m.content["name"] == name)
        .map(|m| sent_at(m))
        .collect();
    times.sort_by(f64::total_cmp);
    let mut best = 0;
    let mut start = 0;
    for end in 0..times.len() {
        while times[end] - times[start] >= 1.0 {
            start += 1;
        }
        best = best.max(end - start + 1);
    }
    best
}

#[test]
fn a_million_lines_keep_the_kernel_responsive_and_end_with_one_truncation_notice() {
    let mut k = KERNEL.take();
    let id = k.send_execute(json!({
        "code": "for i in 0..1_000_000 { println!(\"line {i}\"); }"
    }));
    // While the flood runs, the heartbeat and the control channel must keep answering.
    let deadline = Instant::now() + EXECUTE_TIMEOUT;
    let mut pings = 0;
    let reply = loop {
        assert!(
            k.heartbeat(Duration::from_secs(2)),
            "heartbeat silent for 2 s during the flood (after {pings} pings)"
        );
        pings += 1;
        let info = k.send(Channel::Control, "kernel_info_request", json!({}));
        assert!(
            k.try_reply(Channel::Control, &info, Duration::from_secs(2))
                .is_some(),
            "control channel silent for 2 s during the flood"
        );
        if let Some(reply) = k.try_reply(Channel::Shell, &id, Duration::from_millis(100)) {
            break reply;
        }
        assert!(Instant::now() < deadline, "the flood never finished");
    };
    let c = Collected {
        iopub: k.iopub_until_idle(&id, EXECUTE_TIMEOUT),
        msg_id: id,
        reply,
    };
    assert_eq!(c.status(), "ok", "{}", c.reply.content);

    for name in ["stdout", "stderr"] {
        let busiest = busiest_second(&c, name);
        assert!(
            busiest <= MAX_MESSAGES_PER_SECOND,
            "{busiest} {name} messages within one second"
        );
    }

    // Below the cap nothing is dropped: what is shown is the start of the output, whole.
    let out = c.stream("stdout");
    let shown_lines: Vec<&str> = out.lines().collect();
    assert!(
        shown_lines.len() > 1000,
        "only {} lines shown",
        shown_lines.len()
    );
    let complete = if out.ends_with('\n') {
        shown_lines.len()
    } else {
        shown_lines.len() - 1
    };
    for (i, line) in shown_lines[..complete].iter().enumerate() {
        assert_eq!(*line, format!("line {i}"), "line {i} of the shown output");
    }

    // Past it, one notice whose count adds up with what was shown.
    let err = c.stream("stderr");
    assert_eq!(
        err.matches("output truncated").count(),
        1,
        "expected one truncation notice on stderr, got {err:?}"
    );
    let total: usize = (0..1_000_000).map(|i| format!("line {i}\n").len()).sum();
    let hidden: usize = err
        .split("output truncated: ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no byte count in the notice {err:?}"));
    assert_eq!(
        out.len() + hidden,
        total,
        "shown ({}) + not shown ({hidden}) != printed ({total})",
        out.len()
    );

    k.assert_result("1 + 1", "2");
}

#[test]
fn fifty_threads_printing_at_full_speed_complete_with_every_line_in_order() {
    let mut k = KERNEL.take();
    let c = k.execute(
        "let handles: Vec<_> = (0..50).map(|t| std::thread::spawn(move || {\n\
             for i in 0..2_000 { println!(\"t{t} {i}\"); }\n\
         })).collect();\n\
         for h in handles { h.join().unwrap(); }",
    );
    assert_eq!(c.status(), "ok", "{}", c.describe());
    let out = c.stream("stdout");
    let mut next = [0usize; 50];
    let mut lines = 0;
    for line in out.lines() {
        let (t, i) = line
            .strip_prefix('t')
            .and_then(|rest| rest.split_once(' '))
            .and_then(|(t, i)| Some((t.parse::<usize>().ok()?, i.parse::<usize>().ok()?)))
            .unwrap_or_else(|| panic!("garbled line {line:?}"));
        assert_eq!(i, next[t], "thread {t}'s lines out of order");
        next[t] += 1;
        lines += 1;
    }
    assert_eq!(lines, 100_000, "lines shown");
    assert!(
        busiest_second(&c, "stdout") <= MAX_MESSAGES_PER_SECOND,
        "{} stdout messages within one second",
        busiest_second(&c, "stdout")
    );

    k.assert_result("1 + 1", "2");
}
