//! `rtwistd`'s options, checked and resolved once, when the command line is parsed: every path
//! is made absolute against the launch folder, so a later chdir or daemonize cannot change what
//! it means.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::error::ErrorKind;
use clap::{ArgMatches, Command};
use rtwisted_services::plugin::ServiceMaker;

use super::{DEFAULT_FILE, DEFAULT_LOGFILE, DEFAULT_PIDFILE};
use crate::error::CliError;
use crate::logging::{LogFormat, LogTarget};
use crate::passphrase::PassphraseSource;
use crate::plugins;

/// Where the application comes from.
#[derive(Debug)]
pub enum Source {
    /// A snapshot file (either style; `-s` insists on the source style).
    File {
        /// The file, as given (it is read before any chdir).
        path: PathBuf,
        /// True for `-s`.
        source_style: bool,
    },
    /// A TAC file (`-y`): a Starlark program that defines `application`.
    Tac {
        /// The file, as given.
        path: PathBuf,
    },
    /// A plugin and its options.
    Plugin {
        /// The plugin.
        maker: &'static ServiceMaker,
        /// Its parsed options.
        options: ArgMatches,
    },
}

/// A resolved `rtwistd` command line.
#[derive(Debug)]
pub struct Options {
    /// Stay in the foreground.
    pub nodaemon: bool,
    /// Save the shutdown snapshot.
    pub save: bool,
    /// Where the application comes from.
    pub source: Source,
    /// The deadline for each service's stop.
    pub stop_timeout: Duration,
    /// Where the passphrase of an encrypted snapshot comes from.
    pub passphrase: PassphraseSource,
    /// Where log lines go.
    pub log: LogTarget,
    /// Text or JSON lines.
    pub log_format: LogFormat,
    /// Rotate the log file at this size (0: never).
    pub log_max_size: u64,
    /// Rotated log files kept.
    pub log_keep: u32,
    /// The pidfile, absolute, if one is written.
    pub pidfile: Option<PathBuf>,
    /// The folder to run in (inside the chroot, if there is one).
    pub rundir: PathBuf,
    /// The folder to chroot to, absolute.
    pub chroot: Option<PathBuf>,
    /// The user to switch to (overrides the application's setting).
    pub uid: Option<u32>,
    /// The group to switch to (overrides the application's setting).
    pub gid: Option<u32>,
    /// The umask; daemons default to 077.
    pub umask: Option<u32>,
    /// How often to save a checkpoint of the running tree.
    pub checkpoint_every: Option<Duration>,
    /// The snapshot store, absolute, when snapshots come from and go to one.
    pub store: Option<PathBuf>,
}

fn absolute(path: &str) -> Result<PathBuf, CliError> {
    std::path::absolute(Path::new(path))
        .map_err(|error| CliError::failed(format!("cannot resolve the path '{path}': {error}")))
}

impl Options {
    /// Resolves parsed arguments. Conflicting choices are usage errors.
    pub fn from_matches(matches: &ArgMatches, command: &mut Command) -> Result<Self, CliError> {
        let mut usage =
            |message: &str| CliError::Usage(command.error(ErrorKind::ArgumentConflict, message));
        let file = matches.get_one::<String>("file");
        let source_file = matches.get_one::<String>("source");
        let tac = matches.get_one::<String>("python");
        let source = match (plugins::chosen(matches), file, source_file) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                return Err(usage(
                    "give either a snapshot (-f/-s) or a plugin, not both",
                ));
            }
            (Some(_), None, None) if tac.is_some() => {
                return Err(usage("give either a TAC file (-y) or a plugin, not both"));
            }
            (None, None, None) if tac.is_some() => Source::Tac {
                path: PathBuf::from(tac.map_or("", String::as_str)),
            },
            (Some((maker, options)), None, None) => Source::Plugin {
                maker,
                options: options.clone(),
            },
            // Snapshot paths stay as written: they are read before any chdir or chroot, and
            // errors should name them the way the user did.
            (None, _, Some(path)) => Source::File {
                path: PathBuf::from(path),
                source_style: true,
            },
            (None, path, None) => Source::File {
                path: PathBuf::from(path.map_or(DEFAULT_FILE, String::as_str)),
                source_style: false,
            },
        };
        let nodaemon = matches.get_flag("nodaemon");
        // As in twistd, a run from a plugin or a TAC file saves nothing at shutdown unless asked
        // to: the program, not a snapshot, is the source of truth.
        let from_program = matches!(source, Source::Plugin { .. } | Source::Tac { .. });
        let log = if matches.get_flag("syslog") {
            LogTarget::Syslog {
                prefix: matches
                    .get_one::<String>("prefix")
                    .cloned()
                    .unwrap_or_else(|| "rtwistd".into()),
            }
        } else {
            match matches.get_one::<String>("logfile").map(String::as_str) {
                Some("-") if !nodaemon => {
                    return Err(usage(
                        "a daemon cannot log to stdout (its stdout is /dev/null): use -n, or --logfile FILE",
                    ));
                }
                Some("-") => LogTarget::Stdout,
                Some(path) => LogTarget::File(absolute(path)?),
                None if nodaemon => LogTarget::Stdout,
                None => LogTarget::File(absolute(DEFAULT_LOGFILE)?),
            }
        };
        let pidfile = if matches.get_flag("no-pidfile") {
            None
        } else {
            match matches.get_one::<String>("pidfile").map(String::as_str) {
                Some("") => None,
                Some(path) => Some(absolute(path)?),
                None if nodaemon => None,
                None => Some(absolute(DEFAULT_PIDFILE)?),
            }
        };
        let chroot = matches
            .get_one::<String>("chroot")
            .map(|path| absolute(path))
            .transpose()?;
        let rundir = PathBuf::from(
            matches
                .get_one::<String>("rundir")
                .map_or(".", String::as_str),
        );
        Ok(Options {
            nodaemon,
            save: !matches.get_flag("no-save") && (!from_program || matches.get_flag("save")),
            source,
            stop_timeout: matches
                .get_one::<Duration>("stop-timeout")
                .copied()
                .unwrap_or(rtwisted_core::lifecycle::DEFAULT_STOP_DEADLINE),
            passphrase: PassphraseSource::from_matches(matches),
            log,
            log_format: match matches.get_one::<String>("log-format").map(String::as_str) {
                Some("json") => LogFormat::Json,
                _ => LogFormat::Text,
            },
            log_max_size: matches
                .get_one::<u64>("log-max-size")
                .copied()
                .unwrap_or(1_000_000),
            log_keep: matches.get_one::<u32>("log-keep").copied().unwrap_or(10),
            pidfile,
            rundir,
            chroot,
            uid: matches.get_one::<u32>("uid").copied(),
            gid: matches.get_one::<u32>("gid").copied(),
            umask: matches.get_one::<u32>("umask").copied(),
            checkpoint_every: matches.get_one::<Duration>("checkpoint-every").copied(),
            store: matches
                .get_one::<String>("store")
                .map(|dir| absolute(dir))
                .transpose()?,
        })
    }
}

/// Parses a duration: `30s`, `5m`, `1h 30m`, `250ms`, or a plain number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration = match text.parse::<f64>() {
        Ok(_) => parse_seconds(text)?,
        Err(_) => humantime::parse_duration(text)
            .map_err(|error| format!("'{text}' is not a duration like 30s, 5m or 1h: {error}"))?,
    };
    if duration < Duration::from_millis(10) {
        return Err(format!(
            "'{text}' is too short: checkpoints need at least 10ms between them"
        ));
    }
    Ok(duration)
}

/// Parses a positive number of seconds, such as `10` or `2.5`.
pub fn parse_seconds(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| format!("'{text}' is not a number of seconds"))?;
    if !(seconds > 0.0 && seconds.is_finite() && seconds < 1e9) {
        return Err(format!("'{text}' must be a positive number of seconds"));
    }
    Ok(Duration::from_secs_f64(seconds))
}
