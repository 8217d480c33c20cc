//! Notebook 02 ("Multiprocessing") without Jupyter: every Rust cell of
//! `notebooks/02-multiprocessing.ipynb` lives here, between `// [cell ID]` and `// [end]`, and
//! runs as an ordinary test (see `threads.rs` for how the regions become cells).
//!
//! Timings are printed, never asserted beyond "best runs keep their order": the machine is
//! shared and noisy. Results (pids, factors, matches) are asserted exactly.

// [cell setup]
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;
use std::time::{Duration, Instant};

use kettle_lab::*;
use kettle_timing::{Compare, Timeline};
use rayon::prelude::*;
// [end]

/// Runs only in optimised builds: the workloads are sized for `--release`, as the kernel
/// compiles cells with optimisation.
fn optimised() -> bool {
    if cfg!(debug_assertions) {
        eprintln!("skipped: sized for optimised code; run `cargo test --release`");
        return false;
    }
    true
}

#[test]
fn c6_c7_much_cpu_in_processes_and_in_threads() {
    if !optimised() {
        return;
    }
    // [cell C6]
    /// The book's MuchCPU loop, for the threads of C7 (the worker process runs the same loop).
    #[inline(never)] // so threads and the worker run the same machine code
    fn much_cpu(iterations: u64) -> u64 {
        let mut x = 0u64;
        for i in 0..iterations {
            x = x.rotate_left(5).wrapping_add(i); // needs the round before: cannot be skipped
        }
        std::hint::black_box(x) // "used", even when the caller ignores it
    }

    const ITERATIONS: u64 = 200_000_000; // per worker, as in the book
    let cpus = thread::available_parallelism().map_or(1, |n| n.get());

    /// `workers` MuchCPU child processes: start them all, then join them all, as the book
    /// does. Each child prints its pid, then its result; a lane per child shows when it ran.
    fn much_cpu_processes(workers: usize, timeline: &Timeline) -> Vec<(u32, u64)> {
        let children: Vec<Child> = (0..workers)
            .map(|_| {
                worker_command("muchcpu")
                    .expect("kettle-worker is found or built")
                    .arg(ITERATIONS.to_string())
                    .stdout(Stdio::piped())
                    .spawn()
                    .expect("the worker starts")
            })
            .collect();
        thread::scope(|s| {
            let joins: Vec<_> = children
                .into_iter()
                .map(|child| {
                    let lane = timeline.lane(&format!("process {}", child.id()));
                    let running = lane.enter("MuchCPU");
                    s.spawn(move || {
                        let out = child.wait_with_output().expect("the worker runs"); // join()
                        drop(running);
                        let text = String::from_utf8(out.stdout).expect("text");
                        let mut lines = text.lines();
                        let pid: u32 = lines.next().expect("a pid").parse().expect("a number");
                        let x: u64 = lines.next().expect("a result").parse().expect("a number");
                        (pid, x)
                    })
                })
                .collect();
            joins.into_iter().map(|j| j.join().unwrap()).collect()
        })
    }

    // Found (or built, the first time) before the clock starts.
    println!(
        "worker: {}",
        worker_path().expect("kettle-worker").display()
    );
    let timeline = Timeline::new();
    let start = Instant::now();
    let children = much_cpu_processes(cpus, &timeline);
    let processes = start.elapsed().as_secs_f64();
    for (pid, _) in &children {
        println!("{pid}");
    }
    println!("work took {processes:.3} seconds");
    timeline.show();
    // The children did the work: each computed what this process computes.
    let expected = much_cpu(ITERATIONS);
    assert!(children.iter().all(|&(_, x)| x == expected));
    // [end]
    let pids: Vec<u32> = children.iter().map(|&(pid, _)| pid).collect();
    assert_eq!(
        pids.iter().collect::<HashSet<_>>().len(),
        cpus,
        "distinct pids"
    );
    assert!(!pids.contains(&std::process::id()));

    // [cell C7]
    /// The same MuchCPU on `workers` threads of this process; each prints the pid, like C7.
    fn much_cpu_threads(workers: usize, timeline: &Timeline) -> Vec<u32> {
        thread::scope(|s| {
            let threads: Vec<_> = (0..workers)
                .map(|i| {
                    s.spawn(move || {
                        timeline.span(format!("MuchCPU {i}"), || much_cpu(ITERATIONS));
                        std::process::id()
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        })
    }

    let timeline = Timeline::new();
    let start = Instant::now();
    let pids = much_cpu_threads(cpus, &timeline);
    let threads = start.elapsed().as_secs_f64();
    for pid in &pids {
        println!("{pid}");
    }
    println!("work took {threads:.3} seconds");
    timeline.show();
    // [end]
    assert!(pids.iter().all(|&p| p == std::process::id()));

    // [cell C6-compare]
    let result = Compare::new(format!("MuchCPU: {cpus} workers × 200 million rounds"))
        .runs(5)
        .variant(format!("{cpus} processes"), || {
            much_cpu_processes(cpus, &Timeline::new())
        })
        .variant(format!("{cpus} threads"), || {
            much_cpu_threads(cpus, &Timeline::new())
        })
        .run();
    let (p, t) = (
        result.variants[0].median().as_secs_f64(),
        result.variants[1].median().as_secs_f64(),
    );
    println!(
        "threads take {:.2}× the time of processes (Python here: 2.30×, 7.31 s vs 3.18 s)",
        t / p
    );
    println!(
        "processes: {p:.3} s, {:.0}× faster than Python's 3.18 s",
        3.18 / p
    );
    // [end]
    assert!(
        result.variants[1].min().as_secs_f64() < result.variants[0].max().as_secs_f64() * 1.5,
        "threads in the range of processes"
    );
}

/// The 20 numbers of the Python baseline (`random.seed(1)`, 20 ints in [100000, 50000000]).
#[test]
fn c8_prime_factor_with_a_pool_keeps_order() {
    if !optimised() {
        return;
    }
    // [cell C8]
    /// The book's `prime_factor`: trial division by every divisor from 2 to `value - 2`; on the
    /// first hit, recurse on both halves and stop (Python's `break`). No divisor: it is prime.
    fn prime_factor(value: u64) -> Vec<u64> {
        let mut factors = Vec::new();
        for divisor in 2..value.saturating_sub(1) {
            let (quotient, remainder) = (value / divisor, value % divisor);
            if remainder == 0 {
                factors.extend(prime_factor(divisor));
                factors.extend(prime_factor(quotient));
                return factors;
            }
        }
        vec![value]
    }

    /// The Python baseline's 20 numbers (`random.seed(1)`, `randint(100000, 50000000)`).
    const TO_FACTOR: [u64; 20] = [
        9117031, 38298625, 4335027, 17217392, 8013390, 33348085, 30264834, 31791841, 43827664,
        25575546, 14189828, 6398810, 32839506, 2002366, 26259626, 29142506, 40864473, 241334,
        46796553, 29989428,
    ];

    // `pool.map(prime_factor, to_factor)`: rayon's pool has one thread per core, and
    // `collect` puts the results in input order, whichever thread finished first.
    let timeline = Timeline::new();
    let start = Instant::now();
    let results: Vec<Vec<u64>> = TO_FACTOR
        .par_iter()
        .map(|&v| timeline.span(v.to_string(), || prime_factor(v)))
        .collect();
    let pooled = start.elapsed().as_secs_f64();
    for (value, factors) in TO_FACTOR.iter().zip(&results) {
        println!("The factors of {value} are {factors:?}");
    }
    println!("pool.map took {pooled:.4} seconds");
    timeline.show();
    // [end]
    for (value, factors) in TO_FACTOR.iter().zip(&results) {
        assert_eq!(factors.iter().product::<u64>(), *value);
        assert_eq!(factors, &worker_cmds::factor::prime_factor(*value));
    }
    assert_eq!(results[5], [5, 6669617]);

    // [cell C8-dominates]
    /// The best of 5 runs of `f`, in seconds: on a shared machine, other programs only ever
    /// slow a run down.
    fn best_of_5(f: impl Fn()) -> f64 {
        (0..5)
            .map(|_| {
                let start = Instant::now();
                f();
                start.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min)
    }

    // Which number costs what: each timed on its own, then all of them, then the pool.
    let mut costs: Vec<(u64, f64)> = TO_FACTOR
        .iter()
        .map(|&v| (v, best_of_5(|| drop(std::hint::black_box(prime_factor(v))))))
        .collect();
    costs.sort_by(|a, b| b.1.total_cmp(&a.1));
    let (v, t) = costs[0];
    let sequential = best_of_5(|| TO_FACTOR.iter().for_each(|&v| drop(prime_factor(v))));
    let pooled = best_of_5(|| {
        drop(
            TO_FACTOR
                .par_iter()
                .map(|&v| prime_factor(v))
                .collect::<Vec<_>>(),
        )
    });
    println!(
        "sequentially: {sequential:.4} s; {v} alone: {t:.4} s ({:.0}% of the work)",
        100.0 * t / sequential
    );
    println!(
        "pool: {pooled:.4} s, speed-up {:.2}×; at most {:.2}× while one task holds {:.0}% \
         (Python: 1.34×, 87%)",
        sequential / pooled,
        sequential / t.max(sequential / 2.0),
        100.0 * t / sequential
    );
    // [end]
    assert_eq!(v, 33348085, "the book's data has one big prime cofactor");

    // [cell C8-compare]
    /// `count` numbers in [100000, 5000000] from a seeded generator (a 64-bit LCG), so the work
    /// is spread over many similar tasks.
    fn numbers(count: usize, seed: u64) -> Vec<u64> {
        let mut x = seed;
        (0..count)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                100_000 + (x >> 33) % 4_900_001
            })
            .collect()
    }

    /// The process flavour of `Pool.map`: `workers` `kettle-worker factor` children, numbers
    /// dealt round-robin as text lines, answers read back and put in input order.
    fn factor_in_processes(values: &[u64], workers: usize) -> Vec<Vec<u64>> {
        let mut children: Vec<Child> = (0..workers)
            .map(|_| {
                worker_command("factor")
                    .unwrap()
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for (i, child) in children.iter_mut().enumerate() {
            let mut stdin = child.stdin.take().unwrap(); // dropped below: end of input
            for v in values.iter().skip(i).step_by(workers) {
                writeln!(stdin, "{v}").unwrap();
            }
        }
        let mut answers = vec![Vec::new(); values.len()];
        for (i, child) in children.into_iter().enumerate() {
            let out = child.wait_with_output().unwrap();
            let text = String::from_utf8(out.stdout).unwrap();
            for (line, slot) in text.lines().zip((i..values.len()).step_by(workers)) {
                answers[slot] = line
                    .split(' ')
                    .skip(1)
                    .map(|f| f.parse().unwrap())
                    .collect();
            }
        }
        answers
    }

    let to_factor = numbers(200, 1);
    let cpus = thread::available_parallelism().map_or(1, |n| n.get());
    let result = Compare::new("prime_factor of 200 numbers in [100000, 5000000]")
        .runs(3)
        .variant("sequential", || {
            to_factor
                .iter()
                .map(|&v| prime_factor(v))
                .collect::<Vec<_>>()
        })
        .variant("rayon pool", || {
            to_factor
                .par_iter()
                .map(|&v| prime_factor(v))
                .collect::<Vec<_>>()
        })
        .variant(format!("{cpus} worker processes"), || {
            factor_in_processes(&to_factor, cpus)
        })
        .run();
    println!(
        "pool speed-up on {cpus} cores: {:.2}× (medians), {:.2}× (best runs); processes {:.2}× (best runs)",
        result.speedup(1),
        result.best_speedup(1),
        result.best_speedup(2)
    );
    // [end]
    let pooled: Vec<Vec<u64>> = to_factor.par_iter().map(|&v| prime_factor(v)).collect();
    assert_eq!(
        factor_in_processes(&to_factor, cpus),
        pooled,
        "same answers, same order"
    );
    for (v, f) in to_factor.iter().zip(&pooled) {
        assert_eq!(f.iter().product::<u64>(), *v);
    }
    assert!(
        result.variants[1].min() < result.variants[0].min(),
        "the pool beats sequential"
    );

    // [cell C8-async]
    let mut pool = ThreadPool::new(cpus);

    // map_async: returns at once; ready() says whether all results are in, get() waits for them.
    let pending = pool.map_async(TO_FACTOR, prime_factor);
    println!("map_async returned; ready: {}", pending.ready());
    let all = pending.get().expect("no job panicked");
    println!("got {} results, the first {:?}", all.len(), all[0]);

    // apply_async: one job, one handle.
    let one = pool.apply_async(|| prime_factor(33348085));
    one.wait();
    println!("apply_async: ready {}, {:?}", one.ready(), one.get());

    // close: no new jobs, the queued ones still run; join waits for the workers.
    let queued: Vec<_> = to_factor[..8]
        .iter()
        .map(|&v| pool.submit(move || prime_factor(v)))
        .collect();
    pool.close();
    pool.join();
    println!(
        "after close + join: {} of 8 queued jobs done",
        queued.iter().filter(|f| f.done()).count()
    );

    // terminate: queued jobs that have not started never will.
    let mut pool = ThreadPool::new(cpus);
    let jobs: Vec<_> = to_factor
        .iter()
        .map(|&v| pool.submit(move || prime_factor(v)))
        .collect();
    thread::sleep(Duration::from_millis(5));
    pool.terminate();
    pool.join();
    let cancelled = jobs
        .iter()
        .filter(|f| f.result() == Err(&JobError::Cancelled))
        .count();
    println!(
        "after terminate: {} jobs ran, {cancelled} were cancelled",
        jobs.len() - cancelled
    );
    // [end]
    assert_eq!(all[5], [5, 6669617]);
    assert_eq!(queued.len(), 8);
    assert!(queued.iter().all(|f| f.done()));
    assert!(cancelled > 0 && cancelled < jobs.len());
}

#[test]
fn c9_c11_queue_search_engine_with_threads_and_processes() {
    // [cell C9]
    /// The book's `search`: load every line of `paths` (trimmed), then answer queries from
    /// `query_q` with the matching lines on `results_q`, until the `None` sentinel.
    fn search(
        paths: Vec<PathBuf>,
        query_q: Receiver<Option<String>>,
        results_q: Sender<Vec<String>>,
    ) {
        let mut lines = Vec::new();
        for path in paths {
            let text = std::fs::read_to_string(&path).expect("a corpus file");
            lines.extend(text.lines().map(|l| l.trim().to_owned()));
        }
        while let Ok(Some(query)) = query_q.recv() {
            let found = lines
                .iter()
                .filter(|l| l.contains(&query))
                .cloned()
                .collect();
            results_q.send(found).expect("main is listening");
        }
    }
    // [end]

    // [cell C10]
    let corpus = Corpus::book().expect("a temp dir"); // 200 files × 1,000 lines, removed when dropped
    let cpus = thread::available_parallelism().map_or(1, |n| n.get());
    let pathnames: Vec<PathBuf> = corpus.paths().to_vec();
    let (results_sender, results_queue) = mpsc::channel();
    let mut query_queues = Vec::new();
    let mut workers = Vec::new();
    for i in 0..cpus {
        let paths: Vec<PathBuf> = pathnames.iter().skip(i).step_by(cpus).cloned().collect(); // [i::cpus]
        let (query_sender, query_q) = mpsc::channel();
        query_queues.push(query_sender);
        let results_q = results_sender.clone();
        workers.push(thread::spawn(move || search(paths, query_q, results_q)));
    }
    println!("{cpus} search threads started on {} files", pathnames.len());
    // [end]

    // [cell C11]
    // The workers have been loading their files since C10; time the query itself.
    let start = Instant::now();
    for q in &query_queues {
        q.send(Some("def".to_owned())).unwrap();
        q.send(None).unwrap(); // the sentinel: this worker stops after answering
    }
    let mut matches = Vec::new();
    for _ in 0..cpus {
        matches.extend(results_queue.recv().unwrap());
    }
    let threaded = start.elapsed().as_secs_f64();
    for w in workers {
        w.join().expect("a search thread");
    }
    // 20,000 lines is too many to print: the first three, and the count.
    for line in &matches[..3] {
        println!("{line}");
    }
    println!(
        "... {} matching lines, answered {threaded:.3} seconds after the query was sent",
        matches.len()
    );
    // [end]
    assert_eq!(matches.len(), corpus.expected_matches("def"));
    assert_eq!(matches.len(), 20_000);

    // [cell C9-processes]
    /// The process flavour: one `kettle-worker search` child per share of the files, the query
    /// written to its stdin, the answer (a count, then the lines) read from its stdout. End of
    /// input is the sentinel. Returns the matches and the bytes that crossed the pipes.
    fn search_in_processes(
        pathnames: &[PathBuf],
        query: &str,
        workers: usize,
    ) -> (Vec<String>, usize) {
        let mut children: Vec<Child> = (0..workers)
            .map(|i| {
                worker_command("search")
                    .unwrap()
                    .args(pathnames.iter().skip(i).step_by(workers))
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in &mut children {
            let mut stdin = child.stdin.take().unwrap();
            writeln!(stdin, "{query}").unwrap(); // then stdin is dropped: the sentinel
        }
        let (mut matches, mut bytes) = (Vec::new(), 0);
        for mut child in children {
            let mut answer = BufReader::new(child.stdout.take().unwrap());
            let mut line = String::new();
            answer.read_line(&mut line).unwrap();
            let count: usize = line.trim().parse().unwrap();
            bytes += line.len();
            for _ in 0..count {
                line.clear();
                bytes += answer.read_line(&mut line).unwrap();
                matches.push(line.trim_end().to_owned());
            }
            child.wait().unwrap();
        }
        (matches, bytes)
    }

    let start = Instant::now();
    let (found, bytes) = search_in_processes(&pathnames, "def", cpus);
    let processes = start.elapsed().as_secs_f64();
    println!(
        "{} matching lines in {processes:.3} seconds ({cpus} processes; {:.2} MB of answers copied through pipes)",
        found.len(),
        bytes as f64 / 1e6
    );
    // [end]
    assert_eq!(found.len(), 20_000);
    let mut a = found.clone();
    let mut b = matches.clone();
    a.sort();
    b.sort();
    assert_eq!(a, b, "both flavours find the same lines");

    // [cell C11-compare]
    /// C10 + C11 as one function: `workers` search threads, one query, the sentinel.
    fn search_in_threads(pathnames: &[PathBuf], query: &str, workers: usize) -> Vec<String> {
        let (results_sender, results_queue) = mpsc::channel();
        let query_queues: Vec<_> = (0..workers)
            .map(|i| {
                let paths = pathnames.iter().skip(i).step_by(workers).cloned().collect();
                let (query_sender, query_q) = mpsc::channel();
                let results_q = results_sender.clone();
                thread::spawn(move || search(paths, query_q, results_q));
                query_sender
            })
            .collect();
        for q in &query_queues {
            q.send(Some(query.to_owned())).unwrap();
            q.send(None).unwrap();
        }
        (0..workers)
            .flat_map(|_| results_queue.recv().unwrap())
            .collect()
    }

    let result = Compare::new("queue search engine: load 200 files, answer \"def\"")
        .runs(5)
        .variant(format!("{cpus} threads, channels"), || {
            search_in_threads(&pathnames, "def", cpus)
        })
        .variant(format!("{cpus} processes, pipes"), || {
            search_in_processes(&pathnames, "def", cpus)
        })
        .run();
    println!(
        "threads {:.3} s, processes {:.3} s (Python: 0.137 s with 2 processes)",
        result.variants[0].median().as_secs_f64(),
        result.variants[1].median().as_secs_f64()
    );
    // [end]
    assert_eq!(search_in_threads(&pathnames, "def", cpus).len(), 20_000);
}
