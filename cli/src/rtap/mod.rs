//! `rtap`: build, inspect, edit and convert snapshots (Twisted's `mktap` and `tapconvert`, plus
//! inspection and editing).
//!
//! ```text
//! rtap save PLUGIN [plugin options] [-o FILE | --append FILE] [--appname NAME] [-u UID] [-g GID] [--style tap|tas] [--encrypt]
//! rtap save -y APP.tac [-o FILE] [...]
//! rtap inspect FILE|APP.tac [--json] [--path PATH]
//! rtap edit FILE
//! rtap set FILE [PATH FIELD=VALUE...] [--uid U] [--gid G] [--procname N] [--umask M] [--appname N]
//! rtap remove FILE PATH
//! rtap rename FILE PATH NEWNAME
//! rtap add FILE [--parent PATH] PLUGIN [plugin options]
//! rtap convert IN|APP.tac OUT [--style tap|tas] [--encrypt|--decrypt]
//! rtap plugins [--json]
//! rtap completions SHELL [--for rtap|rtwistd]
//! rtap man [--for rtap|rtwistd]
//! ```
//! Every command takes `--passphrase-file FILE` for encrypted snapshots.

mod convert;
mod document;
mod edit;
mod generate;
mod inspect;
mod list_plugins;
mod modify;
mod save;
mod store;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{Arg, ArgAction, Command};

use crate::error::{CliError, finish};
use crate::{ids, plugins};

fn file_arg() -> Arg {
    Arg::new("file")
        .value_name("FILE")
        .required(true)
        .help("The snapshot")
}

fn path_arg() -> Arg {
    Arg::new("path")
        .value_name("PATH")
        .help("A service's path: web/http, or #2 for the third child")
}

fn json_flag() -> Arg {
    Arg::new("json")
        .long("json")
        .action(ArgAction::SetTrue)
        .help("Print JSON for scripts")
}

fn style_arg() -> Arg {
    Arg::new("style")
        .long("style")
        .value_name("STYLE")
        .value_parser(["tap", "tas"])
        .help("tap: binary; tas: readable JSON source")
}

fn uid_arg(short: bool) -> Arg {
    let arg = Arg::new("uid")
        .long("uid")
        .value_name("USER")
        .value_parser(ids::parse_uid)
        .help("User to run as, by name or number");
    if short { arg.short('u') } else { arg }
}

fn gid_arg(short: bool) -> Arg {
    let arg = Arg::new("gid")
        .long("gid")
        .value_name("GROUP")
        .value_parser(ids::parse_gid)
        .help("Group to run as, by name or number");
    if short { arg.short('g') } else { arg }
}

fn appname_arg() -> Arg {
    Arg::new("appname")
        .long("appname")
        .value_name("NAME")
        .help("The application's name, which names its files")
}

fn save_command() -> Command {
    let command = Command::new("save")
        .about(
            "Build an application from a plugin or a TAC file and save it as a snapshot (mktap)",
        )
        .subcommand_value_name("PLUGIN")
        .subcommand_help_heading("Plugins")
        .arg(
            Arg::new("python")
                .short('y')
                .long("python")
                .alias("tac")
                .value_name("FILE")
                .conflicts_with("append")
                .help("Build the application from this TAC file (a Starlark program that defines `application`) instead of a plugin"),
        )
        .arg(
            Arg::new("output")
                .short('o')
                .long("output")
                .value_name("FILE")
                .global(true)
                .conflicts_with("append")
                .help("Where to save (default: NAME.tap, or NAME.tas with --style tas)"),
        )
        .arg(
            Arg::new("append")
                .long("append")
                .value_name("FILE")
                .global(true)
                .help(
                    "Add the service to this snapshot's root (a new snapshot if it does not exist)",
                ),
        )
        .arg(appname_arg().global(true))
        .arg(uid_arg(true).global(true))
        .arg(gid_arg(true).global(true))
        .arg(style_arg().global(true))
        .arg(
            Arg::new("encrypt")
                .long("encrypt")
                .action(ArgAction::SetTrue)
                .global(true)
                .help(
                    "Encrypt with a passphrase (age, scrypt); the default name becomes NAME.etap",
                ),
        )
        .arg(
            crate::snapshots::store_arg()
                .global(true)
                .conflicts_with_all(["output", "append"])
                .help(
                    "Save into the snapshot store at DIR, as the next snapshot of the application",
                ),
        )
        .arg(
            Arg::new("tag")
                .long("tag")
                .value_name("TAG")
                .global(true)
                .requires("store")
                .help("Tag the snapshot in the store"),
        );
    plugins::with_plugin_subcommands(command)
}

fn add_command() -> Command {
    let command = Command::new("add")
        .about("Add a service built by a plugin to a snapshot")
        .subcommand_required(true)
        .subcommand_value_name("PLUGIN")
        .subcommand_help_heading("Plugins")
        .arg(file_arg())
        .arg(crate::snapshots::store_arg().global(true))
        .arg(
            Arg::new("parent")
                .long("parent")
                .value_name("PATH")
                .global(true)
                .help("The collection to add to (default: the root)"),
        );
    plugins::with_plugin_subcommands(command)
}

/// `--passphrase-file FILE`, shared by both tools.
pub fn passphrase_file_arg() -> Arg {
    Arg::new("passphrase-file")
        .long("passphrase-file")
        .value_name("FILE")
        .help("Read the passphrase of encrypted snapshots from FILE (else RTWISTED_PASSPHRASE, else the terminal)")
}

fn tool_arg() -> Arg {
    Arg::new("for")
        .long("for")
        .value_name("TOOL")
        .value_parser(["rtap", "rtwistd"])
        .default_value("rtap")
        .help("Which tool")
}

/// The clap definition of `rtap`.
pub fn command() -> Command {
    Command::new("rtap")
        .about("Build, inspect, edit and convert rtwisted snapshots")
        .version(env!("CARGO_PKG_VERSION"))
        .subcommand_required(true)
        .arg(passphrase_file_arg().global(true))
        .subcommand(save_command())
        .subcommand(
            Command::new("inspect")
                .about("Show a snapshot's header and service tree (or, for a .tac file, the tree it builds)")
                .arg(file_arg())
                .arg(crate::snapshots::store_arg())
                .arg(json_flag().help("Print one JSON document instead of a tree"))
                .arg(path_arg().long("path").help("Show only the subtree at this path")),
        )
        .subcommand(
            Command::new("edit")
                .about("Edit a snapshot in $EDITOR; the result is validated before it is written")
                .arg(file_arg())
                .arg(crate::snapshots::store_arg()),
        )
        .subcommand(
            Command::new("set")
                .about("Set service fields (values are JSON when they parse, else strings) or process settings")
                .arg(file_arg())
                .arg(crate::snapshots::store_arg())
                .arg(path_arg())
                .arg(
                    Arg::new("assignments")
                        .value_name("FIELD=VALUE")
                        .num_args(0..)
                        .requires("path"),
                )
                .arg(uid_arg(false))
                .arg(gid_arg(false))
                .arg(
                    Arg::new("procname")
                        .long("procname")
                        .value_name("NAME")
                        .help("The process name"),
                )
                .arg(
                    Arg::new("umask")
                        .long("umask")
                        .value_name("OCTAL")
                        .value_parser(ids::parse_umask)
                        .help("The umask, in octal"),
                )
                .arg(appname_arg()),
        )
        .subcommand(
            Command::new("remove")
                .about("Remove a service (and its children)")
                .arg(file_arg())
                .arg(crate::snapshots::store_arg())
                .arg(path_arg().required(true)),
        )
        .subcommand(
            Command::new("rename")
                .about("Rename a service")
                .arg(file_arg())
                .arg(crate::snapshots::store_arg())
                .arg(path_arg().required(true))
                .arg(Arg::new("newname").value_name("NEWNAME").required(true)),
        )
        .subcommand(add_command())
        .subcommand(
            Command::new("convert")
                .about("Convert a snapshot to another style, or a TAC file to a snapshot (tapconvert)")
                .arg(Arg::new("input").value_name("IN").required(true))
                .arg(Arg::new("output").value_name("OUT").required(true))
                .arg(style_arg().help("The output style (default: from OUT's extension)"))
                .arg(
                    Arg::new("encrypt")
                        .long("encrypt")
                        .action(ArgAction::SetTrue)
                        .conflicts_with("decrypt")
                        .help("Encrypt the output (default: as OUT's extension says, else as IN was)"),
                )
                .arg(
                    Arg::new("decrypt")
                        .long("decrypt")
                        .action(ArgAction::SetTrue)
                        .help("Write the output unencrypted"),
                ),
        )
        .subcommand(store::command())
        .subcommand(
            Command::new("plugins")
                .about("List the plugins this binary links")
                .arg(json_flag()),
        )
        .subcommand(
            Command::new("completions")
                .about("Print a shell completion script")
                .arg(
                    Arg::new("shell")
                        .value_name("SHELL")
                        .required(true)
                        .value_parser(clap::value_parser!(clap_complete::Shell)),
                )
                .arg(tool_arg()),
        )
        .subcommand(
            Command::new("man")
                .about("Print the man page (roff)")
                .arg(tool_arg()),
        )
}

/// Runs `rtap` with these arguments (the first is the program name) and returns its exit
/// status. A binary that links more service types and plugins calls this from its `main`.
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    finish("rtap", crate::preflight().and_then(|()| dispatch(args)))
}

fn dispatch<I, T>(args: I) -> Result<(), CliError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let matches = command().try_get_matches_from(args)?;
    let Some((name, sub)) = matches.subcommand() else {
        return Err(CliError::failed("no command given; see rtap --help"));
    };
    match name {
        "save" => save::run(sub),
        "inspect" => inspect::run(sub),
        "edit" => edit::run(sub),
        "set" => modify::set(sub),
        "remove" => modify::remove(sub),
        "rename" => modify::rename(sub),
        "add" => modify::add(sub),
        "convert" => convert::run(sub),
        "plugins" => list_plugins::run(sub),
        "completions" => generate::completions(sub),
        "man" => generate::man(sub),
        "store" => store::run(sub),
        other => Err(CliError::failed(format!("unknown command '{other}'"))),
    }
}

/// `rtap` for the current process's arguments.
pub fn main() -> ExitCode {
    run(std::env::args_os())
}
