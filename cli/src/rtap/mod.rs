//! `rtap`: build and inspect snapshots (Twisted's `mktap`, plus inspection).
//!
//! ```text
//! rtap save PLUGIN [plugin options] [-o FILE] [--appname NAME] [--style tap|tas]
//! rtap inspect FILE [--json]
//! ```

mod inspect;
mod save;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{Arg, ArgAction, Command};

use crate::error::{CliError, finish};
use crate::plugins;

/// The clap definition of `rtap`, with one `save` subcommand per registered plugin.
pub fn command() -> Command {
    let save = Command::new("save")
        .about("Build an application from a plugin and save it as a snapshot (mktap)")
        .subcommand_required(true)
        .subcommand_value_name("PLUGIN")
        .arg(
            Arg::new("output")
                .short('o')
                .long("output")
                .value_name("FILE")
                .global(true)
                .help("Where to save (default: NAME.tap, or NAME.tas with --style tas)"),
        )
        .arg(
            Arg::new("appname")
                .long("appname")
                .value_name("NAME")
                .global(true)
                .help("The application's name, which names its files (default: the plugin's)"),
        )
        .arg(
            Arg::new("style")
                .long("style")
                .value_name("STYLE")
                .value_parser(["tap", "tas"])
                .global(true)
                .help("tap: binary (default); tas: readable JSON source"),
        )
        .after_help(plugins::listing());
    let inspect = Command::new("inspect")
        .about("Show a snapshot's header and service tree")
        .arg(Arg::new("file").value_name("FILE").required(true))
        .arg(
            Arg::new("json")
                .long("json")
                .action(ArgAction::SetTrue)
                .help("Print one JSON document instead of a tree"),
        );
    Command::new("rtap")
        .about("Build and inspect rtwisted snapshots")
        .version(env!("CARGO_PKG_VERSION"))
        .subcommand_required(true)
        .subcommand(plugins::with_plugin_subcommands(save))
        .subcommand(inspect)
}

/// Runs `rtap` with these arguments (the first is the program name) and returns its exit
/// status. A binary that links more service types and plugins calls this from its `main`.
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    finish("rtap", dispatch(args))
}

fn dispatch<I, T>(args: I) -> Result<(), CliError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let matches = command().try_get_matches_from(args)?;
    match matches.subcommand() {
        Some(("save", save)) => save::run(save),
        Some(("inspect", inspect)) => inspect::run(inspect),
        _ => Err(CliError::failed("no command given; see rtap --help")),
    }
}

/// `rtap` for the current process's arguments.
pub fn main() -> ExitCode {
    run(std::env::args_os())
}
