//! Plugins on the command line: each registered `ServiceMaker` becomes a subcommand.

use clap::{ArgMatches, Command};
use rtwisted_core::{Application, Child};
use rtwisted_services::plugin::{self, ServiceMaker};

use crate::error::CliError;

/// `command` with one subcommand per registered plugin.
pub fn with_plugin_subcommands(command: Command) -> Command {
    plugin::plugins()
        .into_iter()
        .fold(command, |command, maker| {
            command.subcommand(maker.command())
        })
}

/// The plugin named by the matched subcommand and its options.
pub fn chosen(matches: &ArgMatches) -> Option<(&'static ServiceMaker, &ArgMatches)> {
    let (name, options) = matches.subcommand()?;
    Some((plugin::find(name)?, options))
}

/// Builds the plugin's service from its options.
pub fn make_service(maker: &ServiceMaker, options: &ArgMatches) -> Result<Child, CliError> {
    (maker.make_service)(options)
        .map_err(|error| CliError::failed(format!("plugin '{}': {error}", maker.name)))
}

/// A new application named `name` holding the plugin's service, as mktap and twistd build it.
pub fn application_from(
    maker: &ServiceMaker,
    options: &ArgMatches,
    name: &str,
) -> Result<Application, CliError> {
    let mut app = Application::new(name).map_err(|error| CliError::failed(error.to_string()))?;
    let service = make_service(maker, options)?;
    app.services_mut()
        .insert(service)
        .map_err(|error| CliError::failed(error.to_string()))?;
    Ok(app)
}

/// The lines listing the plugins, for `--help`.
pub fn listing() -> String {
    let mut text = String::from("Plugins:\n");
    for maker in plugin::plugins() {
        text.push_str(&format!("  {:<12} {}\n", maker.name, maker.description));
    }
    text
}
