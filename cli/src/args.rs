//! Command-line arguments that `rtap` and `rtwistd` share, declared once as typed clap structs
//! (`#[command(flatten)]` them into a command), and the plugin subcommands, which are the only
//! part of either command line built at run time (each plugin brings a `clap::Command`).

use std::path::PathBuf;

use clap::error::ErrorKind;
use clap::{ArgMatches, Args, Command, FromArgMatches, Subcommand};
use rtwisted_core::Style;
use rtwisted_persist::Limits;
use rtwisted_services::plugin::{self, ServiceMaker};

use crate::ids;
use crate::passphrase::PassphraseSource;

// `--passphrase-file FILE`: where the passphrase of encrypted snapshots comes from.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct PassphraseArgs {
    /// Read the passphrase of encrypted snapshots from FILE (else RTWISTED_PASSPHRASE, else the terminal)
    #[arg(long = "passphrase-file", value_name = "FILE")]
    pub(crate) passphrase_file: Option<PathBuf>,
}

impl PassphraseArgs {
    /// The passphrase source these arguments name.
    pub fn source(&self) -> PassphraseSource {
        PassphraseSource::new(self.passphrase_file.clone())
    }
}

// `--store DIR`: snapshots come from (and go to) the snapshot store at DIR.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct StoreArgs {
    /// Use the snapshot store at DIR (a folder, or etcd://HOST:PORT[,...]/PREFIX); FILE is then an address: APP, APP@N or APP@TAG
    #[arg(long, value_name = "DIR")]
    pub(crate) store: Option<PathBuf>,
}

// `-u USER` / `-g GROUP`: who the daemon runs as, by name or number.
#[derive(Debug, Clone, Copy, Default, Args)]
pub(crate) struct IdArgs {
    /// User to run as (after the privileged start), by name or number
    #[arg(short = 'u', long, value_name = "USER", value_parser = ids::parse_uid)]
    pub(crate) uid: Option<u32>,
    /// Group to run as (after the privileged start), by name or number
    #[arg(short = 'g', long, value_name = "GROUP", value_parser = ids::parse_gid)]
    pub(crate) gid: Option<u32>,
}

// `--style tap|tas`.
#[derive(Debug, Clone, Copy, Default, Args)]
pub(crate) struct StyleArgs {
    /// tap: binary; tas: readable JSON source
    #[arg(long, value_name = "STYLE", value_parser = parse_style)]
    pub(crate) style: Option<Style>,
}

// `--appname NAME`.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct AppnameArgs {
    /// The application's name, which names its files
    #[arg(long, value_name = "NAME", value_parser = parse_app_name)]
    pub(crate) appname: Option<String>,
}

// `--max-snapshot-bytes` / `--max-snapshot-values`: the limits of every save and load.
#[derive(Debug, Clone, Copy, Default, Args)]
pub(crate) struct LimitArgs {
    /// The largest snapshot saved or loaded, in bytes (512MiB, 1GB, ...; default 512MiB, or $RTWISTED_MAX_SNAPSHOT_BYTES)
    #[arg(long = "max-snapshot-bytes", value_name = "BYTES", value_parser = parse_byte_count)]
    pub(crate) max_snapshot_bytes: Option<u64>,
    /// The most values a snapshot saved or loaded may hold (default 50000000, or $RTWISTED_MAX_SNAPSHOT_VALUES)
    #[arg(long = "max-snapshot-values", value_name = "N", value_parser = parse_count)]
    pub(crate) max_snapshot_values: Option<u64>,
}

impl LimitArgs {
    /// The limits: the options, else the environment variables, else the defaults. A variable
    /// that does not parse is a usage error of `tool`.
    pub(crate) fn limits(&self, tool: Command) -> Result<Limits, crate::error::CliError> {
        use rtwisted_persist::limits::{MAX_BYTES_VARIABLE, MAX_VALUES_VARIABLE};
        let from_env =
            |name: &str, parse: fn(&str) -> Result<u64, String>| match std::env::var(name) {
                Err(_) => Ok(None),
                Ok(text) => parse(&text).map(Some).map_err(|reason| {
                    crate::error::CliError::Usage(usage_error(
                        tool.clone(),
                        &[],
                        ErrorKind::InvalidValue,
                        &format!("{name}={text}: {reason}"),
                    ))
                }),
            };
        let mut limits = Limits::default();
        if let Some(bytes) = self.max_snapshot_bytes.map_or_else(
            || from_env(MAX_BYTES_VARIABLE, parse_byte_count),
            |b| Ok(Some(b)),
        )? {
            limits = limits.with_max_bytes(bytes);
        }
        if let Some(values) = self.max_snapshot_values.map_or_else(
            || from_env(MAX_VALUES_VARIABLE, parse_count),
            |v| Ok(Some(v)),
        )? {
            limits = limits.with_max_values(values);
        }
        Ok(limits)
    }
}

/// A byte count: a whole number with an optional unit (`600000000`, `600MB`, `512MiB`, `2G`).
pub(crate) fn parse_byte_count(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(split);
    let number: u64 = digits.parse().map_err(|_| {
        format!("'{text}' is not a number of bytes like 600000000, 600MB or 512MiB")
    })?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        "t" | "tb" => 1_000_000_000_000,
        "tib" => 1 << 40,
        _ => {
            return Err(format!(
                "'{text}' has an unknown unit (use B, kB, MB, GB, KiB, MiB or GiB)"
            ));
        }
    };
    number
        .checked_mul(scale)
        .filter(|&bytes| bytes > 0)
        .ok_or_else(|| format!("'{text}' is not a size between 1 byte and 16 EiB"))
}

/// A positive whole number.
pub(crate) fn parse_count(text: &str) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(0) | Err(_) => Err(format!("'{text}' is not a positive whole number")),
        Ok(count) => Ok(count),
    }
}

// `--force`: do it even though it overwrites, removes stored data, or edits a held snapshot.
#[derive(Debug, Clone, Copy, Default, Args)]
pub(crate) struct ForceArgs {
    /// Edit even a snapshot a running rtwistd holds, and remove stored data without asking
    #[arg(long)]
    pub(crate) force: bool,
}

/// `--umask OCTAL`.
pub fn parse_umask(text: &str) -> Result<u32, String> {
    ids::parse_umask(text)
}

fn parse_style(text: &str) -> Result<Style, String> {
    text.parse::<Style>().map_err(|error| error.to_string())
}

/// A service's name, as a child of a collection may have it.
pub(crate) fn parse_service_name(text: &str) -> Result<String, String> {
    rtwisted_core::service::validate_name(text)
        .map(|()| text.to_owned())
        .map_err(|error| error.to_string())
}

fn parse_app_name(text: &str) -> Result<String, String> {
    rtwisted_core::application::validate_app_name(text)
        .map(|()| text.to_owned())
        .map_err(|error| error.to_string())
}

/// The plugin a command line chose (`rtap save PLUGIN ...`, `rtap add FILE PLUGIN ...`,
/// `rtwistd PLUGIN ...`), with the plugin's own options as it parsed them.
///
/// Plugins register at link time, so their subcommands are added with clap's builder API:
/// this type implements [`Subcommand`] by hand, and a derived command line holds it as
/// `#[command(subcommand)] plugin: Option<PluginChoice>`.
#[derive(Debug, Clone)]
pub(crate) struct PluginChoice {
    /// The plugin.
    pub(crate) maker: &'static ServiceMaker,
    /// Its options, parsed by the plugin's own `clap::Command`.
    pub(crate) options: ArgMatches,
}

impl FromArgMatches for PluginChoice {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let Some((name, options)) = matches.subcommand() else {
            return Err(clap::Error::raw(
                ErrorKind::MissingSubcommand,
                "no plugin given; see rtap plugins\n",
            ));
        };
        let maker = plugin::find(name).ok_or_else(|| {
            clap::Error::raw(
                ErrorKind::InvalidSubcommand,
                format!("no plugin named '{name}'; see rtap plugins\n"),
            )
        })?;
        Ok(PluginChoice {
            maker,
            options: options.clone(),
        })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl Subcommand for PluginChoice {
    fn augment_subcommands(command: Command) -> Command {
        plugin::plugins()
            .into_iter()
            .fold(command, |command, maker| {
                command.subcommand(maker.command())
            })
    }

    fn augment_subcommands_for_update(command: Command) -> Command {
        Self::augment_subcommands(command)
    }

    fn has_subcommand(name: &str) -> bool {
        plugin::find(name).is_some()
    }
}

/// A usage error (exit status 2) of the command `path` names (`["rtap", "set"]`), formatted
/// by clap like the errors it finds itself.
pub fn usage_error(
    mut command: Command,
    path: &[&str],
    kind: ErrorKind,
    message: &str,
) -> clap::Error {
    command.build();
    let mut here = command;
    for name in path {
        match here.find_subcommand(name) {
            Some(sub) => here = sub.clone(),
            None => break,
        }
    }
    here.error(kind, message)
}

/// `--wait SECONDS`: a whole or decimal number of seconds, at most a day.
pub(crate) fn parse_wait(text: &str) -> Result<std::time::Duration, String> {
    match text.parse::<f64>() {
        Ok(seconds) if seconds.is_finite() && (0.0..=86_400.0).contains(&seconds) => {
            Ok(std::time::Duration::from_secs_f64(seconds))
        }
        _ => Err(format!("'{text}' is not a number of seconds (0 to 86400)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts_take_units() {
        assert_eq!(parse_byte_count("600000000"), Ok(600_000_000));
        assert_eq!(parse_byte_count("600MB"), Ok(600_000_000));
        assert_eq!(parse_byte_count("512MiB"), Ok(512 << 20));
        assert_eq!(parse_byte_count("2 g"), Ok(2_000_000_000));
        for bad in ["", "MB", "-1", "12XB", "0", "99999999999999TB"] {
            assert!(parse_byte_count(bad).is_err(), "{bad}");
        }
    }
}
