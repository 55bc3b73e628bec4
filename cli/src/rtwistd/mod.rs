//! `rtwistd`: thaw an application and run it until a signal (Twisted's `twistd`).
//!
//! ```text
//! rtwistd [options] [-f FILE | -s FILE | -y FILE.tac]
//! rtwistd [options] PLUGIN [plugin options]
//! ```
//! A run goes: parse and load (decrypt, resolve users and groups) -> open the log -> take the
//! pidfile -> chroot, rundir, umask -> daemonize -> write the pid -> runtime -> privileged start
//! -> drop privileges -> start -> ready -> serve until SIGTERM/SIGINT -> stop in reverse order ->
//! shutdown save -> remove the pidfile. Exit status: 0 after a clean stop, 1 on any failure (the
//! reason on stderr in one line, in daemon mode too: the launching shell sees it), 2 on a usage
//! error.

mod daemon;
mod endpoints;
#[cfg(feature = "etcd")]
mod fleet;
mod handover;
mod live;
#[cfg(feature = "metrics")]
mod metrics;
mod options;
mod origin;
mod pidfile;
mod privileges;
mod requests;
mod restart;
mod run;
mod saves;
mod serve;
mod singleton;
mod systemd;
mod writable;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser};

use crate::args::{IdArgs, LimitArgs, PassphraseArgs, PluginChoice, StoreArgs};
use crate::error::{CliError, run_tool};

pub use options::Options;

/// The snapshot `rtwistd` loads when given neither a file nor a plugin (twistd's `twistd.tap`).
pub const DEFAULT_FILE: &str = "rtwistd.tap";
/// The pidfile of a daemon (twistd's `twistd.pid`).
pub const DEFAULT_PIDFILE: &str = "rtwistd.pid";
/// The log file of a daemon (twistd's `twistd.log`).
pub const DEFAULT_LOGFILE: &str = "rtwistd.log";

// The `rtwistd` command line, as parsed; [`Options`] is what it resolves to.
#[derive(Debug, Parser)]
#[command(
    name = "rtwistd",
    about = "Run an rtwisted application from a snapshot or a plugin",
    version,
    subcommand_value_name = "PLUGIN",
    subcommand_help_heading = "Plugins",
    mut_arg("store", |arg| arg.help(
        "Load from the snapshot store at DIR (-f is then APP, APP@N or APP@TAG); shutdown saves and checkpoints go into it too"
    )),
    mut_arg("uid", |arg| arg.help("Run as this user (name or number) after the privileged start")),
    mut_arg("gid", |arg| arg.help("Run as this group (name or number) after the privileged start")),
)]
pub(crate) struct RtwistdArgs {
    /// Stay in the foreground (no pidfile unless --pidfile)
    #[arg(short = 'n', long)]
    pub(crate) nodaemon: bool,
    /// Do not save the shutdown snapshot
    #[arg(short = 'o', long = "no-save", alias = "no_save")]
    pub(crate) no_save: bool,
    /// Save a shutdown snapshot even for a run from a plugin or a TAC file
    #[arg(long, conflicts_with = "no_save")]
    pub(crate) save: bool,
    /// Snapshot to run (default: rtwistd.tap)
    #[arg(short = 'f', long, value_name = "FILE", conflicts_with = "source")]
    pub(crate) file: Option<String>,
    /// Run from the newest state of the application: NAME-checkpoint.tap or NAME-shutdown.tap
    /// when one was saved after FILE and descends from it (in the store, the newest snapshot
    /// descending from the one addressed)
    #[arg(long)]
    pub(crate) resume: bool,
    /// With --store etcd://... -f APP@TAG: when the tag moves to another snapshot, apply it live (services it leaves unchanged keep running)
    #[arg(long)]
    pub(crate) follow: bool,
    /// With --store etcd://... -n -f APP: run on one member at a time; the others stand by and the newest takes over from the latest checkpoint when the leader dies
    #[arg(long, conflicts_with = "follow")]
    pub(crate) singleton: bool,
    /// Source (tas) snapshot to run
    #[arg(short = 's', long, value_name = "FILE", conflicts_with = "python")]
    pub(crate) source: Option<String>,
    /// TAC file to run: a Starlark program that defines `application` (saves nothing at shutdown unless --save)
    #[arg(
        short = 'y',
        long,
        alias = "tac",
        value_name = "FILE",
        conflicts_with = "file"
    )]
    pub(crate) python: Option<String>,
    /// The snapshot is encrypted (also detected from the file)
    #[arg(short = 'e', long)]
    pub(crate) encrypted: bool,
    #[command(flatten)]
    pub(crate) passphrase: PassphraseArgs,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    #[command(flatten)]
    pub(crate) limits: LimitArgs,
    /// Log to FILE ('-' for stdout; default: rtwistd.log, or stdout with -n)
    #[arg(short = 'l', long, value_name = "FILE")]
    pub(crate) logfile: Option<String>,
    /// Log lines as text or json
    #[arg(long, value_name = "FORMAT", value_parser = ["text", "json"], default_value = "text")]
    pub(crate) log_format: String,
    /// More log lines: -v for debug (one line per connection), -vv for trace
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count, conflicts_with_all = ["quiet", "log_level"])]
    pub(crate) verbose: u8,
    /// Fewer log lines: -q for warnings and errors, -qq for errors only
    #[arg(short = 'q', long = "quiet", action = clap::ArgAction::Count, conflicts_with = "log_level")]
    pub(crate) quiet: u8,
    /// The log filter: a level (error, warn, info, debug, trace) or tracing directives (info,rtwisted_services=debug); else RTWISTD_LOG, else RUST_LOG, else info
    #[arg(long, value_name = "LEVEL")]
    pub(crate) log_level: Option<String>,
    /// Colour in log lines on a terminal: auto (not when NO_COLOR is set), always, never
    #[arg(long, value_name = "WHEN", value_parser = ["auto", "always", "never"], default_value = "auto")]
    pub(crate) color: String,
    /// Rotate the log file when it reaches this size (0: never)
    #[arg(long, value_name = "BYTES", default_value = "1000000")]
    pub(crate) log_max_size: u64,
    /// Rotated log files to keep (FILE.1 ... FILE.N)
    #[arg(long, value_name = "N", default_value = "10")]
    pub(crate) log_keep: u32,
    /// Log to syslog
    #[arg(long, conflicts_with = "logfile")]
    pub(crate) syslog: bool,
    /// The syslog identity
    #[arg(long, value_name = "NAME", default_value = "rtwistd")]
    pub(crate) prefix: String,
    /// Pidfile (default: rtwistd.pid in daemon mode; empty: none)
    #[arg(long, value_name = "FILE")]
    pub(crate) pidfile: Option<String>,
    /// Write no pidfile
    #[arg(long, conflicts_with = "pidfile")]
    pub(crate) no_pidfile: bool,
    /// Change to DIR before running (shutdown snapshots go there)
    #[arg(short = 'd', long, value_name = "DIR")]
    pub(crate) rundir: Option<PathBuf>,
    /// chroot to DIR before running
    #[arg(long, value_name = "DIR")]
    pub(crate) chroot: Option<String>,
    #[command(flatten)]
    pub(crate) ids: IdArgs,
    /// The umask (default 077 in daemon mode)
    #[arg(long, value_name = "OCTAL", value_parser = crate::args::parse_umask)]
    pub(crate) umask: Option<u32>,
    /// Save the running tree as NAME-checkpoint.tap this often (30s, 5m, 1h); SIGUSR2 asks for one at once
    #[arg(long, value_name = "DURATION", value_parser = options::parse_duration)]
    pub(crate) checkpoint_every: Option<Duration>,
    /// The control socket rtap talks to (default: NAME.ctl in the run folder)
    #[arg(long, value_name = "PATH", conflicts_with = "no_control")]
    pub(crate) control: Option<String>,
    /// Listen on no control socket
    #[arg(long)]
    pub(crate) no_control: bool,
    /// Serve the live counters at /metrics in the Prometheus text format on this endpoint (tcp:9100:interface=127.0.0.1)
    #[arg(long, value_name = "STRPORT")]
    pub(crate) metrics: Option<String>,
    /// How long each service may take to stop
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = options::parse_seconds)]
    pub(crate) stop_timeout: Duration,
    #[command(subcommand)]
    pub(crate) plugin: Option<PluginChoice>,
}

/// The clap definition of `rtwistd`, with one subcommand per registered plugin.
pub fn command() -> clap::Command {
    RtwistdArgs::command()
}

/// Runs `rtwistd` with these arguments (the first is the program name) and returns its exit
/// status. A binary that links more service types and plugins calls this from its `main`.
pub fn run(args: impl IntoIterator<Item = impl Into<OsString> + Clone>) -> ExitCode {
    run_tool("rtwistd", args, dispatch)
}

fn dispatch(args: Vec<OsString>) -> Result<(), CliError> {
    // Before anything opens a file: socket-activated descriptors start at 3.
    rtwisted_services::net::activation::claim();
    let matches = command().try_get_matches_from(args)?;
    let args = RtwistdArgs::from_arg_matches(&matches)?;
    let options = Options::from_args(args)?;
    run::run(options)
}

/// `rtwistd` for the current process's arguments.
pub fn main() -> ExitCode {
    run(std::env::args_os())
}
