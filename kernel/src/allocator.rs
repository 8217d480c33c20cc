//! The executable's memory allocator: mimalloc in the kernel, the system's in the process that
//! runs cells.
//!
//! rust-analyzer, which evcxr runs inside the kernel for every cell (the type of each variable
//! a cell defines), allocates heavily. With glibc's allocator its analysis of a `let _ = 1;`
//! cell took 13.5 ms here, against 9.2 ms in evcxr_jupyter, which uses mimalloc. The same
//! work on a larger scale (a crate's first analysis) gained as much: kernels started in turns
//! with each allocator, the first `tokio` cell took 2.35–2.53 s against 2.66–2.79 s, and the
//! `let` after it 0.86–0.90 s against 1.12–1.18 s.
//!
//! mimalloc is built without its transparent-huge-page advice (the `no_thp` feature): with it,
//! the kernel's start spent 42% of its time in the OS zeroing 2 MiB pages, and the first cell
//! finished after ~5 s instead of ~3 s.
//!
//! The cell runner (this binary again, started by evcxr with `EVCXR_IS_RUNTIME`) keeps the
//! system allocator. The cells it loads are libraries linked against the shared std, which
//! allocates with the system allocator: should memory ever pass between a cell and the runner,
//! both ends then agree on who frees it.
//!
//! The choice is made at the process's first allocation, from the environment it started with
//! (read with `getenv`, which does not allocate), and kept for the process's life: memory is
//! always freed by the allocator that gave it. That first allocation comes before any second
//! thread (starting one allocates) and before any `set_var`, so nothing changes the variable
//! meanwhile. mimalloc's C constructor still runs in the runner; nothing there allocates from
//! it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU8, Ordering};

/// The allocator of the `kettle` executable (see the module docs).
pub struct KernelAllocator;

const UNDECIDED: u8 = 0;
const MIMALLOC: u8 = 1;
const SYSTEM: u8 = 2;

static CHOICE: AtomicU8 = AtomicU8::new(UNDECIDED);

/// Whether this process allocates with mimalloc, deciding on the first call.
#[inline]
fn mimalloc() -> bool {
    match CHOICE.load(Ordering::Relaxed) {
        MIMALLOC => true,
        SYSTEM => false,
        _ => decide(),
    }
}

#[cold]
fn decide() -> bool {
    // SAFETY: a NUL-terminated name; getenv neither allocates nor keeps the pointer, and this
    // runs before any second thread or `set_var` (see the module docs).
    let runner = !unsafe { libc::getenv(crate::engine::runtime::RUNNER_ENV.as_ptr()) }.is_null();
    let choice = if runner { SYSTEM } else { MIMALLOC };
    // The first decision stands, whoever makes it: the choice can never change once made.
    let settled =
        match CHOICE.compare_exchange(UNDECIDED, choice, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => choice,
            Err(earlier) => earlier,
        };
    settled == MIMALLOC
}

/// The allocator a process with this choice uses for everything.
#[inline]
fn allocator(mimalloc: bool) -> &'static dyn GlobalAlloc {
    if mimalloc {
        &mimalloc::MiMalloc
    } else {
        &System
    }
}

// SAFETY: `CHOICE` is settled once, at the first allocation, so every block is freed or resized
// by the allocator that made it.
unsafe impl GlobalAlloc for KernelAllocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        unsafe { allocator(mimalloc()).alloc(layout) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        unsafe { allocator(mimalloc()).alloc_zeroed(layout) }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { allocator(mimalloc()).dealloc(ptr, layout) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        unsafe { allocator(mimalloc()).realloc(ptr, layout, new_size) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    unsafe extern "C" {
        /// mimalloc's own answer to "is this block one of mine?" (linked with the crate).
        fn mi_is_in_heap_region(p: *const std::ffi::c_void) -> bool;
    }

    /// Whether mimalloc made the block at `ptr`.
    fn from_mimalloc(ptr: *mut u8) -> bool {
        // SAFETY: a query on an address; mimalloc reads only its own bookkeeping.
        unsafe { mi_is_in_heap_region(ptr.cast()) }
    }

    /// Every operation of both routes: sizes and alignments from small to page-sized, each
    /// block made by the allocator its route names, contents kept across growing and
    /// shrinking, zeroed memory zeroed.
    #[test]
    fn each_route_allocates_resizes_and_frees_with_its_own_allocator() {
        for mimalloc in [true, false] {
            let chosen = allocator(mimalloc);
            for align in [1, 8, 64, 4096] {
                for size in [1, 24, 1000, 70_000] {
                    let layout = Layout::from_size_align(size, align).unwrap();
                    // SAFETY: non-zero sizes; every pointer is checked, used within its layout
                    // and freed once, by the allocator that made it.
                    unsafe {
                        let zeroed = chosen.alloc_zeroed(layout);
                        assert!(!zeroed.is_null() && (zeroed as usize).is_multiple_of(align));
                        assert_eq!(from_mimalloc(zeroed), mimalloc);
                        assert!(
                            std::slice::from_raw_parts(zeroed, size)
                                .iter()
                                .all(|&b| b == 0)
                        );
                        chosen.dealloc(zeroed, layout);

                        let block = chosen.alloc(layout);
                        assert!(!block.is_null() && (block as usize).is_multiple_of(align));
                        assert_eq!(from_mimalloc(block), mimalloc);
                        for i in 0..size {
                            *block.add(i) = (i % 251) as u8;
                        }
                        let grown = chosen.realloc(block, layout, size * 3);
                        assert!(!grown.is_null() && (grown as usize).is_multiple_of(align));
                        assert_eq!(from_mimalloc(grown), mimalloc);
                        let grown_layout = Layout::from_size_align(size * 3, align).unwrap();
                        let shrunk = chosen.realloc(grown, grown_layout, size.div_ceil(2));
                        assert!(!shrunk.is_null());
                        let kept = std::slice::from_raw_parts(shrunk, size.div_ceil(2));
                        assert!(kept.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
                        chosen.dealloc(
                            shrunk,
                            Layout::from_size_align(size.div_ceil(2), align).unwrap(),
                        );
                    }
                }
            }
        }
    }

    fn runner_env() -> &'static std::ffi::OsStr {
        use std::os::unix::ffi::OsStrExt;
        std::ffi::OsStr::from_bytes(crate::engine::runtime::RUNNER_ENV.to_bytes())
    }

    /// Set in the copies of this test binary that [`PROBE`] runs.
    const PROBE_ENV: &str = "KETTLE_ALLOCATOR_PROBE";
    const PROBE: &str = "allocator::tests::probe_reports_the_choice";

    /// In a copy of the test binary started by the test below: prints this process's choice.
    /// Elsewhere it has nothing to do.
    #[test]
    fn probe_reports_the_choice() {
        if std::env::var_os(PROBE_ENV).is_some() {
            println!("kettle-allocator mimalloc={}", mimalloc());
        }
    }

    /// What a process with `runtime` set or not (evcxr's mark of the cell runner) chooses,
    /// asked of a fresh process: the choice is made once per process.
    fn choice_of_a_process(runtime: bool) -> bool {
        let mut probe = std::process::Command::new(std::env::current_exe().unwrap());
        probe
            .args(["--exact", PROBE, "--nocapture", "--test-threads=1"])
            .env(PROBE_ENV, "1")
            .env_remove(runner_env());
        if runtime {
            probe.env(runner_env(), "1");
        }
        let out = probe.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}");
        // The harness prints the test's name on the same line, before the test's output.
        let said = stdout
            .split_once("kettle-allocator mimalloc=")
            .and_then(|(_, rest)| rest.split_whitespace().next());
        match said {
            Some("true") => true,
            Some("false") => false,
            _ => panic!("the probe printed no choice: {stdout}"),
        }
    }

    #[test]
    fn the_kernel_chooses_mimalloc_and_the_cell_runner_the_system_allocator() {
        assert!(choice_of_a_process(false));
        assert!(!choice_of_a_process(true));
    }
}
