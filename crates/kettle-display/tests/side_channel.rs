//! End-to-end check of the kernel contract: a child process (this test binary, re-run) writes
//! to `KETTLE_DISPLAY_FD` from many threads; every line must be whole, valid JSON.

use std::process::Command;

const CHILD: &str = "KETTLE_DISPLAY_TEST_CHILD";

#[test]
fn child_writes_display_ops() {
    if std::env::var_os(CHILD).is_none() {
        return; // only meaningful when spawned by `lines_from_many_threads_never_interleave`
    }
    let big = "x".repeat(20_000);
    std::thread::scope(|s| {
        for t in 0..8 {
            let big = &big;
            s.spawn(move || {
                for i in 0..50 {
                    let h = kettle_display::display(kettle_display::html(format!(
                        "<b>{t}/{i}</b>{big}"
                    )));
                    h.update(format!("thread {t} item {i}"));
                }
            });
        }
    });
    kettle_display::clear_output(true);
}

#[cfg(unix)]
#[test]
fn lines_from_many_threads_never_interleave() {
    let exe = std::env::current_exe().unwrap();
    // fd 1 of the child is our pipe; the test harness's own chatter also lands there, so keep
    // only lines that look like ours.
    let out = Command::new(exe)
        .args([
            "--exact",
            "child_writes_display_ops",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .env("KETTLE_DISPLAY_FD", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let mut ids = std::collections::HashMap::new();
    let (mut displays, mut updates, mut clears) = (0, 0, 0);
    // The harness prints "test child_writes_display_ops ... " without a newline, so our first
    // line may follow it on the same line.
    for line in stdout
        .lines()
        .filter_map(|l| l.find("{\"op\"").map(|at| &l[at..]))
    {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("bad line ({e}): {}", &line[..line.len().min(200)]));
        match v["op"].as_str().unwrap() {
            "display" => {
                displays += 1;
                assert!(v["data"]["text/html"].as_str().unwrap().len() > 20_000);
                ids.insert(v["display_id"].as_str().unwrap().to_owned(), 0);
            }
            "update" => {
                updates += 1;
                *ids.get_mut(v["display_id"].as_str().unwrap())
                    .expect("update after display") += 1;
            }
            "clear" => {
                clears += 1;
                assert_eq!(v["wait"], true);
            }
            other => panic!("unknown op {other}"),
        }
    }
    assert_eq!((displays, updates, clears), (400, 400, 1));
    assert!(ids.values().all(|n| *n == 1));
}
