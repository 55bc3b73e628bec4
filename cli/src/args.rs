//! Command-line arguments that `rtap` and `rtwistd` share, declared once as typed clap structs
//! (`#[command(flatten)]` them into a command), and the plugin subcommands, which are the only
//! part of either command line built at run time (each plugin brings a `clap::Command`).

use std::path::PathBuf;

use clap::error::ErrorKind;
use clap::{ArgMatches, Args, Command, FromArgMatches, Subcommand};
use rtwisted_core::Style;
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
    /// Use the snapshot store at DIR; FILE is then an address: APP, APP@N or APP@TAG
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

/// `--umask OCTAL`.
pub fn parse_umask(text: &str) -> Result<u32, String> {
    ids::parse_umask(text)
}

fn parse_style(text: &str) -> Result<Style, String> {
    text.parse::<Style>().map_err(|error| error.to_string())
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
