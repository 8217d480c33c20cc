//! The `kettle` executable: hands the process to evcxr's child roles first, then runs the CLI.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Must come before anything else: evcxr re-executes this very binary as the process that
    // runs user code and as a rustc wrapper. If those invocations reached the CLI, each would
    // start another kernel (a fork bomb).
    kettle::engine::runtime::dispatch_if_child();

    let cli = kettle::cli::Cli::parse();
    match kettle::cli::run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("kettle: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
