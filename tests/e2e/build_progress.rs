//! Live progress of a dependency build (issue 7): the cell shows one display, updated in place,
//! naming what is being built and counting the build's crates, then how it ended.
//!
//! The dependency is made fresh for each run (so cargo has to build it): two path crates with a
//! `-` in their names, which evcxr's copy of cargo's output never mentions, and a build script
//! that takes two seconds, so the display is seen while the build runs.

use crate::util::Kernel;
use std::path::{Path, PathBuf};

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// `slow-dep` (build script sleeping 2 s) depending on `tiny-helper`, in a new directory.
fn fresh_crates() -> PathBuf {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let root =
        std::env::temp_dir().join(format!("kettle-e2e-build-{}-{stamp}", std::process::id()));
    write(
        &root.join("tiny-helper/Cargo.toml"),
        "[package]\nname = \"tiny-helper\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    );
    write(
        &root.join("tiny-helper/src/lib.rs"),
        "pub fn two() -> i32 { 2 }\n",
    );
    write(
        &root.join("slow-dep/Cargo.toml"),
        "[package]\nname = \"slow-dep\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
         [dependencies]\ntiny-helper = { path = \"../tiny-helper\" }\n",
    );
    write(
        &root.join("slow-dep/build.rs"),
        "fn main() { std::thread::sleep(std::time::Duration::from_secs(2)); }\n",
    );
    write(
        &root.join("slow-dep/src/lib.rs"),
        "pub fn four() -> i32 { tiny_helper::two() * 2 }\n",
    );
    root
}

#[test]
fn a_dependency_build_shows_what_is_built_and_counts_every_crate() {
    let root = fresh_crates();
    let mut k = Kernel::start();
    let c = k.execute(&format!(
        ":dep slow-dep = {{ path = \"{}\" }}\nslow_dep::four()",
        root.join("slow-dep").display()
    ));
    assert_eq!(c.result_text().as_deref(), Some("4"), "{}", c.describe());

    let builds = c.build_displays();
    let id = |m: &&crate::util::Msg| m.content["transient"]["display_id"].clone();
    assert!(
        !builds.is_empty() && builds.iter().all(|m| id(m) == id(&builds[0])),
        "one build display\n{}",
        c.describe()
    );
    let kinds: Vec<&str> = builds.iter().map(|m| m.msg_type()).collect();
    assert_eq!(kinds[0], "display_data", "{}", c.describe());
    assert!(
        kinds[1..].iter().all(|k| *k == "update_display_data"),
        "{}",
        c.describe()
    );
    let all: Vec<String> = builds
        .iter()
        .map(|m| {
            m.content["data"]["text/plain"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    assert!(
        all.iter()
            .any(|t| t.starts_with("building slow-dep · ") && t.contains("/2 crates")),
        "{all:#?}"
    );
    assert!(
        all.last()
            .unwrap()
            .starts_with("dependencies built · 2/2 crates · "),
        "{all:#?}"
    );
    let _ = std::fs::remove_dir_all(root);
}
