//! `rtwistd`: thaw an application and run it until a signal (Twisted's `twistd`).
//!
//! ```text
//! rtwistd [-n] [-o] [-f FILE | -s FILE] [-e] [--passphrase-file FILE] [--stop-timeout SECONDS]
//! rtwistd [-n] PLUGIN [plugin options]
//! ```
//! A run loads the application, starts it (privileged start, then start), waits for SIGTERM or
//! SIGINT, stops it in reverse order, and saves `NAME-shutdown.tap` unless `-o` is given or the
//! application came from a plugin. Exit status: 0 after a clean stop, 1 on any failure (the
//! reason on stderr in one line), 2 on a usage error.

mod options;
mod run;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{Arg, ArgAction, Command};

use crate::error::{CliError, finish};
use crate::plugins;

pub use options::Options;

/// The snapshot `rtwistd` loads when given neither a file nor a plugin (twistd's `twistd.tap`).
pub const DEFAULT_FILE: &str = "rtwistd.tap";

/// The clap definition of `rtwistd`, with one subcommand per registered plugin.
pub fn command() -> Command {
    let command = Command::new("rtwistd")
        .about("Run an rtwisted application from a snapshot or a plugin")
        .version(env!("CARGO_PKG_VERSION"))
        .subcommand_value_name("PLUGIN")
        .subcommand_help_heading("Plugins")
        .arg(
            Arg::new("nodaemon")
                .short('n')
                .long("nodaemon")
                .action(ArgAction::SetTrue)
                .help("Stay in the foreground"),
        )
        .arg(
            Arg::new("no-save")
                .short('o')
                .long("no-save")
                .alias("no_save")
                .action(ArgAction::SetTrue)
                .help("Do not save the shutdown snapshot"),
        )
        .arg(
            Arg::new("file")
                .short('f')
                .long("file")
                .value_name("FILE")
                .conflicts_with("source")
                .help(format!("Snapshot to run (default: {DEFAULT_FILE})")),
        )
        .arg(
            Arg::new("source")
                .short('s')
                .long("source")
                .value_name("FILE")
                .help("Source (tas) snapshot to run"),
        )
        .arg(
            Arg::new("encrypted")
                .short('e')
                .long("encrypted")
                .action(ArgAction::SetTrue)
                .help("The snapshot is encrypted (also detected from the file itself)"),
        )
        .arg(crate::rtap::passphrase_file_arg())
        .arg(
            Arg::new("stop-timeout")
                .long("stop-timeout")
                .value_name("SECONDS")
                .default_value("10")
                .value_parser(options::parse_seconds)
                .help("How long each service may take to stop"),
        );
    plugins::with_plugin_subcommands(command)
}

/// Runs `rtwistd` with these arguments (the first is the program name) and returns its exit
/// status. A binary that links more service types and plugins calls this from its `main`.
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    finish("rtwistd", dispatch(args))
}

fn dispatch<I, T>(args: I) -> Result<(), CliError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let mut command = command();
    let matches = command.try_get_matches_from_mut(args)?;
    let options = Options::from_matches(&matches, &mut command)?;
    run::run(options)
}

/// `rtwistd` for the current process's arguments.
pub fn main() -> ExitCode {
    run(std::env::args_os())
}
