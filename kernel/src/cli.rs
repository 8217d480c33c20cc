//! The command line: `kettle lab`, `kettle kernel`, `kettle install`, `kettle uninstall`.
//!
//! Parsing only, plus a thin [`run`] that hands each subcommand to the module that owns it
//! ([`crate::lab`], [`crate::install`], [`crate::session`]). `anyhow` stops here.

use crate::install::{self, InstallOptions, Location};
use crate::lab::{self, LabOptions};
use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// kettle: a Jupyter kernel for Rust, built for studying concurrency.
///
/// Start here: `kettle lab` opens the course notebooks in JupyterLab.
#[derive(Debug, Parser)]
#[command(name = "kettle", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Commands,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Commands {
    /// Open the notebooks in JupyterLab, with this kernel ready to use.
    ///
    /// Creates a Python virtualenv `.venv/` in the workspace and installs JupyterLab into it
    /// (first run only; set KETTLE_VENV to use another venv), installs the kettle kernelspec
    /// into that venv, then runs `jupyter lab` on the notebooks directory. Ctrl-C stops the
    /// server and its kernels.
    Lab(LabArgs),

    /// Run as a Jupyter kernel (Jupyter starts this; you normally do not).
    ///
    /// Reads the ports and signing key from the connection file Jupyter wrote, then serves the
    /// kernel protocol until Jupyter asks it to shut down.
    Kernel(KernelArgs),

    /// Register this binary with Jupyter as the kernel "Rust (kettle)".
    ///
    /// Writes `kernels/<name>/kernel.json` (with the absolute path of this executable) and two
    /// logos into a Jupyter data directory. Running it again replaces the earlier install.
    Install(InstallArgs),

    /// Remove a kernelspec written by `kettle install`.
    Uninstall(UninstallArgs),

    /// Prepare a kernel ahead of time for `kettle kernel --spare` (kernels start this).
    #[command(hide = true)]
    Spare,

    /// Build the course's dependencies now, so notebooks do not wait for them later.
    ///
    /// Compiles the helper crates (`:course`), rayon and tokio once into the persistent work
    /// directories kernels use (~/.cache/kettle/work): two of them, one for a kernel and one
    /// for the spare it prepares for the next start. `kettle lab` does this by itself the first
    /// time and whenever kettle or the compiler changed.
    Warm,
}

/// Options of `kettle lab`.
#[derive(Debug, Args)]
pub struct LabArgs {
    /// Do not open a web browser; print the URL (with its login token) instead.
    /// Implied on Linux when there is no graphical display.
    #[arg(long)]
    pub no_browser: bool,

    /// Port for the JupyterLab server (default: Jupyter's choice, 8888 or the next free one).
    #[arg(long, value_name = "N")]
    pub port: Option<u16>,

    /// Directory to open in JupyterLab (default: the workspace's notebooks/).
    #[arg(long, value_name = "DIR")]
    pub notebooks: Option<PathBuf>,
}

/// Options of `kettle kernel`.
#[derive(Debug, Args)]
pub struct KernelArgs {
    /// The JSON connection file Jupyter wrote for this kernel.
    #[arg(long, short = 'f', value_name = "FILE")]
    pub connection_file: PathBuf,

    /// Hand over to a spare kernel prepared earlier when there is one (the first cell then runs
    /// at once), and prepare one for the next start once this kernel is idle. The installed
    /// kernelspec passes it; KETTLE_SPARE=0 turns it off.
    #[arg(long)]
    pub spare: bool,
}

/// Where a kernelspec goes: one of the Jupyter data directories.
#[derive(Debug, Args)]
#[group(multiple = false)]
pub struct LocationArgs {
    /// The user's Jupyter data directory: $JUPYTER_DATA_DIR, else ~/.local/share/jupyter
    /// (Linux) or ~/Library/Jupyter (macOS). This is the default.
    #[arg(long)]
    pub user: bool,

    /// The active Python environment: <sys.prefix>/share/jupyter, where sys.prefix is
    /// $VIRTUAL_ENV or what `python3` reports.
    #[arg(long)]
    pub sys_prefix: bool,

    /// DIR/share/jupyter.
    #[arg(long, value_name = "DIR")]
    pub prefix: Option<PathBuf>,
}

impl LocationArgs {
    /// The chosen location (`--user` when none was given).
    pub fn location(&self) -> Location {
        match (&self.prefix, self.sys_prefix) {
            (Some(dir), _) => Location::Prefix(dir.clone()),
            (None, true) => Location::SysPrefix,
            (None, false) => Location::User,
        }
    }
}

/// Options of `kettle install`.
#[derive(Debug, Args)]
pub struct InstallArgs {
    #[command(flatten)]
    pub location: LocationArgs,

    /// Kernelspec name: the directory under kernels/, and what notebooks record.
    #[arg(long, default_value = install::DEFAULT_NAME)]
    pub name: String,

    /// Name shown in JupyterLab's launcher and kernel picker.
    #[arg(long, value_name = "TEXT", default_value = install::DEFAULT_DISPLAY_NAME)]
    pub display_name: String,
}

/// Options of `kettle uninstall`.
#[derive(Debug, Args)]
pub struct UninstallArgs {
    #[command(flatten)]
    pub location: LocationArgs,

    /// Kernelspec name to remove.
    #[arg(long, default_value = install::DEFAULT_NAME)]
    pub name: String,
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Commands::Lab(args) => {
            let status = lab::run(&LabOptions {
                no_browser: args.no_browser,
                port: args.port,
                notebooks: args.notebooks,
            })?;
            // Jupyter exits non-zero after a signal-initiated stop on some versions; a stop we
            // asked for is still a clean exit for the user.
            Ok(match status.code() {
                Some(0) | None => ExitCode::SUCCESS,
                Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
            })
        }
        Commands::Warm => {
            crate::engine::warm::warm_two_slots(|line| eprintln!("kettle: {line}"))?;
            eprintln!("kettle: the course's dependencies are built");
            Ok(ExitCode::SUCCESS)
        }
        Commands::Kernel(args) => {
            // The ports first, before anything else: Jupyter connects as soon as it has
            // started us, and a refused connection is retried only 100 ms later (see
            // `Listeners`). Whoever serves this kernel, this process or a spare, takes them.
            let mut listeners = crate::session::read_connection_file(&args.connection_file)
                .ok()
                .and_then(|info| crate::transport::Listeners::bind(&info));
            crate::spare::remember_environment();
            if args.spare
                && let Some(code) = crate::spare::hand_over(&args.connection_file, &mut listeners)
            {
                return Ok(code);
            }
            // While the process is still single-threaded (it sets an environment variable):
            // dependencies built by earlier kernels are reused.
            crate::engine::workdir::use_persistent_slot();
            let config = crate::engine::EngineConfig::default();
            if args.spare {
                config.on_idle.set(crate::spare::start_one);
            }
            crate::session::run_kernel(
                &args.connection_file,
                config,
                listeners.unwrap_or_default(),
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Commands::Spare => {
            crate::spare::remember_environment();
            crate::spare::run(crate::engine::EngineConfig::default())
        }
        Commands::Install(args) => {
            let dir = install::install(&InstallOptions {
                location: args.location.location(),
                name: args.name,
                display_name: args.display_name,
            })?;
            println!(
                "Installed kernelspec {:?} in {}",
                dir.file_name().unwrap_or_default(),
                dir.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Commands::Uninstall(args) => {
            match install::uninstall(&args.location.location(), &args.name)? {
                Some(dir) => println!("Removed kernelspec {}", dir.display()),
                None => println!(
                    "No kernelspec named {:?} there; nothing to remove",
                    args.name
                ),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("kettle").chain(args.iter().copied()))
    }

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn install_defaults_to_user_and_kettle() {
        let Commands::Install(args) = parse(&["install"]).unwrap().command else {
            panic!("not install")
        };
        assert_eq!(args.location.location(), Location::User);
        assert_eq!(args.name, "kettle");
        assert_eq!(args.display_name, "Rust (kettle)");
    }

    #[test]
    fn install_location_flags_are_exclusive() {
        assert!(parse(&["install", "--user", "--sys-prefix"]).is_err());
        assert!(parse(&["install", "--sys-prefix", "--prefix", "/p"]).is_err());
        let Commands::Install(args) = parse(&["install", "--prefix", "/p", "--name", "k2"])
            .unwrap()
            .command
        else {
            panic!("not install")
        };
        assert_eq!(args.location.location(), Location::Prefix("/p".into()));
        assert_eq!(args.name, "k2");
    }

    #[test]
    fn kernel_requires_a_connection_file() {
        assert!(parse(&["kernel"]).is_err());
        let Commands::Kernel(args) = parse(&["kernel", "--connection-file", "/tmp/c.json"])
            .unwrap()
            .command
        else {
            panic!("not kernel")
        };
        assert_eq!(args.connection_file, PathBuf::from("/tmp/c.json"));
    }

    #[test]
    fn lab_flags_parse() {
        let Commands::Lab(args) =
            parse(&["lab", "--no-browser", "--port", "9001", "--notebooks", "nb"])
                .unwrap()
                .command
        else {
            panic!("not lab")
        };
        assert!(args.no_browser);
        assert_eq!(args.port, Some(9001));
        assert_eq!(args.notebooks, Some(PathBuf::from("nb")));
    }

    #[test]
    fn every_subcommand_explains_itself_in_help() {
        let mut cli = Cli::command();
        for sub in cli.get_subcommands_mut() {
            let help = sub.render_long_help().to_string();
            assert!(
                sub.get_about().is_some(),
                "{} has no description",
                sub.get_name()
            );
            assert!(
                help.len() > 80,
                "{} help is too thin:\n{help}",
                sub.get_name()
            );
        }
    }
}
