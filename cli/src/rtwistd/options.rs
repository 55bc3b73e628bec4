//! `rtwistd`'s options, checked and resolved once, when the command line is parsed.

use std::path::PathBuf;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::{ArgMatches, Command};
use rtwisted_core::plugin::ServiceMaker;

use super::DEFAULT_FILE;
use crate::error::CliError;
use crate::passphrase::PassphraseSource;
use crate::plugins;

/// Where the application comes from.
#[derive(Debug)]
pub enum Source {
    /// A snapshot file (either style; `-s` insists on the source style).
    File {
        /// The file.
        path: PathBuf,
        /// True for `-s`.
        source_style: bool,
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
}

impl Options {
    /// Resolves parsed arguments; a file together with a plugin is a usage error.
    pub fn from_matches(matches: &ArgMatches, command: &mut Command) -> Result<Self, CliError> {
        let file = matches.get_one::<String>("file");
        let source_file = matches.get_one::<String>("source");
        let source = match (plugins::chosen(matches), file, source_file) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                return Err(CliError::Usage(command.error(
                    ErrorKind::ArgumentConflict,
                    "give either a snapshot (-f/-s) or a plugin, not both",
                )));
            }
            (Some((maker, options)), None, None) => Source::Plugin {
                maker,
                options: options.clone(),
            },
            (None, _, Some(path)) => Source::File {
                path: PathBuf::from(path),
                source_style: true,
            },
            (None, path, None) => Source::File {
                path: PathBuf::from(path.map_or(DEFAULT_FILE, String::as_str)),
                source_style: false,
            },
        };
        let from_plugin = matches!(source, Source::Plugin { .. });
        Ok(Options {
            nodaemon: matches.get_flag("nodaemon"),
            // As in twistd, a run from a plugin saves nothing at shutdown.
            save: !matches.get_flag("no-save") && !from_plugin,
            source,
            stop_timeout: matches
                .get_one::<Duration>("stop-timeout")
                .copied()
                .unwrap_or(rtwisted_core::lifecycle::DEFAULT_STOP_DEADLINE),
            passphrase: PassphraseSource::from_matches(matches),
        })
    }
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
