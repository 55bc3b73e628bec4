//! `rtap`: build, inspect, edit and convert snapshots (Twisted's `mktap` and `tapconvert`, plus
//! inspection and editing).
//!
//! ```text
//! rtap save PLUGIN [plugin options] [-o FILE | --append FILE] [--appname NAME] [-u UID] [-g GID] [--style tap|tas] [--encrypt]
//! rtap save -y APP.tac [-o FILE] [...]
//! rtap inspect FILE|APP.tac [--json] [--path PATH] [--all]
//! rtap get FILE PATH [FIELD]
//! rtap edit FILE
//! rtap set FILE [PATH FIELD=VALUE...] [--uid U] [--gid G] [--procname N] [--umask M] [--appname N]
//! rtap remove FILE PATH
//! rtap rename FILE PATH NEWNAME
//! rtap add FILE [--parent PATH] PLUGIN [plugin options]
//! rtap convert IN|APP.tac OUT [--style tap|tas] [--encrypt|--decrypt]
//! rtap plugins [--json]
//! rtap completions SHELL [--for rtap|rtwistd]
//! rtap man [--for rtap|rtwistd]
//! rtap status NAME|--control PATH [--json]
//! rtap checkpoint NAME|--control PATH
//! rtap stop NAME|--control PATH
//! rtap apply NAME|--control PATH FILE|APP.tac
//! rtap inspect|edit|set|add|remove|rename --live NAME ...   (the running tree)
//! ```
//! Every command takes `--passphrase-file FILE` for encrypted snapshots and the limits
//! `--max-snapshot-bytes` / `--max-snapshot-values`; edits take `--force`. The fixed commands
//! are typed structs ([`Rtap`]); only the plugin subcommands of `save` and `add` are built at
//! run time ([`PluginChoice`](crate::args::PluginChoice)).

mod add_target;
mod convert;
mod document;
mod edit;
mod fleet_status;
mod generate;
mod get;
mod inspect;
mod list_plugins;
mod live;
mod modify;
mod save;
mod store;
mod stored;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use crate::args::{
    AppnameArgs, ForceArgs, IdArgs, LimitArgs, PassphraseArgs, PluginChoice, StoreArgs, StyleArgs,
};
use crate::error::{CliError, run_tool};
use crate::snapshots::{Access, Location};

// The `rtap` command line.
#[derive(Debug, Parser)]
#[command(
    name = "rtap",
    about = "Build, inspect, edit and convert rtwisted snapshots",
    version,
    subcommand_required = true,
    mut_arg("passphrase_file", |arg| arg.global(true)),
    mut_arg("max_snapshot_bytes", |arg| arg.global(true)),
    mut_arg("max_snapshot_values", |arg| arg.global(true))
)]
pub(crate) struct Rtap {
    /// Where the passphrase of encrypted snapshots comes from.
    #[command(flatten)]
    pub(crate) passphrase: PassphraseArgs,
    /// The limits of every save and load.
    #[command(flatten)]
    pub(crate) limits: LimitArgs,
    /// How long a write into a snapshot store waits for another writer (default 10)
    #[arg(long, value_name = "SECONDS", global = true, value_parser = crate::args::parse_wait)]
    pub(crate) wait: Option<std::time::Duration>,
    /// The command.
    #[command(subcommand)]
    pub(crate) command: RtapCommand,
}

/// One `rtap` command.
#[derive(Debug, Subcommand)]
pub(crate) enum RtapCommand {
    /// Build an application from a plugin or a TAC file and save it as a snapshot (mktap)
    Save(SaveArgs),
    /// Show a snapshot's header and service tree (or, for a .tac file, the tree it builds)
    Inspect(InspectArgs),
    /// Print a service, or one of its fields (a.b.c), as JSON
    Get(GetArgs),
    /// Edit a snapshot in $EDITOR; the result is validated before it is written
    Edit(EditTarget),
    /// Set service fields (values are JSON when they parse, else strings) or process settings
    Set(SetArgs),
    /// Remove a service (and its children)
    Remove(ServiceArgs),
    /// Rename a service
    Rename(RenameArgs),
    /// Add a service built by a plugin to a snapshot
    Add(AddArgs),
    /// Convert a snapshot to another style, or a TAC file to a snapshot (tapconvert)
    Convert(ConvertArgs),
    /// Keep a history of snapshots per application in a store folder
    #[command(
        long_about = "Keep a history of snapshots per application in a store folder: numbered snapshots \
                      (never reused), unique tags, retention, and the exact bytes of a .tap file, so \
                      export and import are copies. Addresses: APP (the newest), APP@N, APP@TAG."
    )]
    Store(store::StoreCommand),
    /// Show a running daemon: its services, their states and live counters, the process
    Status(StatusArgs),
    /// Ask a running daemon to save a checkpoint now, and say where it went
    Checkpoint(TargetArgs),
    /// Stop a running daemon gracefully; waits, and says where the shutdown snapshot went
    Stop(TargetArgs),
    /// Restart a running daemon in place (say after an upgrade): the rtwistd binary on disk
    /// takes over its sockets and live state; no connection is refused, no write lost
    Restart(TargetArgs),
    /// Make a running daemon's tree equal a snapshot's (or a TAC file's): what differs is
    /// stopped, replaced or started; the rest keeps running untouched
    Apply(ApplyArgs),
    /// List the plugins this binary links
    Plugins(PluginsArgs),
    /// Print a shell completion script
    Completions(CompletionsArgs),
    /// Print the man page (roff)
    Man(ManArgs),
}

// `rtap save`.
#[derive(Debug, Args)]
#[command(
    subcommand_value_name = "PLUGIN",
    subcommand_help_heading = "Plugins",
    mut_arg("appname", |arg| arg.global(true)),
    mut_arg("uid", |arg| arg.global(true)),
    mut_arg("gid", |arg| arg.global(true)),
    mut_arg("style", |arg| arg.global(true)),
)]
pub(crate) struct SaveArgs {
    /// Build the application from this TAC file (a Starlark program that defines `application`) instead of a plugin
    #[arg(
        short = 'y',
        long,
        alias = "tac",
        value_name = "FILE",
        conflicts_with = "append"
    )]
    pub(crate) python: Option<PathBuf>,
    /// Where to save (default: NAME.tap, or NAME.tas with --style tas)
    #[arg(
        short = 'o',
        long,
        value_name = "FILE",
        global = true,
        conflicts_with = "append"
    )]
    pub(crate) output: Option<PathBuf>,
    /// Add the service to this snapshot's root (a new snapshot if it does not exist)
    #[arg(long, value_name = "FILE", global = true)]
    pub(crate) append: Option<PathBuf>,
    /// The application's name.
    #[command(flatten)]
    pub(crate) appname: AppnameArgs,
    /// Who the daemon runs as.
    #[command(flatten)]
    pub(crate) ids: IdArgs,
    /// The style.
    #[command(flatten)]
    pub(crate) style: StyleArgs,
    /// Encrypt with a passphrase (age, scrypt); the default name becomes NAME.etap
    #[arg(long, global = true)]
    pub(crate) encrypt: bool,
    /// Save into the snapshot store at DIR, as the next snapshot of the application
    #[arg(long, value_name = "DIR", global = true, conflicts_with_all = ["output", "append"])]
    pub(crate) store: Option<PathBuf>,
    /// Tag the snapshot in the store
    #[arg(long, value_name = "TAG", global = true, requires = "store")]
    pub(crate) tag: Option<String>,
    /// Overwrite an existing snapshot file (and append to one a running rtwistd holds)
    #[arg(long, global = true)]
    pub(crate) force: bool,
    /// The plugin, when the application is built from one.
    #[command(subcommand)]
    pub(crate) plugin: Option<PluginChoice>,
}

/// Which running daemon a live command talks to.
#[derive(Debug, Args)]
pub(crate) struct TargetArgs {
    /// The daemon's application name (its control socket is NAME.ctl in its run folder)
    #[arg(value_name = "NAME", required_unless_present = "control")]
    pub(crate) name: Option<String>,
    /// The daemon's control socket
    #[arg(long, value_name = "PATH")]
    pub(crate) control: Option<PathBuf>,
}

// `rtap status`.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// The daemon.
    #[command(flatten)]
    pub(crate) target: TargetArgs,
    /// Print one JSON document
    #[arg(long)]
    pub(crate) json: bool,
    /// List every daemon running NAME from the store on etcd given with --store (host, PID, snapshot, state, last checkpoint)
    #[arg(long, requires = "store", conflicts_with = "control")]
    pub(crate) fleet: bool,
    #[command(flatten)]
    pub(crate) store: crate::args::StoreArgs,
}

// `rtap apply`.
#[derive(Debug, Args)]
pub(crate) struct ApplyArgs {
    /// The daemon's application name (its control socket is NAME.ctl in its run folder)
    #[arg(value_name = "NAME")]
    pub(crate) name: String,
    /// The snapshot (or TAC file) whose tree the daemon should run
    #[arg(value_name = "FILE")]
    pub(crate) file: PathBuf,
    /// The daemon's control socket (then NAME is only shown)
    #[arg(long, value_name = "PATH")]
    pub(crate) control: Option<PathBuf>,
}

/// `--live`: the command works on a running daemon's tree instead of a snapshot.
#[derive(Debug, Args)]
pub(crate) struct LiveArgs {
    /// Work on the running daemon named FILE (its tree, through its control socket)
    #[arg(long)]
    pub(crate) live: bool,
    /// The running daemon's control socket (with --live)
    #[arg(long, value_name = "PATH", requires = "live")]
    pub(crate) control: Option<PathBuf>,
}

// `rtap inspect`.
#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// The snapshot (with --live: the daemon's name)
    #[arg(value_name = "FILE")]
    pub(crate) file: String,
    /// The running daemon instead.
    #[command(flatten)]
    pub(crate) live: LiveArgs,
    /// The snapshot store.
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    /// Print one JSON document instead of a tree
    #[arg(long)]
    pub(crate) json: bool,
    /// Show only the subtree at this path
    #[arg(long, value_name = "PATH")]
    pub(crate) path: Option<String>,
    /// Show every field whole (large fields are otherwise summarized, so any snapshot shows in
    /// bounded memory)
    #[arg(long)]
    pub(crate) all: bool,
}

// `rtap get`.
#[derive(Debug, Args)]
pub(crate) struct GetArgs {
    /// The snapshot
    #[arg(value_name = "FILE")]
    pub(crate) file: String,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    /// A service's path: web/http, #2 for the third child, / for the root
    #[arg(value_name = "PATH")]
    pub(crate) path: String,
    /// A field of the service, dotted for nested ones: factory.max_value_bytes
    #[arg(value_name = "FIELD")]
    pub(crate) field: Option<String>,
}

/// The snapshot an edit works on (a file, or an address in a store), or with `--live` a
/// running daemon's tree; and `--force`. `rtap edit` takes just this.
#[derive(Debug, Args)]
pub(crate) struct EditTarget {
    #[command(flatten)]
    pub(crate) force: ForceArgs,
    /// The snapshot (with --live: the daemon's name)
    #[arg(value_name = "FILE")]
    pub(crate) file: String,
    /// The running daemon instead.
    #[command(flatten)]
    pub(crate) live: LiveArgs,
    /// The snapshot store.
    #[command(flatten)]
    pub(crate) store: StoreArgs,
}

impl EditTarget {
    /// Where the snapshot is: the file, or the address in the store.
    pub(crate) fn location(&self) -> Result<Location, CliError> {
        Location::new(&self.file, self.store.store.as_deref())
    }

    /// The control socket of the daemon `--live` names, for `rtap COMMAND`.
    fn live_socket(&self, command: &str) -> Result<PathBuf, CliError> {
        live::socket(Some(&self.file), self.live.control.as_deref(), command)
    }
}

// `rtap set`.
#[derive(Debug, Args)]
pub(crate) struct SetArgs {
    /// The snapshot or the daemon.
    #[command(flatten)]
    pub(crate) target: EditTarget,
    /// A service's path: web/http, or #2 for the third child
    #[arg(value_name = "PATH")]
    pub(crate) path: Option<String>,
    /// The fields to set
    #[arg(value_name = "FIELD=VALUE", requires = "path")]
    pub(crate) assignments: Vec<String>,
    /// Who the daemon runs as.
    #[command(flatten)]
    pub(crate) ids: IdArgs,
    /// The process name
    #[arg(long, value_name = "NAME")]
    pub(crate) procname: Option<String>,
    /// The umask, in octal
    #[arg(long, value_name = "OCTAL", value_parser = crate::args::parse_umask)]
    pub(crate) umask: Option<u32>,
    /// The application's name.
    #[command(flatten)]
    pub(crate) appname: AppnameArgs,
}

/// One service of the snapshot or the daemon; `rtap remove` takes just this.
#[derive(Debug, Args)]
pub(crate) struct ServiceArgs {
    /// The snapshot or the daemon.
    #[command(flatten)]
    pub(crate) target: EditTarget,
    /// A service's path: web/http, or #2 for the third child
    #[arg(value_name = "PATH")]
    pub(crate) path: String,
}

// `rtap rename`.
#[derive(Debug, Args)]
pub(crate) struct RenameArgs {
    /// The service.
    #[command(flatten)]
    pub(crate) service: ServiceArgs,
    /// The new name
    #[arg(value_name = "NEWNAME")]
    pub(crate) newname: String,
}

// `rtap add`.
#[derive(Debug, Args)]
#[command(
    subcommand_required = true,
    subcommand_value_name = "PLUGIN",
    subcommand_help_heading = "Plugins",
    mut_arg("store", |arg| arg.global(true)),
    mut_arg("force", |arg| arg.global(true))
)]
pub(crate) struct AddArgs {
    /// The snapshot or the daemon.
    #[command(flatten)]
    pub(crate) target: EditTarget,
    /// The collection to add to (default: the root)
    #[arg(long, value_name = "PATH", global = true)]
    pub(crate) parent: Option<String>,
    /// The new service's name (default: the plugin's)
    #[arg(long, value_name = "NAME", global = true, value_parser = crate::args::parse_service_name)]
    pub(crate) name: Option<String>,
    /// The plugin that builds the service.
    #[command(subcommand)]
    pub(crate) plugin: PluginChoice,
}

// `rtap convert`.
#[derive(Debug, Args)]
pub(crate) struct ConvertArgs {
    /// The snapshot or TAC file to read
    #[arg(value_name = "IN")]
    pub(crate) input: PathBuf,
    /// The snapshot to write
    #[arg(value_name = "OUT")]
    pub(crate) output: PathBuf,
    /// The output style (default: from OUT's extension)
    #[arg(long, value_name = "STYLE", value_parser = ["tap", "tas"])]
    pub(crate) style: Option<String>,
    /// Encrypt the output (default: as OUT's extension says, else as IN was)
    #[arg(long, conflicts_with = "decrypt")]
    pub(crate) encrypt: bool,
    /// Write the output unencrypted
    #[arg(long)]
    pub(crate) decrypt: bool,
}

// `rtap plugins`.
#[derive(Debug, Args)]
pub(crate) struct PluginsArgs {
    /// Print JSON for scripts
    #[arg(long)]
    pub(crate) json: bool,
}

/// Which tool a generated file is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Tool {
    /// `rtap`.
    Rtap,
    /// `rtwistd`.
    Rtwistd,
}

// `rtap completions`.
#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell
    #[arg(value_name = "SHELL")]
    pub(crate) shell: clap_complete::Shell,
    /// Which tool
    #[arg(long = "for", value_name = "TOOL", default_value = "rtap")]
    pub(crate) tool: Tool,
}

// `rtap man`.
#[derive(Debug, Args)]
pub(crate) struct ManArgs {
    /// Which tool
    #[arg(long = "for", value_name = "TOOL", default_value = "rtap")]
    pub(crate) tool: Tool,
}

/// Parses an `rtap` command line; an `rtap add` whose FILE is named like a plugin is read a
/// second time with FILE marked as such (see [`add_target`]).
fn parse(args: Vec<OsString>) -> Result<Rtap, clap::Error> {
    let (matches, marked) = match command().try_get_matches_from(&args) {
        Ok(matches) => (matches, false),
        // Help and version are not failures.
        Err(error) if !error.use_stderr() => return Err(error),
        Err(error) => {
            let again = add_target::mark_file(&args, &command())
                .map(|marked| command().try_get_matches_from(marked));
            match again {
                Some(Ok(matches)) => (matches, true),
                // Read as FILE PLUGIN, the line fails only on a value: that is what to fix.
                Some(Err(second))
                    if matches!(
                        second.kind(),
                        clap::error::ErrorKind::InvalidValue
                            | clap::error::ErrorKind::ValueValidation
                    ) =>
                {
                    return Err(second);
                }
                _ => return Err(error),
            }
        }
    };
    let mut rtap = Rtap::from_arg_matches(&matches)?;
    if let (true, RtapCommand::Add(add)) = (marked, &mut rtap.command) {
        add_target::unmark(&mut add.target.file);
    }
    Ok(rtap)
}

/// The clap definition of `rtap`, plugins included.
pub fn command() -> clap::Command {
    Rtap::command()
}

/// Runs `rtap` with these arguments (the first is the program name) and returns its exit
/// status. A binary that links more service types and plugins calls this from its `main`.
pub fn run(args: impl IntoIterator<Item = impl Into<OsString> + Clone>) -> ExitCode {
    run_tool("rtap", args, dispatch)
}

fn dispatch(args: Vec<OsString>) -> Result<(), CliError> {
    let rtap = parse(args)?;
    let access = Access {
        passphrase: rtap.passphrase.source(),
        limits: rtap.limits.limits(command())?,
        wait: rtap.wait,
    };
    match rtap.command {
        RtapCommand::Save(args) => save::run(&args, &access),
        RtapCommand::Inspect(args) => inspect::run(&args, &access),
        RtapCommand::Get(args) => get::run(&args, &access),
        RtapCommand::Edit(args) => edit::run(&args, &access),
        RtapCommand::Set(args) if args.target.live.live => live_set(&args),
        RtapCommand::Set(args) => modify::set(&args, &access),
        RtapCommand::Remove(args) if args.target.live.live => {
            live::remove(&args.target.live_socket("remove")?, &args.path)
        }
        RtapCommand::Remove(args) => modify::remove(&args, &access),
        RtapCommand::Rename(args) if args.service.target.live.live => live::rename(
            &args.service.target.live_socket("rename")?,
            &args.service.path,
            &args.newname,
        ),
        RtapCommand::Rename(args) => modify::rename(&args, &access),
        RtapCommand::Add(args) if args.target.live.live => {
            let socket = args.target.live_socket("add")?;
            live::add(&socket, args.parent.as_deref(), modify::added_child(&args)?)
        }
        RtapCommand::Add(args) => modify::add(&args, &access),
        RtapCommand::Status(args) if args.fleet => fleet_status::status(
            args.store
                .store
                .as_deref()
                .unwrap_or(std::path::Path::new("")),
            args.target.name.as_deref().unwrap_or_default(),
            args.json,
            &access,
        ),
        RtapCommand::Status(args) => live::status(
            &live::socket(
                args.target.name.as_deref(),
                args.target.control.as_deref(),
                "status",
            )?,
            args.json,
        ),
        RtapCommand::Checkpoint(args) => live::checkpoint(&live::socket(
            args.name.as_deref(),
            args.control.as_deref(),
            "checkpoint",
        )?),
        RtapCommand::Stop(args) => live::stop(&live::socket(
            args.name.as_deref(),
            args.control.as_deref(),
            "stop",
        )?),
        RtapCommand::Restart(args) => live::restart(&live::socket(
            args.name.as_deref(),
            args.control.as_deref(),
            "restart",
        )?),
        RtapCommand::Apply(args) => live::apply(
            &live::socket(Some(&args.name), args.control.as_deref(), "apply")?,
            &args.file,
            &access,
        ),
        RtapCommand::Convert(args) => convert::run(&args, &access),
        RtapCommand::Plugins(args) => list_plugins::run(&args),
        RtapCommand::Completions(args) => generate::completions(&args),
        RtapCommand::Man(args) => generate::man(&args),
        RtapCommand::Store(args) => store::run(args, &access),
    }
}

/// `rtap set --live NAME PATH FIELD=VALUE...`: fields of one service, set on its live value.
fn live_set(args: &SetArgs) -> Result<(), CliError> {
    if args.ids.uid.is_some()
        || args.ids.gid.is_some()
        || args.procname.is_some()
        || args.umask.is_some()
        || args.appname.appname.is_some()
    {
        return Err(usage(
            "set",
            "process settings and the application's name change only at a start: set them in the snapshot, then rtap restart",
        ));
    }
    let Some(path) = &args.path else {
        return Err(usage("set", "give the service's PATH and FIELD=VALUE"));
    };
    if args.assignments.is_empty() {
        return Err(usage(
            "set",
            &format!("nothing to set on '{path}': give FIELD=VALUE after the path"),
        ));
    }
    live::set(&args.target.live_socket("set")?, path, &args.assignments)
}

/// A usage error (exit status 2) of `rtap SUBCOMMAND`, formatted by clap.
pub(crate) fn usage(subcommand: &str, message: &str) -> CliError {
    CliError::Usage(crate::args::usage_error(
        command(),
        &[subcommand],
        clap::error::ErrorKind::ArgumentConflict,
        message,
    ))
}

/// `rtap` for the current process's arguments.
pub fn main() -> ExitCode {
    run(std::env::args_os())
}
