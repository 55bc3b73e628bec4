//! Building services and applications from plugins (each registered `ServiceMaker` is a
//! subcommand: see [`PluginChoice`](crate::args::PluginChoice)).

use clap::ArgMatches;
use rtwisted_core::{Application, Child};
use rtwisted_services::plugin::ServiceMaker;

use crate::error::CliError;

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
