//! Offline stand-ins, doing real I/O, for the services the concurrency chapter talks to.
//!
//! The Python chapter reads a keyboard, calls a weather web service, ... A course notebook must
//! run offline, reproducibly, in CI; yet the point of the chapter is that threads overlap real
//! waiting. So every stand-in here does genuine I/O: a socket on 127.0.0.1, an OS pipe. Only
//! what is on the other end is simulated.
//!
//! | cells | stand-in | instead of |
//! |---|---|---|
//! | C1–C3 InputReader | [`typist()`]: a thread typing into a pipe | a person at the keyboard |
//! | C1–C3 InputReader | [`keyboard()`]: stdin, or the typist when nobody can type | `input()` in a notebook |
//! | C4–C5 TempGetter | [`WeatherServer`] + [`get_temperature`] | OpenWeatherMap over the internet |
//! | C6, X5, C8, C9–C11 | [`worker_path`]: the `kettle-worker` executable ([`worker_cmds`]) | `multiprocessing` children |
//! | C8, C12 | [`ThreadPool`] with [`Future`] handles | `Pool`, `ThreadPoolExecutor` |
//! | C9–C11 search engine | [`Corpus`]: generated files with known matches | the current directory's files |
//! | C12 find_files | [`Tree`]: a generated directory tree with traps | the filesystem from `/` |
//!
//! The crate has no dependencies, so `:dep kettle-lab` builds in seconds in a notebook.
//!
//! # TempGetter: threads against one-after-another (C4–C5)
//!
//! Each request waits 150–200 ms on the server, like a round trip to a distant API. Nine
//! threads wait at the same time; the sequential version waits nine times.
//!
//! ```
//! use std::thread;
//! use std::time::Instant;
//! use kettle_lab::{CITIES, WeatherServer, get_temperature};
//!
//! /// The book's TempGetter: a city, and the temperature `run` fetched for it.
//! struct TempGetter {
//!     city: &'static str,
//!     temperature: f64,
//! }
//!
//! impl TempGetter {
//!     fn new(city: &'static str) -> Self {
//!         TempGetter { city, temperature: f64::NAN }
//!     }
//!     fn run(&mut self, base_url: &str) {
//!         self.temperature = get_temperature(base_url, self.city).expect("the server answers");
//!     }
//! }
//!
//! let server = WeatherServer::start()?; // 127.0.0.1, ephemeral port, stops when dropped
//! let url = server.url();
//!
//! // C4: one thread per city, started together, then joined.
//! let start = Instant::now();
//! let getters: Vec<TempGetter> = thread::scope(|s| {
//!     let threads: Vec<_> = CITIES
//!         .iter()
//!         .map(|&city| s.spawn(|| { let mut t = TempGetter::new(city); t.run(&url); t }))
//!         .collect();
//!     threads.into_iter().map(|t| t.join().unwrap()).collect()
//! });
//! let threaded = start.elapsed();
//! for t in &getters {
//!     println!("it is {:.0}°C in {}", t.temperature, t.city); // it is 3°C in Edmonton ...
//! }
//! println!("Got {} temps in {:.2} seconds", getters.len(), threaded.as_secs_f64()); // ≈ 0.21
//!
//! // C5: the same work, calling run() directly on this thread: about nine times longer.
//! let start = Instant::now();
//! let mut getters: Vec<TempGetter> = CITIES.iter().map(|&c| TempGetter::new(c)).collect();
//! for t in &mut getters {
//!     t.run(&url);
//! }
//! let sequential = start.elapsed();
//! println!("Got {} temps in {:.2} seconds", getters.len(), sequential.as_secs_f64()); // ≈ 1.6
//!
//! assert_eq!(getters[0].temperature.round(), 3.0);
//! assert!(threaded < sequential / 4);
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # InputReader: someone is typing (C1–C3)
//!
//! ```
//! use std::io::BufRead;
//! use std::time::Duration;
//!
//! let keyboard = kettle_lab::typist("hello world\n", Duration::from_millis(5));
//! let reader = std::thread::spawn(move || {
//!     let mut line = String::new();
//!     let mut keyboard = keyboard;
//!     keyboard.read_line(&mut line).map(|_| line)
//! });
//! let (mut count, mut result) = (1u64, 1u64);
//! while !reader.is_finished() {
//!     result = count * count;
//!     count += 1;
//! }
//! let typed = reader.join().unwrap()?;
//! println!("calculated squares up to {count} * {count} = {result}");
//! println!("while you typed '{}'", typed.trim_end());
//! # Ok::<(), std::io::Error>(())
//! ```
#![deny(missing_docs)]

mod bmp;
mod client;
mod corpus;
pub mod dns;
mod error;
mod http;
pub mod images;
mod keyboard;
mod png;
mod pool;
pub mod rle;
mod rng;
mod scratch;
pub mod sort_service;
mod tree;
mod typist;
mod weather;
pub mod worker_cmds;
mod worker_exe;

pub use bmp::Bitmap;
pub use client::{DEMO_APPID, fetch_json, get_temperature, weather_url};
pub use corpus::Corpus;
pub use error::LabError;
pub use images::SampleImages;
pub use keyboard::{Keyboard, TYPIST_PER_CHAR, UNATTENDED_VAR, keyboard};
pub use pool::{Future, JobError, MapResult, ThreadPool};
pub use tree::{TREE_FILES, Tree};
pub use typist::{TYPED_TEXT, try_typist, typist};
pub use weather::{
    BOOK_CITIES, CITIES, WEATHER_PATH, WeatherServer, WeatherServerBuilder, expected_temperature,
};
pub use worker_exe::{WORKER_VAR, worker_command, worker_path};
