//! One compilation instead of two for cells that end in a plain value.
//!
//! evcxr shows a cell's final expression by compiling `(expr).evcxr_display();` first and, when
//! that does not compile (the value has no such method: true of almost every value), compiling
//! the cell again with the value formatted by `{:?}` (evcxr's "fallback"). The failed attempt
//! costs a cargo build: ~0.09 s of a ~0.2 s cell, more once big dependencies are linked.
//!
//! This module gives the common standard types an `evcxr_display` that prints exactly what the
//! fallback prints (the same `EVCXR_BEGIN_CONTENT text/plain` block with `{:?}`), through a trait
//! the engine defines as evcxr items ([`ITEMS`]) before the first cell (again when idle after
//! `:clear` dropped them). A cell ending in such a value then compiles once, and shows what it
//! showed before.
//!
//! Left out on purpose, so that nothing ever shows differently:
//! - `String` and `str`: `kettle_display` implements its `Rich` for them, and with its
//!   `RichValue` in scope two `evcxr_display` methods would be ambiguous;
//! - `Box`, `Rc`, `Arc` and references to other types: they dereference to the value, whose own
//!   `evcxr_display` (a `Rich` type's, say) must be the one found;
//! - user types: evcxr's fallback still runs for them, as before.
//!
//! `:fmt` and `:types` change how the fallback formats values; a kernel that saw either turns
//! the trait into an empty one, so the fallback always runs. `KETTLE_VALUE_DISPLAY=0` leaves
//! it out altogether.
//!
//! Cost: the module is part of every cell's crate, 2–6 ms more for a `let _ = 1;` cell: cargo
//! builds of that cell alternated with and without it, 30 each, took 0.0977 and 0.0959 s; whole
//! kernels, 0.100–0.106 s and 0.095–0.100 s. rust-analyzer's analysis of a cell is the same with
//! it. A cell ending in a vector takes ~0.12–0.15 s instead of ~0.22 s.
//!
//! Writing the module's file whole only for cells that end in a value, and the empty trait
//! otherwise, was tried: each switch made rustc's incremental compile redo much of the crate,
//! and a statement cell after a value cell took 0.18 s instead of 0.12 s.

/// The module holding the trait. Its source is a file of its own next to evcxr's `src/lib.rs`,
/// not an item in it: when a value's type lacks the method, rustc adds a note pointing at the
/// trait, and evcxr, seeing a note in what it counts as the user's code, would report that note
/// as the cell's error instead of falling back. A note in another file is not the user's code.
pub(super) const MODULE: &str = "kettle_value_display";

/// The items evcxr keeps: the module (from its file) and the `use` that brings the trait into
/// scope in every cell.
pub(super) const ITEMS: &str = "mod kettle_value_display;\nuse kettle_value_display::Show as _;";

/// The module's source: the trait and its implementations.
const SOURCE: &str = r#"//! Written by the kettle kernel (engine/value_display.rs): shows a cell's final value as
//! evcxr's `{:?}` fallback does, so that the cell compiles once instead of twice.
use std::fmt::Debug;

pub trait Show {
    fn evcxr_display(&self);
}

fn send<T: Debug + ?Sized>(value: &T) {
    use std::io::Write;
    let text = format!("{:?}", value);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let sent = out
        .write_all(b"EVCXR_BEGIN_CONTENT text/plain\n")
        .and_then(|()| out.write_all(text.as_bytes()))
        .and_then(|()| out.write_all(b"\nEVCXR_END_CONTENT\n"));
    if let Err(error) = sent {
        eprintln!("Failed to send content to parent: {:?}", error);
        std::process::exit(1);
    }
}

macro_rules! show {
    ($(impl[$($generics:tt)*] $ty:ty;)*) => {$(
        impl<$($generics)*> Show for $ty {
            #[inline]
            fn evcxr_display(&self) {
                send(self)
            }
        }
    )*};
}

show! {
    impl[] i8; impl[] i16; impl[] i32; impl[] i64; impl[] i128; impl[] isize;
    impl[] u8; impl[] u16; impl[] u32; impl[] u64; impl[] u128; impl[] usize;
    impl[] f32; impl[] f64; impl[] bool; impl[] char; impl[] ();
    impl[] std::time::Duration; impl[] std::time::Instant; impl[] std::time::SystemTime;
    impl[] std::path::PathBuf; impl[] std::path::Path;
    impl[T: Debug] Vec<T>; impl[T: Debug] [T]; impl[T: Debug, const N: usize] [T; N];
    impl[T: Debug] std::collections::VecDeque<T>; impl[T: Debug] Option<T>;
    impl[T: Debug, E: Debug] Result<T, E>;
    impl[K: Debug, V: Debug, S] std::collections::HashMap<K, V, S>;
    impl[K: Debug, V: Debug] std::collections::BTreeMap<K, V>;
    impl[T: Debug, S] std::collections::HashSet<T, S>;
    impl[T: Debug] std::collections::BTreeSet<T>;
    impl[A: Debug, B: Debug] (A, B);
    impl[A: Debug, B: Debug, C: Debug] (A, B, C);
    impl[A: Debug, B: Debug, C: Debug, D: Debug] (A, B, C, D);
}
"#;

/// The source after `:fmt` or `:types`: the trait without its method, so the `use` item stays
/// valid and evcxr's fallback formats every value.
const DISABLED_SOURCE: &str =
    "//! Written by the kettle kernel: turned off by `:fmt` or `:types`.\npub trait Show {}\n";

/// Makes sure the module's file in evcxr's crate directory `crate_dir` holds the enabled or the
/// turned-off source. Every cell's crate includes the module once it is defined, so the file
/// must stay there for as long as the kernel lives.
pub(super) fn write_source(crate_dir: &std::path::Path, enabled: bool) -> std::io::Result<()> {
    let path = crate_dir.join("src").join(format!("{MODULE}.rs"));
    let want = if enabled { SOURCE } else { DISABLED_SOURCE };
    if std::fs::read_to_string(&path).is_ok_and(|have| have == want) {
        return Ok(());
    }
    std::fs::create_dir_all(crate_dir.join("src"))?;
    std::fs::write(path, want)
}

/// Whether a cell changes how evcxr formats values (`:fmt`, `:types`).
pub(super) fn changes_formatting(code: &str) -> bool {
    super::commands::mentioned(code, &[":fmt", ":types"])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_commands_are_recognised_and_nothing_else() {
        assert!(changes_formatting(":fmt {:#?}"));
        assert!(changes_formatting("let x = 1;\n  :types"));
        assert!(!changes_formatting("let fmt = 1;\n\":fmt\""));
        assert!(!changes_formatting(":typeset"));
    }

    #[test]
    fn the_items_name_the_module_they_define() {
        assert!(ITEMS.starts_with(&format!("mod {MODULE};")));
        assert!(ITEMS.ends_with(&format!("use {MODULE}::Show as _;")));
    }

    #[test]
    fn the_file_is_written_once_and_switched_off() {
        let dir = std::env::temp_dir().join(format!("kettle-value-display-{}", std::process::id()));
        let file = dir.join("src").join(format!("{MODULE}.rs"));
        write_source(&dir, true).unwrap();
        assert!(
            std::fs::read_to_string(&file)
                .unwrap()
                .contains("fn evcxr_display")
        );
        write_source(&dir, false).unwrap();
        let off = std::fs::read_to_string(&file).unwrap();
        assert!(off.contains("pub trait Show {}") && !off.contains("fn evcxr_display"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
