//! A small thread pool with futures-like handles ([`ThreadPool`], [`Future`]): the Rust
//! counterpart of `multiprocessing.Pool` (C8) and `concurrent.futures.ThreadPoolExecutor` (C12)
//! under the chapter's names.
//!
//! In practice Rust code reaches for `rayon` (data parallelism, order kept) or tokio's
//! `spawn_blocking`; the notebooks show both. This pool exists so that the chapter's API can be
//! held side by side with Rust: `submit`/`apply_async` return a [`Future`] with `done()`,
//! `result()` and `exception()`; `close()`, `terminate()` and `join()` behave like `Pool`'s.
//! It is also short enough to read: a channel of boxed jobs, `n` threads taking turns to
//! receive, and a `OnceLock` per job that the caller can poll or wait on.

use std::error::Error;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::thread::{self, JoinHandle};

/// A job as the workers see it: told whether the pool was terminated before it started.
type Job = Box<dyn FnOnce(bool) + Send>;

/// A fixed number of worker threads running submitted closures in submission order.
///
/// ```
/// use kettle_lab::ThreadPool;
///
/// let pool = ThreadPool::new(2);
/// let square = pool.submit(|| 7 * 7);
/// assert_eq!(square.get().unwrap(), 49);
/// assert_eq!(pool.map(1..=4u64, |n| n * 10), [10, 20, 30, 40]); // input order, like Pool.map
/// ```
#[derive(Debug)]
pub struct ThreadPool {
    sender: Option<mpsc::Sender<Job>>,
    workers: Vec<JoinHandle<()>>,
    terminated: Arc<AtomicBool>,
}

impl ThreadPool {
    /// Starts `workers` threads (at least one).
    pub fn new(workers: usize) -> Self {
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        let terminated = Arc::new(AtomicBool::new(false));
        let workers = (0..workers.max(1))
            .map(|i| {
                let receiver = Arc::clone(&receiver);
                let terminated = Arc::clone(&terminated);
                thread::Builder::new()
                    .name(format!("pool-{i}"))
                    .spawn(move || {
                        loop {
                            // The lock is held only while waiting for the next job, so a long
                            // job never blocks the other workers.
                            let job = receiver.lock().unwrap_or_else(|e| e.into_inner()).recv();
                            match job {
                                Ok(job) => job(terminated.load(Ordering::SeqCst)),
                                Err(_) => break, // closed, and the queue is empty
                            }
                        }
                    })
                    .expect("the OS starts a pool thread")
            })
            .collect();
        ThreadPool {
            sender: Some(sender),
            workers,
            terminated,
        }
    }

    /// How many worker threads the pool has.
    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    /// Queues `f` and returns its [`Future`] at once (`executor.submit`). After
    /// [`close`](Self::close) the future holds [`JobError::Closed`].
    pub fn submit<T, F>(&self, f: F) -> Future<T>
    where
        T: Send + Sync + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let cell = Arc::new(OnceLock::new());
        let future = Future {
            cell: Arc::clone(&cell),
        };
        let job: Job = Box::new(move |terminated| {
            let outcome = if terminated {
                Err(JobError::Cancelled)
            } else {
                catch_unwind(AssertUnwindSafe(f))
                    .map_err(|panic| JobError::Panicked(message(&*panic)))
            };
            let _ = cell.set(outcome);
        });
        match &self.sender {
            Some(sender) if sender.send(job).is_ok() => {}
            _ => {
                let _ = future.cell.set(Err(JobError::Closed));
            }
        }
        future
    }

    /// `Pool.apply_async`: the same as [`submit`](Self::submit).
    pub fn apply_async<T, F>(&self, f: F) -> Future<T>
    where
        T: Send + Sync + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        self.submit(f)
    }

    /// `Pool.map_async`: one job per item; the [`MapResult`] gives the results in input order.
    pub fn map_async<I, R, F>(&self, items: I, f: F) -> MapResult<R>
    where
        I: IntoIterator,
        I::Item: Send + 'static,
        R: Send + Sync + 'static,
        F: Fn(I::Item) -> R + Send + Sync + 'static,
    {
        let f = Arc::new(f);
        let futures = items
            .into_iter()
            .map(|item| {
                let f = Arc::clone(&f);
                self.submit(move || f(item))
            })
            .collect();
        MapResult { futures }
    }

    /// `Pool.map`: [`map_async`](Self::map_async), then wait. Panics if a job panicked.
    pub fn map<I, R, F>(&self, items: I, f: F) -> Vec<R>
    where
        I: IntoIterator,
        I::Item: Send + 'static,
        R: Send + Sync + 'static,
        F: Fn(I::Item) -> R + Send + Sync + 'static,
    {
        self.map_async(items, f)
            .get()
            .unwrap_or_else(|e| panic!("a map job failed: {e}"))
    }

    /// `Pool.close`: accept no new jobs; the queued ones still run.
    pub fn close(&mut self) {
        self.sender = None; // the workers' `recv` fails once the queue is empty
    }

    /// `Pool.terminate`: accept no new jobs, and queued jobs that have not started yet never
    /// will (their futures hold [`JobError::Cancelled`]). Running jobs finish: Rust threads
    /// cannot be killed from outside, where Python kills the worker processes.
    pub fn terminate(&mut self) {
        self.terminated.store(true, Ordering::SeqCst);
        self.close();
    }

    /// `Pool.join`: waits for the workers to exit. Call [`close`](Self::close) or
    /// [`terminate`](Self::terminate) first, or this waits forever, as in Python.
    pub fn join(&mut self) {
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

impl Drop for ThreadPool {
    /// Like leaving `with ThreadPoolExecutor() as e:`: finish the queue, then stop.
    fn drop(&mut self) {
        self.close();
        self.join();
    }
}

/// The handle of one submitted job: `concurrent.futures.Future` and `AsyncResult` in one.
#[derive(Debug)]
pub struct Future<T> {
    cell: Arc<OnceLock<Result<T, JobError>>>,
}

impl<T> Future<T> {
    /// Whether the job has finished (or failed, or was cancelled). Never blocks.
    pub fn done(&self) -> bool {
        self.cell.get().is_some()
    }

    /// `AsyncResult.ready`: the same as [`done`](Self::done).
    pub fn ready(&self) -> bool {
        self.done()
    }

    /// Blocks until the job has finished.
    pub fn wait(&self) {
        self.cell.wait();
    }

    /// Blocks until the job has finished, then borrows its value or its failure.
    pub fn result(&self) -> Result<&T, &JobError> {
        self.cell.wait().as_ref()
    }

    /// `AsyncResult.get`: blocks, then hands over the value or the failure.
    pub fn get(self) -> Result<T, JobError> {
        self.cell.wait();
        match Arc::try_unwrap(self.cell) {
            Ok(cell) => cell.into_inner().expect("the job has finished"),
            // The worker still holds its clone for a moment after setting the value.
            Err(cell) => {
                while Arc::strong_count(&cell) > 1 {
                    thread::yield_now();
                }
                Arc::try_unwrap(cell)
                    .ok()
                    .and_then(OnceLock::into_inner)
                    .expect("the job has finished")
            }
        }
    }
}

impl<T, E: Error + 'static> Future<Result<T, E>> {
    /// `Future.exception()`: blocks until the job has finished (as Python's does by default),
    /// then returns the error it returned, or why it did not run to the end; `None` on success.
    pub fn exception(&self) -> Option<&(dyn Error + 'static)> {
        match self.result() {
            Ok(Ok(_)) => None,
            Ok(Err(e)) => Some(e),
            Err(e) => Some(e),
        }
    }
}

/// The results of [`ThreadPool::map_async`], in input order (`AsyncResult` of a map).
#[derive(Debug)]
pub struct MapResult<R> {
    futures: Vec<Future<R>>,
}

impl<R> MapResult<R> {
    /// Whether every job has finished.
    pub fn ready(&self) -> bool {
        self.futures.iter().all(Future::done)
    }

    /// How many jobs have finished so far.
    pub fn finished(&self) -> usize {
        self.futures.iter().filter(|f| f.done()).count()
    }

    /// Blocks until every job has finished.
    pub fn wait(&self) {
        self.futures.iter().for_each(Future::wait);
    }

    /// Blocks, then returns every result in input order, or the first failure.
    pub fn get(self) -> Result<Vec<R>, JobError> {
        self.futures.into_iter().map(Future::get).collect()
    }
}

/// Why a submitted job has no value.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JobError {
    /// The job panicked; the text is the panic message.
    Panicked(String),
    /// The pool was terminated before the job started.
    Cancelled,
    /// The job was submitted after the pool was closed.
    Closed,
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobError::Panicked(msg) => write!(f, "the job panicked: {msg}"),
            JobError::Cancelled => write!(f, "the pool was terminated before the job started"),
            JobError::Closed => write!(f, "the pool was closed before the job was submitted"),
        }
    }
}

impl Error for JobError {}

fn message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(not a string)".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn map_keeps_input_order_and_futures_report_done() {
        let pool = ThreadPool::new(3);
        let out = pool.map((0..50u64).rev(), |n| {
            thread::sleep(Duration::from_micros(n * 20));
            n * n
        });
        assert_eq!(out, (0..50u64).rev().map(|n| n * n).collect::<Vec<_>>());
        let f = pool.submit(|| "hi");
        f.wait();
        assert!(f.done());
        assert_eq!(f.result(), Ok(&"hi"));
    }

    #[test]
    fn exception_reports_errors_and_panics() {
        let pool = ThreadPool::new(2);
        let ok = pool.submit(|| Ok::<_, std::io::Error>(1));
        let err = pool.submit(|| Err::<u8, _>(std::io::Error::other("nope")));
        let panicked = pool.submit(|| -> Result<u8, std::io::Error> { panic!("boom") });
        assert!(ok.exception().is_none());
        assert_eq!(err.exception().unwrap().to_string(), "nope");
        assert!(panicked.exception().unwrap().to_string().contains("boom"));
    }

    #[test]
    fn close_finishes_the_queue_and_terminate_cancels_it() {
        let mut pool = ThreadPool::new(1);
        let slow = pool.submit(|| thread::sleep(Duration::from_millis(100)));
        let queued: Vec<_> = (0..3).map(|i| pool.submit(move || i)).collect();
        pool.close();
        assert_eq!(pool.submit(|| 9).get(), Err(JobError::Closed));
        pool.join();
        assert!(slow.done());
        assert_eq!(
            queued
                .into_iter()
                .map(|f| f.get().unwrap())
                .collect::<Vec<_>>(),
            [0, 1, 2]
        );

        let mut pool = ThreadPool::new(1);
        let running = pool.submit(|| thread::sleep(Duration::from_millis(100)));
        thread::sleep(Duration::from_millis(20)); // let it start
        let queued = pool.submit(|| 1);
        pool.terminate();
        pool.join();
        assert_eq!(running.get(), Ok(()));
        assert_eq!(queued.get(), Err(JobError::Cancelled));
    }
}
