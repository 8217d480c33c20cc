//! Link settings for the `kettle` executable.

fn main() {
    // Export the executable's `write` and `writev` (defined in src/main.rs) to the dynamic
    // linker, so cell libraries loaded later bind to them instead of libc's: the child runtime
    // routes what cells print through one ordered channel (src/engine/channel.rs).
    for symbol in ["write", "writev"] {
        println!("cargo:rustc-link-arg-bin=kettle=-Wl,--export-dynamic-symbol={symbol}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
