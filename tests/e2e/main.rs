//! End-to-end tests of the real `kettle` binary: each test drives a spawned kernel through
//! ZeroMQ with the raw client in [`util`], one module per topic of the Jupyter messaging spec.
//!
//! Modules share one kernel where tests do not interfere ([`util::SharedKernel`]) and start a
//! fresh one only for startup, shutdown and interrupt. Run with:
//! `CARGO_TARGET_DIR=$HOME/.cache/kettle-target cargo test --release -p kettle --test e2e`

mod util;

mod async_cells;
mod build_progress;
mod cargo_network;
mod cell_cache;
mod comms;
mod display;
mod errors;
mod execute;
mod faults;
mod floods;
mod history;
mod interrupt;
mod introspection;
mod kernel_info;
mod lifecycle;
mod live_output;
mod output;
mod read_ahead;
mod robustness;
mod spare;
mod status;
mod stdin;
mod values;
mod warm_up;
