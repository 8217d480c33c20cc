//! Entry point for the processes evcxr makes out of our own binary.
//!
//! evcxr re-executes the current executable in two roles: as the process that loads and runs
//! compiled cells (`EVCXR_IS_RUNTIME` set) and as a wrapper around rustc
//! (`EVCXR_RUSTC_WRAPPER` set). `main()` must call [`dispatch_if_child`] before anything else:
//! otherwise the child would start a second kernel, which would start another child, and so on.

/// Takes over the process when it was started by evcxr as the code runner or rustc wrapper;
/// returns (doing nothing) in the kernel itself.
pub fn dispatch_if_child() {
    evcxr::runtime_hook();
}
