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
mod live;
mod options;
mod pidfile;
mod privileges;
mod run;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{Arg, ArgAction, Command};

use crate::error::{CliError, finish};
use crate::{ids, plugins};

pub use options::Options;

/// The snapshot `rtwistd` loads when given neither a file nor a plugin (twistd's `twistd.tap`).
pub const DEFAULT_FILE: &str = "rtwistd.tap";
/// The pidfile of a daemon (twistd's `twistd.pid`).
pub const DEFAULT_PIDFILE: &str = "rtwistd.pid";
/// The log file of a daemon (twistd's `twistd.log`).
pub const DEFAULT_LOGFILE: &str = "rtwistd.log";

fn flag(name: &'static str, long: &'static str, help: &'static str) -> Arg {
    Arg::new(name)
        .long(long)
        .action(ArgAction::SetTrue)
        .help(help)
}

fn value(
    name: &'static str,
    long: &'static str,
    value_name: &'static str,
    help: &'static str,
) -> Arg {
    Arg::new(name).long(long).value_name(value_name).help(help)
}

/// The clap definition of `rtwistd`, with one subcommand per registered plugin.
pub fn command() -> Command {
    let command = Command::new("rtwistd")
        .about("Run an rtwisted application from a snapshot or a plugin")
        .version(env!("CARGO_PKG_VERSION"))
        .subcommand_value_name("PLUGIN")
        .subcommand_help_heading("Plugins")
        .arg(
            flag(
                "nodaemon",
                "nodaemon",
                "Stay in the foreground (no pidfile unless --pidfile)",
            )
            .short('n'),
        )
        .arg(
            flag("no-save", "no-save", "Do not save the shutdown snapshot")
                .short('o')
                .alias("no_save"),
        )
        .arg(
            flag(
                "save",
                "save",
                "Save a shutdown snapshot even for a run from a plugin or a TAC file",
            )
            .conflicts_with("no-save"),
        )
        .arg(
            value(
                "file",
                "file",
                "FILE",
                "Snapshot to run (default: rtwistd.tap)",
            )
            .short('f')
            .conflicts_with("source"),
        )
        .arg(
            value("source", "source", "FILE", "Source (tas) snapshot to run")
                .short('s')
                .conflicts_with("python"),
        )
        .arg(
            value(
                "python",
                "python",
                "FILE",
                "TAC file to run: a Starlark program that defines `application` (saves nothing at shutdown unless --save)",
            )
            .short('y')
            .alias("tac")
            .conflicts_with("file"),
        )
        .arg(
            flag(
                "encrypted",
                "encrypted",
                "The snapshot is encrypted (also detected from the file)",
            )
            .short('e'),
        )
        .arg(crate::rtap::passphrase_file_arg())
        .arg(crate::snapshots::store_arg().help(
            "Load from the snapshot store at DIR (-f is then APP, APP@N or APP@TAG); shutdown saves and checkpoints go into it too",
        ))
        .arg(
            value(
                "logfile",
                "logfile",
                "FILE",
                "Log to FILE ('-' for stdout; default: rtwistd.log, or stdout with -n)",
            )
            .short('l'),
        )
        .arg(
            value(
                "log-format",
                "log-format",
                "FORMAT",
                "Log lines as text or json",
            )
            .value_parser(["text", "json"])
            .default_value("text"),
        )
        .arg(
            value(
                "log-max-size",
                "log-max-size",
                "BYTES",
                "Rotate the log file when it reaches this size (0: never)",
            )
            .value_parser(clap::value_parser!(u64))
            .default_value("1000000"),
        )
        .arg(
            value(
                "log-keep",
                "log-keep",
                "N",
                "Rotated log files to keep (FILE.1 ... FILE.N)",
            )
            .value_parser(clap::value_parser!(u32))
            .default_value("10"),
        )
        .arg(flag("syslog", "syslog", "Log to syslog").conflicts_with("logfile"))
        .arg(value("prefix", "prefix", "NAME", "The syslog identity").default_value("rtwistd"))
        .arg(value(
            "pidfile",
            "pidfile",
            "FILE",
            "Pidfile (default: rtwistd.pid in daemon mode; empty: none)",
        ))
        .arg(flag("no-pidfile", "no-pidfile", "Write no pidfile").conflicts_with("pidfile"))
        .arg(
            value(
                "rundir",
                "rundir",
                "DIR",
                "Change to DIR before running (shutdown snapshots go there)",
            )
            .short('d'),
        )
        .arg(value(
            "chroot",
            "chroot",
            "DIR",
            "chroot to DIR before running",
        ))
        .arg(
            value(
                "uid",
                "uid",
                "USER",
                "Run as this user (name or number) after the privileged start",
            )
            .short('u')
            .value_parser(ids::parse_uid),
        )
        .arg(
            value(
                "gid",
                "gid",
                "GROUP",
                "Run as this group (name or number) after the privileged start",
            )
            .short('g')
            .value_parser(ids::parse_gid),
        )
        .arg(
            value(
                "umask",
                "umask",
                "OCTAL",
                "The umask (default 077 in daemon mode)",
            )
            .value_parser(ids::parse_umask),
        )
        .arg(
            value(
                "checkpoint-every",
                "checkpoint-every",
                "DURATION",
                "Save the running tree as NAME-checkpoint.tap this often (30s, 5m, 1h); SIGUSR2 asks for one at once",
            )
            .value_parser(options::parse_duration),
        )
        .arg(
            value(
                "stop-timeout",
                "stop-timeout",
                "SECONDS",
                "How long each service may take to stop",
            )
            .default_value("10")
            .value_parser(options::parse_seconds),
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
    finish("rtwistd", crate::preflight().and_then(|()| dispatch(args)))
}

fn dispatch<I, T>(args: I) -> Result<(), CliError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    // Before anything opens a file: socket-activated descriptors start at 3.
    rtwisted_services::net::activation::claim();
    let mut command = command();
    let matches = command.try_get_matches_from_mut(args)?;
    let options = Options::from_matches(&matches, &mut command)?;
    run::run(options)
}

/// `rtwistd` for the current process's arguments.
pub fn main() -> ExitCode {
    run(std::env::args_os())
}
