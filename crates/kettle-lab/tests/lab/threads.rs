//! Notebook 01 ("Threads") without Jupyter: every Rust cell of `notebooks/01-threads.ipynb`
//! lives here, between `// [cell ID]` and `// [end]`, and runs as an ordinary test.
//!
//! `notebooks/tools/build_notebook.py` copies each region (dedented) into the notebook, so the
//! code a learner reads is the code these tests compile and check. A region is a cell: items and
//! statements, evaluated top to bottom; regions of one test share variables the way the
//! notebook's cells share them. The X1 cells that must *not* compile are files in
//! `compile_fail/`, checked against rustc's error codes by [`x1_races_are_compile_errors`].

// [cell setup]
use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex, mpsc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use kettle_lab::*;
use kettle_timing::{Compare, Timeline};
// [end]

/// The tests have nobody at the keyboard: this shadows `kettle_lab::keyboard` inside the
/// InputReader test, as the kernel's end-of-file stdin does in an unattended notebook run.
fn unattended_keyboard() -> impl std::io::BufRead + Send + 'static {
    Keyboard::with_typist_speed(std::io::empty(), Duration::from_millis(10))
}

#[test]
fn x0_the_kettle_boils_while_we_fetch_cups() {
    // [cell X0]
    const BOIL: Duration = Duration::from_millis(1000);
    const PER_CUP: Duration = Duration::from_millis(200);

    /// The kettle: one long wait with nothing for the CPU to do, then the whistle.
    fn boil_water() -> &'static str {
        thread::sleep(BOIL);
        "the kettle whistles"
    }

    /// Fetching the cups, one after another.
    fn fetch_cups(n: u32) -> u32 {
        for _ in 0..n {
            thread::sleep(PER_CUP);
        }
        n
    }

    // One step at a time: wait for the water, then fetch the cups.
    let start = Instant::now();
    let whistle = boil_water();
    let cups = fetch_cups(3);
    let one_by_one = start.elapsed();
    println!("one step at a time: {whistle}, {cups} cups ready after {one_by_one:.2?}");

    // The kettle boils on its own thread while the main thread fetches the cups.
    let start = Instant::now();
    let kettle = thread::spawn(boil_water);
    let cups = fetch_cups(3);
    let whistle = kettle.join().unwrap();
    let together = start.elapsed();
    println!("while the water boils: {whistle}, {cups} cups ready after {together:.2?}");
    // [end]
    assert!(one_by_one >= BOIL + PER_CUP * 3);
    assert!(together < BOIL + PER_CUP * 2, "{together:?}");
}

#[test]
fn c1_c3_input_reader_counts_squares_while_waiting() {
    let keyboard = unattended_keyboard;
    // [cell C1]
    /// The book's `InputReader(Thread)`: `run` reads one line of text into `line_of_text`.
    #[derive(Debug, Default)]
    struct InputReader {
        line_of_text: String,
    }

    impl InputReader {
        /// Reads one line, on whichever thread calls it: that is all `run` ever does.
        fn run(&mut self, keyboard: &mut impl std::io::BufRead) {
            let mut line = String::new();
            // Like input(): end of input gives an empty line; a read error is not worth a panic here.
            let _ = keyboard.read_line(&mut line);
            self.line_of_text = line.trim_end().to_owned();
        }

        /// Python's `start()`: runs `run` on a new thread. The reader moves into the thread and
        /// comes back through `join()`, so the main thread cannot touch it while it is being filled.
        fn start(
            mut self,
            mut keyboard: impl std::io::BufRead + Send + 'static,
        ) -> JoinHandle<Self> {
            thread::spawn(move || {
                self.run(&mut keyboard);
                self
            })
        }
    }

    /// The main thread's loop from the book: square numbers for as long as `busy()` says so.
    /// `u128`, because Rust counts so fast that `count * count` would overflow a `u64`.
    fn count_squares_while(mut busy: impl FnMut() -> bool) -> (u128, u128) {
        let (mut count, mut result) = (1u128, 1u128);
        while busy() {
            result = count * count;
            count += 1;
        }
        (count, result)
    }
    // [end]

    // [cell C2]
    println!("Enter any text and press enter: ");
    let started = Instant::now();
    let thread = InputReader::default().start(keyboard());
    let (count, result) = count_squares_while(|| !thread.is_finished());
    let waited = started.elapsed().as_secs_f64();
    let reader = thread.join().unwrap();

    println!("calculated squares up to {count} * {count} = {result}");
    println!("while you typed '{}'", reader.line_of_text);
    println!(
        "({:.0} million squares per second for {waited:.2} s; Python: about 1.6 million per second)",
        count as f64 / waited / 1e6
    );
    // [end]
    assert_eq!(reader.line_of_text, "hello world");
    assert!(count > 1, "the main thread counted while the reader waited");

    // [cell C3]
    println!("Enter any text and press enter: ");
    let mut reader = InputReader::default();
    reader.run(&mut keyboard()); // like the book's thread.run(): an ordinary call, right here
    let (count, result) = count_squares_while(|| false); // no thread ran, nothing to wait for

    println!("calculated squares up to {count} * {count} = {result}");
    println!("while you typed '{}'", reader.line_of_text);
    // [end]
    assert_eq!((count, result), (1, 1));
    assert_eq!(reader.line_of_text, "hello world");
}

#[test]
fn c4_c5_temp_getter_threads_against_sequential() {
    // [cell C4]
    /// The book's TempGetter: a city, and the temperature (°C) its `run` fetched.
    struct TempGetter {
        city: &'static str,
        temperature: f64,
    }

    impl TempGetter {
        fn new(city: &'static str) -> Self {
            TempGetter {
                city,
                temperature: f64::NAN,
            }
        }

        /// One HTTP GET to the weather server: blocks for the whole round trip.
        fn run(&mut self, base_url: &str) {
            self.temperature =
                get_temperature(base_url, self.city).expect("the weather server answers");
        }
    }

    // A fixed 170 ms per request, as the server of the Python baseline (the default jitters
    // between 150 and 200 ms). The server runs on 127.0.0.1 until it is dropped.
    let latency = Duration::from_millis(170);
    let server = WeatherServer::builder()
        .latency(latency..latency)
        .start()
        .expect("a local weather server");
    let url = server.url();
    let timeline = Timeline::new();

    // As in the book: build the getters on the main thread, then one thread per getter.
    let mut getters: Vec<TempGetter> = CITIES.iter().map(|&city| TempGetter::new(city)).collect();
    let start = Instant::now();
    thread::scope(|s| {
        for getter in &mut getters {
            // Each thread gets exclusive (`&mut`) access to its own getter: no sharing, no lock.
            let (timeline, url) = (&timeline, &url);
            s.spawn(move || timeline.lane(getter.city).span("GET", || getter.run(url)));
        }
    }); // the scope joins every thread before it returns
    let threaded = start.elapsed().as_secs_f64();

    for getter in &getters {
        println!("it is {:.0}°C in {}", getter.temperature, getter.city);
    }
    println!("Got {} temps in {} seconds", getters.len(), threaded);
    // [end]
    assert_eq!(getters[0].temperature.round(), 3.0);

    // [cell C5]
    let mut getters: Vec<TempGetter> = CITIES.iter().map(|&city| TempGetter::new(city)).collect();
    let start = Instant::now();
    for getter in &mut getters {
        timeline
            .lane("main thread")
            .span(getter.city, || getter.run(&url)); // thread.run()
    }
    let sequential = start.elapsed().as_secs_f64();

    for getter in &getters {
        println!("it is {:.0}°C in {}", getter.temperature, getter.city);
    }
    println!("Got {} temps in {} seconds", getters.len(), sequential);
    // [end]
    assert!(threaded * 4.0 < sequential, "{threaded} vs {sequential}");

    // [cell C5-timeline]
    println!(
        "threads: {threaded:.3} s, one after another: {sequential:.3} s, {:.1}× faster \
         (Python here: 0.184 s vs 1.552 s, 8.45×; ideal 9×)",
        sequential / threaded
    );
    timeline.show();
    // [end]

    // [cell C4-shared]
    /// Rust's usual way: each thread *returns* its temperature and `join()` hands it back.
    fn temps_joined(url: &str) -> Vec<(&'static str, f64)> {
        thread::scope(|s| {
            let threads: Vec<_> = CITIES
                .iter()
                .map(|&city| {
                    s.spawn(move || (city, get_temperature(url, city).expect("an answer")))
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        })
    }

    /// The Python way, shared state: every thread writes into one map. Rust insists on the
    /// wrapping: `Arc` so each thread co-owns the map, `Mutex` so one thread writes at a time.
    fn temps_shared(url: &str) -> HashMap<&'static str, f64> {
        let temps = Arc::new(Mutex::new(HashMap::new()));
        let threads: Vec<JoinHandle<()>> = CITIES
            .iter()
            .map(|&city| {
                let (temps, url) = (Arc::clone(&temps), url.to_owned());
                thread::spawn(move || {
                    let temperature = get_temperature(&url, city).expect("an answer");
                    temps.lock().unwrap().insert(city, temperature);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let temps = temps.lock().unwrap();
        temps.clone()
    }

    /// C5 as a function: one request after another.
    fn temps_sequential(url: &str) -> Vec<(&'static str, f64)> {
        CITIES
            .iter()
            .map(|&city| (city, get_temperature(url, city).expect("an answer")))
            .collect()
    }

    let shared = temps_shared(&url);
    println!(
        "Arc<Mutex<HashMap>>: it is {:.0}°C in Edmonton",
        shared["Edmonton"]
    );
    // [end]
    assert_eq!(shared.len(), 9);
    assert_eq!(temps_joined(&url), temps_sequential(&url));

    // [cell C4-compare]
    Compare::new("9 temperatures from the weather server")
        .runs(3)
        .warmup(0)
        .variant("one after another (C5)", || temps_sequential(&url))
        .variant("a thread per city, join()", || temps_joined(&url))
        .variant("a thread per city, Arc<Mutex<HashMap>>", || {
            temps_shared(&url)
        })
        .run();
    // [end]

    // [cell X3]
    let (tx, rx) = mpsc::channel();
    let start = Instant::now();
    for &city in &CITIES {
        let (tx, url) = (tx.clone(), url.clone());
        thread::spawn(move || {
            let temperature = get_temperature(&url, city).expect("an answer");
            tx.send((city, temperature)).expect("main is listening");
        });
    }
    drop(tx); // only the threads hold senders now: the channel ends when the last one is done

    let mut received = 0;
    for (city, temperature) in rx {
        received += 1;
        let at = start.elapsed().as_millis();
        println!("{at:>4} ms  it is {temperature:.0}°C in {city}");
    }
    println!("Got {received} temps, in the order they arrived");
    // [end]
    assert_eq!(received, 9);
}

/// Compiles one X1 cell as a library crate with the notebook's setup imports and returns
/// rustc's diagnostics.
fn rustc_errors(cell: &str) -> String {
    let dir = std::env::temp_dir().join(format!("kettle-x1-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let name = format!("cell{:x}", cell.len() ^ cell.as_ptr() as usize);
    let path = dir.join(format!("{name}.rs"));
    std::fs::write(
        &path,
        format!("#![allow(unused)]\nuse std::thread;\n{cell}"),
    )
    .unwrap();
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(rustc)
        .args([
            "--edition",
            "2024",
            "--crate-type",
            "lib",
            "--emit",
            "metadata",
            "--out-dir",
        ])
        .arg(&dir)
        .arg(&path)
        .output()
        .expect("rustc runs");
    assert!(!out.status.success(), "this cell must not compile:\n{cell}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn x1_races_are_compile_errors() {
    for (cell, code) in [
        (
            include_str!("compile_fail/e0373_borrowed_local.rs"),
            "E0373",
        ),
        (include_str!("compile_fail/e0499_two_writers.rs"), "E0499"),
        (include_str!("compile_fail/e0277_rc_not_send.rs"), "E0277"),
    ] {
        let errors = rustc_errors(cell);
        assert!(
            errors.contains(&format!("error[{code}]")),
            "expected {code}, got:\n{errors}"
        );
    }
}

#[test]
fn x1_move_copies_and_the_three_fixes() {
    // [cell X1-move]
    let mut counter = 0;
    let handle = thread::spawn(move || {
        counter += 1; // `move` copied the integer: this is the thread's own counter
        counter
    });
    println!("the thread counted to {}", handle.join().unwrap());
    println!("main still sees counter = {counter}");
    // [end]
    assert_eq!(counter, 0);

    // [cell X1-fixes]
    const ADDS: u64 = 100_000;

    // Fix 1: an atomic. fetch_add reads, adds and writes as one indivisible step; scoped
    // threads may borrow it, because the scope outlives them.
    let counter = AtomicU64::new(0);
    thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                for _ in 0..ADDS {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    println!(
        "AtomicU64::fetch_add     {}",
        counter.load(Ordering::Relaxed)
    );

    // Fix 2: Arc<Mutex<_>>: shared ownership for 'static threads, one writer at a time.
    let counter = Arc::new(Mutex::new(0u64));
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let counter = Arc::clone(&counter);
            thread::spawn(move || (0..ADDS).for_each(|_| *counter.lock().unwrap() += 1))
        })
        .collect();
    handles.into_iter().for_each(|h| h.join().unwrap());
    println!("Arc<Mutex<u64>>          {}", counter.lock().unwrap());

    // Fix 3: share nothing. Each thread counts on its own; join() returns the result.
    let total: u64 = thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|_| s.spawn(|| (0..ADDS).map(|_| 1).sum::<u64>()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    println!("results through join()   {total}");
    // [end]
    assert_eq!(*counter.lock().unwrap(), 2 * ADDS);
    assert_eq!(total, 2 * ADDS);
}

#[test]
fn x2_races_that_compile_lose_updates() {
    // [cell X2]
    /// The chapter's race: read the value, then write value + 1. Each step is atomic, the
    /// pair is not, so two threads can both read 5 and both write 6.
    fn count_with_load_store(per_thread: u64) -> u64 {
        let counter = AtomicU64::new(0);
        // Both threads wait here and then start together; otherwise the first one may be done
        // before the second exists, and the race would hide (as races like to, in tests).
        let start_line = Barrier::new(2);
        thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    start_line.wait();
                    for _ in 0..per_thread {
                        let seen = counter.load(Ordering::SeqCst);
                        counter.store(seen + 1, Ordering::SeqCst);
                    }
                });
            }
        });
        counter.into_inner()
    }

    /// The fix: one read-modify-write instruction.
    fn count_with_fetch_add(per_thread: u64) -> u64 {
        let counter = AtomicU64::new(0);
        thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    for _ in 0..per_thread {
                        counter.fetch_add(1, Ordering::SeqCst);
                    }
                });
            }
        });
        counter.into_inner()
    }

    /// The other fix: the whole read-add-write happens while holding the lock.
    fn count_with_mutex(per_thread: u64) -> u64 {
        let counter = Mutex::new(0u64);
        thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| (0..per_thread).for_each(|_| *counter.lock().unwrap() += 1));
            }
        });
        counter.into_inner().unwrap()
    }

    let per_thread = 1_000_000;
    let expected = 2 * per_thread;
    for (how, counted) in [
        ("load, then store", count_with_load_store(per_thread)),
        ("fetch_add", count_with_fetch_add(per_thread)),
        ("Mutex", count_with_mutex(per_thread)),
    ] {
        println!(
            "{how:<17} {counted:>9} of {expected} ({} updates lost)",
            expected - counted
        );
    }
    // [end]
    assert!(count_with_load_store(per_thread) <= expected);
    assert_eq!(count_with_fetch_add(per_thread), expected);
    assert_eq!(count_with_mutex(per_thread), expected);
}

#[test]
fn x4_thread_overhead_pool_against_a_thread_per_job() {
    // [cell X4]
    const JOBS: u64 = 10_000;

    /// A new OS thread for every job: create, run, join; 10,000 times.
    fn thread_per_job(stack: Option<usize>) -> u64 {
        (0..JOBS)
            .map(|job| {
                let builder = thread::Builder::new();
                let builder = match stack {
                    Some(bytes) => builder.stack_size(bytes),
                    None => builder, // the default: 2 MiB (or RUST_MIN_STACK)
                };
                builder.spawn(move || job * 2).unwrap().join().unwrap()
            })
            .sum()
    }

    /// A pool: a few long-lived workers take jobs from one channel and send results back.
    fn pool(workers: usize) -> u64 {
        let (jobs_tx, jobs_rx) = mpsc::channel::<u64>();
        let (results_tx, results_rx) = mpsc::channel();
        let jobs_rx = Mutex::new(jobs_rx); // mpsc has one receiver: the workers take turns
        thread::scope(|s| {
            for _ in 0..workers {
                let (jobs_rx, results_tx) = (&jobs_rx, results_tx.clone());
                s.spawn(move || {
                    // The lock is held only while waiting for the next job, not while working.
                    while let Ok(job) = jobs_rx.lock().unwrap().recv() {
                        results_tx.send(job * 2).unwrap();
                    }
                });
            }
            (0..JOBS).for_each(|job| jobs_tx.send(job).unwrap());
            drop(jobs_tx); // no more jobs: each worker's recv() fails once the queue is empty
        });
        drop(results_tx);
        results_rx.iter().sum()
    }

    let cores = thread::available_parallelism().map_or(2, |n| n.get());
    assert_eq!(thread_per_job(None), pool(cores)); // same answers, different costs
    Compare::new("10,000 tiny jobs")
        .runs(3)
        .variant("a new thread per job", || thread_per_job(None))
        .variant("a new thread per job, 64 KiB stack", || {
            thread_per_job(Some(64 * 1024))
        })
        .variant(format!("a pool of {cores} threads"), || pool(cores))
        .run();
    // [end]
}

#[test]
fn x5_no_gil_cpu_work_scales_with_threads() {
    if cfg!(debug_assertions) {
        eprintln!("skipped: X5 is sized for optimised code; run `cargo test --release`");
        return;
    }
    // [cell X5]
    /// The chapter's MuchCPU loop: `iterations` rounds of work the optimiser cannot remove.
    #[inline(never)] // so threads and the worker run the same machine code
    fn much_cpu(iterations: u64) -> u64 {
        let mut x = 0u64;
        for i in 0..iterations {
            x = x.rotate_left(5).wrapping_add(i); // needs the round before: cannot be skipped
        }
        std::hint::black_box(x) // "used", even when the caller ignores it
    }

    const WORK: u64 = 1_000_000_000; // in total, shared out between the workers

    /// MuchCPU on `n` threads of this process, each doing `WORK / n`; their results.
    fn on_threads(n: u64, timeline: &Timeline) -> Vec<u64> {
        thread::scope(|s| {
            let workers: Vec<_> = (0..n)
                .map(|i| {
                    s.spawn(move || timeline.span(format!("MuchCPU {i}"), || much_cpu(WORK / n)))
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).collect()
        })
    }

    /// MuchCPU in `n` child processes (the worker program prints its pid, then its result):
    /// their pids and results.
    fn in_processes(n: u64) -> (Vec<u32>, Vec<u64>) {
        let children: Vec<_> = (0..n)
            .map(|_| {
                worker_command("muchcpu")
                    .expect("kettle-worker is found or built")
                    .arg((WORK / n).to_string())
                    .stdout(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let (mut pids, mut results) = (Vec::new(), Vec::new());
        for child in children {
            let out = child.wait_with_output().unwrap(); // like Process.join()
            let text = String::from_utf8(out.stdout).unwrap();
            let mut lines = text.lines();
            pids.push(lines.next().unwrap().parse().unwrap());
            results.push(lines.next().unwrap().parse::<u64>().unwrap());
        }
        (pids, results)
    }

    // The book's C6/C7 printout: which process did the work, and how long it took.
    worker_path().expect("kettle-worker"); // found (or built, the first time) before the clock
    let start = Instant::now();
    let (pids, _) = in_processes(2);
    println!(
        "processes: pids {pids:?}, work took {} seconds",
        start.elapsed().as_secs_f64()
    );
    let timeline = Timeline::new();
    let start = Instant::now();
    on_threads(2, &timeline);
    let pid = std::process::id();
    println!(
        "threads:   pids [{pid}, {pid}], work took {} seconds",
        start.elapsed().as_secs_f64()
    );
    timeline.show();
    // [end]

    // [cell X5-compare]
    let scratch = Timeline::new();
    let result = Compare::new("MuchCPU, 1 billion rounds in total")
        .runs(5)
        .variant("1 thread", || on_threads(1, &scratch))
        .variant("2 threads", || on_threads(2, &scratch))
        .variant("4 threads", || on_threads(4, &scratch))
        .variant("2 processes", || in_processes(2).1)
        .run();
    println!(
        "2 threads: {:.2}× the speed of 1 thread; 2 processes take {:.2}× the time of 2 threads \
         (Python here: threads 7.31 s vs processes 3.18 s, 2.30× slower)",
        result.speedup(1),
        result.variants[3].median().as_secs_f64() / result.variants[1].median().as_secs_f64()
    );
    // [end]
    // Best runs, not medians: other programs on a shared CI machine only ever slow a run down.
    assert!(
        result.variants[1].min() < result.variants[0].min(),
        "two threads beat one on a multi-core machine"
    );
}

/// The `much_cpu` of cells X5 and C6/C7 and the worker program's must stay the same loop, never
/// inlined, or "threads vs processes" compares different machine code.
#[test]
fn threads_and_processes_run_the_same_loop() {
    // Token by token from the attribute to the returned `black_box(x)`, ignoring layout,
    // comments, visibility and the import style.
    let loop_of = |src: &str| -> Vec<String> {
        let src: String = src
            .lines()
            .map(|line| line.split("//").next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n")
            .replace("std::hint::black_box", "black_box")
            .replace("pub fn much_cpu(", "fn much_cpu(");
        let tokens: Vec<String> = src.split_whitespace().map(str::to_owned).collect();
        let start = tokens
            .windows(3)
            .position(|w| w == ["#[inline(never)]", "fn", "much_cpu(iterations:"])
            .expect("a much_cpu function marked #[inline(never)]");
        let end = start
            + tokens[start..]
                .iter()
                .position(|t| t == "black_box(x)")
                .expect("the function's end");
        tokens[start..=end].to_vec()
    };
    let worker = loop_of(include_str!("../../src/worker_cmds/muchcpu.rs"));
    assert_eq!(loop_of(include_str!("threads.rs")), worker, "X5");
    assert_eq!(loop_of(include_str!("multiprocessing.rs")), worker, "C6/C7");
}
