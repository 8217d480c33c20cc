//! CPU time used by this process (user and system), through `getrusage(2)`.
//!
//! std already links the C library on Unix, so a two-line `extern "C"` binding is enough and we
//! avoid a dependency on the `libc` crate (which every notebook would have to build).

use std::time::Duration;

/// User and system CPU time of the whole process (all threads) so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuTimes {
    /// Time spent running this process's own code.
    pub user: Duration,
    /// Time the kernel spent working on behalf of this process (syscalls, page faults).
    pub system: Duration,
}

impl CpuTimes {
    /// Reads the current totals, or `None` on platforms where we have no binding.
    pub fn now() -> Option<CpuTimes> {
        imp::now()
    }

    /// User + system.
    pub fn total(&self) -> Duration {
        self.user + self.system
    }

    /// The CPU time spent between `earlier` and `self`.
    pub fn since(&self, earlier: &CpuTimes) -> CpuTimes {
        CpuTimes {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
    }
}

#[cfg(target_os = "linux")]
mod imp {
    use super::CpuTimes;
    use std::time::Duration;

    /// `struct timeval`: on Linux both fields are C `long`.
    #[repr(C)]
    #[derive(Default, Clone, Copy)]
    struct TimeVal {
        sec: isize,
        usec: isize,
    }

    /// `struct rusage`: two timevals then fourteen `long` counters we do not read.
    #[repr(C)]
    #[derive(Default)]
    struct RUsage {
        utime: TimeVal,
        stime: TimeVal,
        _rest: [isize; 14],
    }

    unsafe extern "C" {
        fn getrusage(who: i32, usage: *mut RUsage) -> i32;
    }

    const RUSAGE_SELF: i32 = 0;

    fn to_duration(tv: TimeVal) -> Duration {
        Duration::from_secs(tv.sec.max(0) as u64) + Duration::from_micros(tv.usec.max(0) as u64)
    }

    pub(super) fn now() -> Option<CpuTimes> {
        let mut usage = RUsage::default();
        // SAFETY: `usage` is a properly sized, writable `struct rusage`.
        let rc = unsafe { getrusage(RUSAGE_SELF, &mut usage) };
        (rc == 0).then(|| CpuTimes {
            user: to_duration(usage.utime),
            system: to_duration(usage.stime),
        })
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use super::CpuTimes;
    pub(super) fn now() -> Option<CpuTimes> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn busy_loop_uses_user_time() {
        // Spin until the reading shows 20 ms of CPU: robust on a loaded machine, where a fixed
        // wall-clock loop may get little CPU. Fails only if the reading never moves.
        let before = CpuTimes::now().unwrap();
        let t = std::time::Instant::now();
        let mut x = 0u64;
        let used = loop {
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
            let used = CpuTimes::now().unwrap().since(&before);
            if used.user >= Duration::from_millis(20) || t.elapsed() > Duration::from_secs(10) {
                break used;
            }
        };
        assert!(used.user >= Duration::from_millis(20), "{used:?}");
    }
}
