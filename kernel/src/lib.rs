//! kettle: a Jupyter kernel for Rust, built for studying concurrency.
//!
//! Layers (see the README's architecture section):
//! - [`wire`]: pure protocol data (connection file, typed messages, signing, frames); no I/O.
//! - [`transport`]: the only code that touches ZeroMQ.
//! - [`session`]: protocol policy (dispatch, busy/idle, history, stdin, heartbeat).
//! - [`engine`]: the only code that imports evcxr; evaluates Rust in a child process.
//! - [`install`], [`lab`], [`cli`]: the command-line edges; [`spare`]: kernels started ahead of
//!   time; [`completeness`]: `is_complete_request`'s answer.
//! - [`allocator`]: the executable's memory allocator (mimalloc, except where cells run).

pub mod allocator;
pub mod cli;
pub mod completeness;
pub mod engine;
pub mod install;
pub mod lab;
pub mod session;
pub mod spare;
pub mod transport;
pub mod wire;
