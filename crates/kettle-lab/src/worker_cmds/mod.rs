//! The subcommands of the `kettle-worker` executable, one module each, and the table that
//! dispatches `kettle-worker <name> <args>...` to them.
//!
//! Python's `multiprocessing` re-runs the interpreter in the child and protects the parent's
//! code with `if __name__ == '__main__'`. Rust has no module re-import: a child process is an
//! executable, and this table, keyed by `argv[1]`, plays the guard's role.
//!
//! Every subcommand speaks line-delimited text over stdin/stdout, so the cost of moving data
//! between processes (Python's pickling) is visible and measurable: nothing is shared.
//!
//! **Adding a subcommand:** write `src/worker_cmds/<name>.rs` with a `//!` doc, a
//! `pub const USAGE: &str` and a `pub fn run(args: &[String]) -> Result<(), WorkerError>`, then add
//! its name to the [`commands!`] list below: one line per subcommand.

use std::fmt;
use std::io;

/// Declares each subcommand module and its entry in [`COMMANDS`], so registering one is a
/// single line in the list below (module and table cannot drift apart).
macro_rules! commands {
    ($($name:ident),* $(,)?) => {
        $(pub mod $name;)*

        /// Every subcommand, by the name given as the executable's first argument.
        pub const COMMANDS: &[Command] = &[
            $(Command { name: stringify!($name), usage: $name::USAGE, run: $name::run },)*
        ];
    };
}

commands! {
    muchcpu,
    factor,
    search,
    sort,
    rle,
}

/// One subcommand of the worker executable.
#[derive(Debug, Clone, Copy)]
pub struct Command {
    /// The name given as the first argument, e.g. `muchcpu`.
    pub name: &'static str,
    /// One line: the arguments and what the command does.
    pub usage: &'static str,
    /// The entry point, given the arguments after the name.
    pub run: fn(&[String]) -> Result<(), WorkerError>,
}

/// Why a subcommand failed: wrong arguments (exit code 2) or I/O (exit code 1).
#[derive(Debug)]
#[non_exhaustive]
pub enum WorkerError {
    /// The arguments or an input line could not be understood; the text says which.
    Usage(String),
    /// Reading stdin, writing stdout or reading a file failed.
    Io(io::Error),
}

impl fmt::Display for WorkerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorkerError::Usage(what) => write!(f, "usage: {what}"),
            WorkerError::Io(e) => write!(f, "I/O error: {e}"),
        }
    }
}

impl std::error::Error for WorkerError {}

impl From<io::Error> for WorkerError {
    fn from(e: io::Error) -> Self {
        WorkerError::Io(e)
    }
}

/// Looks a subcommand up by name.
pub fn find(name: &str) -> Option<&'static Command> {
    COMMANDS.iter().find(|c| c.name == name)
}

/// The worker's `main`: dispatches `args` (without the program name) and returns the process
/// exit code. A closed stdout (the parent stopped reading) ends the worker quietly.
pub fn main(args: &[String]) -> i32 {
    let Some((name, rest)) = args.split_first() else {
        eprintln!("{}", help());
        return 2;
    };
    let Some(command) = find(name) else {
        eprintln!("kettle-worker: unknown subcommand `{name}`\n{}", help());
        return 2;
    };
    match (command.run)(rest) {
        Ok(()) => 0,
        Err(WorkerError::Io(e)) if e.kind() == io::ErrorKind::BrokenPipe => 0,
        Err(e @ WorkerError::Usage(_)) => {
            eprintln!("kettle-worker {name}: {e}");
            2
        }
        Err(e) => {
            eprintln!("kettle-worker {name}: {e}");
            1
        }
    }
}

/// The list of subcommands, for `kettle-worker` without arguments.
pub fn help() -> String {
    let mut text = String::from("usage: kettle-worker <subcommand> [args...]\n");
    for c in COMMANDS {
        text.push_str(&format!("  {:<8} {}\n", c.name, c.usage));
    }
    text
}

/// Parses one numeric argument, naming it in the error.
pub(crate) fn parse_arg<T: std::str::FromStr>(
    arg: Option<&String>,
    what: &str,
) -> Result<T, WorkerError> {
    let arg = arg.ok_or_else(|| WorkerError::Usage(format!("missing {what}")))?;
    arg.parse()
        .map_err(|_| WorkerError::Usage(format!("{what} must be a number, got `{arg}`")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_is_found_by_its_name_and_documented() {
        for c in COMMANDS {
            assert_eq!(find(c.name).unwrap().name, c.name);
            assert!(!c.usage.is_empty());
            assert!(help().contains(c.name));
        }
        assert!(find("nope").is_none());
    }

    #[test]
    fn bad_arguments_exit_with_2() {
        assert_eq!(main(&[]), 2);
        assert_eq!(main(&["nope".to_owned()]), 2);
        assert_eq!(main(&["muchcpu".to_owned(), "many".to_owned()]), 2);
    }
}
