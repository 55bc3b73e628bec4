//! `rtwistd`'s options, checked and resolved once, when the command line is parsed: every path
//! is made absolute against the launch folder, so a later chdir or daemonize cannot change what
//! it means.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::ArgMatches;
use clap::error::ErrorKind;
use rtwisted_services::plugin::ServiceMaker;

use super::{DEFAULT_FILE, DEFAULT_LOGFILE, DEFAULT_PIDFILE, RtwistdArgs};
use crate::error::CliError;
use crate::logging::{LogFormat, LogTarget};
use crate::passphrase::PassphraseSource;

/// Where the application comes from.
#[derive(Debug)]
pub enum Source {
    /// A snapshot file (either style; `-s` insists on the source style).
    File {
        /// The file, as given (it is read before any chdir).
        path: PathBuf,
        /// True for `-s`.
        source_style: bool,
        /// True when no file was given and this is the default, `rtwistd.tap`.
        defaulted: bool,
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
    /// The log filter the command line asks for (`-v`, `-q`, `--log-level`), if it does.
    pub log_filter: Option<String>,
    /// Whether log lines on a terminal are coloured.
    pub color: crate::logging::Color,
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
    /// The control socket: `None` for none, `Some(None)` for `NAME.ctl` in the run folder.
    pub control: Option<Option<PathBuf>>,
    /// Where to serve `/metrics` (a strports description), if anywhere.
    pub metrics: Option<String>,
    /// Start from the newest state descending from the snapshot given.
    pub resume: bool,
    /// The tag to follow (`--follow` with `-f APP@TAG` in a store on etcd).
    pub follow: Option<String>,
    /// The application whose singleton this run campaigns for (`--singleton`).
    pub singleton: Option<String>,
    /// The limits of every load and save.
    pub limits: rtwisted_persist::Limits,
}

/// Refuses, saying `what` needs it, unless `store` is a store on etcd.
fn on_etcd(what: &str, store: Option<&Path>) -> Result<(), String> {
    if store.is_some_and(crate::store_backend::is_remote) {
        Ok(())
    } else {
        Err(format!(
            "{what} in a store on etcd: give --store etcd://HOST:PORT/PREFIX"
        ))
    }
}

/// The application `--singleton` runs: `-f APP` in a store on etcd, in the foreground.
fn singleton_app(
    store: Option<&Path>,
    file: Option<&str>,
    nodaemon: bool,
) -> Result<String, String> {
    on_etcd("--singleton campaigns", store)?;
    if !nodaemon {
        return Err(
            "--singleton waits for its turn in the foreground: add -n (as under systemd)"
                .to_owned(),
        );
    }
    let text = file.ok_or("--singleton runs an application from the store: give -f APP")?;
    text.parse::<rtwisted_persist::store::StoreAddress>()
        .map(|address| address.app)
        .map_err(|error| error.to_string())
}

/// The tag `--follow` follows: `-f APP@TAG` in a store on etcd, or why not.
fn followed_tag(store: Option<&Path>, file: Option<&str>) -> Result<String, String> {
    on_etcd("--follow watches a tag", store)?;
    let text = file.unwrap_or_default();
    match text.parse::<rtwisted_persist::store::StoreAddress>() {
        Ok(rtwisted_persist::store::StoreAddress {
            selector: rtwisted_persist::store::Selector::Tag(tag),
            ..
        }) => Ok(tag),
        _ => Err(format!(
            "--follow follows a tag: give -f APP@TAG (not '{text}')"
        )),
    }
}

fn absolute(path: &str) -> Result<PathBuf, CliError> {
    std::path::absolute(Path::new(path))
        .map_err(|error| CliError::failed(format!("cannot resolve the path '{path}': {error}")))
}

impl Options {
    /// Resolves parsed arguments. Conflicting choices are usage errors.
    pub(crate) fn from_args(args: RtwistdArgs) -> Result<Self, CliError> {
        let usage = |message: &str| {
            CliError::Usage(crate::args::usage_error(
                super::command(),
                &[],
                ErrorKind::ArgumentConflict,
                message,
            ))
        };
        let file = args.file.as_ref();
        let source_file = args.source.as_ref();
        let tac = args.python.as_ref();
        let source = match (args.plugin, file, source_file) {
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
            (Some(plugin), None, None) => Source::Plugin {
                maker: plugin.maker,
                options: plugin.options,
            },
            // Snapshot paths stay as written: they are read before any chdir or chroot, and
            // errors should name them the way the user did.
            (None, _, Some(path)) => Source::File {
                path: PathBuf::from(path),
                source_style: true,
                defaulted: false,
            },
            (None, path, None) => Source::File {
                path: PathBuf::from(path.map_or(DEFAULT_FILE, String::as_str)),
                source_style: false,
                defaulted: path.is_none(),
            },
        };
        if args.resume && !matches!(source, Source::File { .. }) {
            return Err(usage(
                "--resume continues a snapshot's state: give it with -f FILE (or -s, or --store -f APP)",
            ));
        }
        let follow = if args.follow {
            let store = args.store.store.as_deref();
            Some(followed_tag(store, args.file.as_deref()).map_err(|message| usage(&message))?)
        } else {
            None
        };
        let singleton = if args.singleton {
            let store = args.store.store.as_deref();
            let app = singleton_app(store, args.file.as_deref(), args.nodaemon);
            Some(app.map_err(|message| usage(&message))?)
        } else {
            None
        };
        let nodaemon = args.nodaemon;
        // As in twistd, a run from a plugin or a TAC file saves nothing at shutdown unless asked
        // to: the program, not a snapshot, is the source of truth.
        let from_program = matches!(source, Source::Plugin { .. } | Source::Tac { .. });
        let log = if args.syslog {
            LogTarget::Syslog {
                prefix: args.prefix.clone(),
            }
        } else {
            match args.logfile.as_deref() {
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
        let pidfile = if args.no_pidfile {
            None
        } else {
            match args.pidfile.as_deref() {
                Some("") => None,
                Some(path) => Some(absolute(path)?),
                None if nodaemon => None,
                None => Some(absolute(DEFAULT_PIDFILE)?),
            }
        };
        let chroot = args.chroot.as_deref().map(absolute).transpose()?;
        let rundir = args.rundir.clone().unwrap_or_else(|| PathBuf::from("."));
        let store = args
            .store
            .store
            .as_deref()
            .map(crate::store_backend::absolute)
            .transpose()?;
        Ok(Options {
            nodaemon,
            save: !args.no_save && (!from_program || args.save),
            source,
            stop_timeout: args.stop_timeout,
            passphrase: args.passphrase.source(),
            log,
            log_format: match args.log_format.as_str() {
                "json" => LogFormat::Json,
                _ => LogFormat::Text,
            },
            log_filter: match (args.log_level, args.verbose, args.quiet) {
                (Some(filter), _, _) => {
                    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
                    // A lone word that is not a level would be taken as a target's name: a
                    // typo (`--log-level verbose`) would silence everything.
                    let lone_word = !filter.contains(['=', ',', '[']);
                    if lone_word && !LEVELS.contains(&filter.to_ascii_lowercase().as_str()) {
                        return Err(usage(&format!(
                            "--log-level '{filter}' is not a level: give one of error, warn, info, debug, trace (or directives such as info,rtwisted_services=debug)"
                        )));
                    }
                    if let Err(error) = tracing_subscriber::EnvFilter::try_new(&filter) {
                        return Err(usage(&format!(
                            "--log-level '{filter}' is not a level or filter: {error} (try info or debug)"
                        )));
                    }
                    Some(filter)
                }
                (None, 0, 0) => None,
                (None, 1, _) => Some("debug".to_owned()),
                (None, v, _) if v > 1 => Some("trace".to_owned()),
                (None, _, 1) => Some("warn".to_owned()),
                (None, _, _) => Some("error".to_owned()),
            },
            color: match args.color.as_str() {
                "always" => crate::logging::Color::Always,
                "never" => crate::logging::Color::Never,
                _ => crate::logging::Color::Auto,
            },
            log_max_size: args.log_max_size,
            log_keep: args.log_keep,
            pidfile,
            rundir,
            chroot,
            uid: args.ids.uid,
            gid: args.ids.gid,
            umask: args.umask,
            checkpoint_every: args.checkpoint_every,
            store,
            control: if args.no_control {
                None
            } else {
                Some(args.control.as_deref().map(absolute).transpose()?)
            },
            metrics: match args.metrics {
                Some(_) if !cfg!(feature = "metrics") => {
                    return Err(usage(
                        "this rtwistd was built without --metrics (the cargo feature `metrics`)",
                    ));
                }
                Some(description) => {
                    if let Err(error) =
                        description.parse::<rtwisted_services::strports::ServerEndpoint>()
                    {
                        return Err(usage(&format!(
                            "--metrics '{description}' is not an endpoint: {error}"
                        )));
                    }
                    Some(description)
                }
                None => None,
            },
            resume: args.resume,
            follow,
            singleton,
            limits: args.limits.limits(super::command())?,
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
