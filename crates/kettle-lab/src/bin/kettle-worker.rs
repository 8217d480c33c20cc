//! `kettle-worker`: the child-process side of the course's multiprocessing examples.
//!
//! Thin on purpose: the subcommands live in `kettle_lab::worker_cmds`, where they are unit
//! tested, and notebooks find this executable with `kettle_lab::worker_path()`.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(kettle_lab::worker_cmds::main(&args));
}
