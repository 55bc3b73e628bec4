//! Plugins: named recipes (Twisted's `IServiceMaker`) that build a service from command-line
//! options, for `rtap save PLUGIN` and `rtwistd PLUGIN`.
//!
//! A plugin registers at link time with [`inventory`]; a binary that links the crate gets the
//! plugin with no other step:
//!
//! ```
//! use rtwisted_services::plugin::{PluginError, ServiceMaker};
//! use rtwisted_core::{Child, MultiService};
//!
//! fn options() -> clap::Command {
//!     clap::Command::new("empty")
//! }
//! fn make(_: &clap::ArgMatches) -> Result<Child, PluginError> {
//!     Ok(Child::named("empty", Box::new(MultiService::new()))?)
//! }
//! rtwisted_core::inventory::submit! {
//!     ServiceMaker { name: "empty", description: "An empty collection", options, make_service: make }
//! }
//! assert!(rtwisted_services::plugin::find("empty").is_some());
//! ```

pub mod classic;
mod kv;
mod portforward;
mod procmon;
#[cfg(feature = "web")]
mod web;

use crate::strports::InvalidEndpoint;
use rtwisted_core::Child;
use rtwisted_core::service::NameError;

/// A plugin could not build its service from the options given.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// An endpoint option did not parse.
    #[error(transparent)]
    Endpoint(#[from] InvalidEndpoint),
    /// A name was invalid.
    #[error(transparent)]
    Name(#[from] NameError),
    /// An option is missing or has a bad value.
    #[error("option --{option}: {message}")]
    Option {
        /// The option's long name.
        option: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// A plugin: a name (the subcommand), a description, its options, and a builder.
#[derive(Debug)]
pub struct ServiceMaker {
    /// The subcommand name, e.g. `echo`; also the default application and file name.
    pub name: &'static str,
    /// One line for `--help` and `rtap plugins`.
    pub description: &'static str,
    /// The plugin's options, as a clap command (its name and about are set from this struct).
    pub options: fn() -> clap::Command,
    /// Builds the service (named, as it joins the root) from the parsed options.
    pub make_service: fn(&clap::ArgMatches) -> Result<Child, PluginError>,
}

impl ServiceMaker {
    /// The plugin's clap command, named after the plugin and described by it.
    pub fn command(&self) -> clap::Command {
        (self.options)().name(self.name).about(self.description)
    }
}

inventory::collect!(ServiceMaker);

/// Every registered plugin, sorted by name (the first registration of a name wins).
pub fn plugins() -> Vec<&'static ServiceMaker> {
    let mut makers: Vec<&'static ServiceMaker> =
        inventory::iter::<ServiceMaker>.into_iter().collect();
    makers.sort_by_key(|maker| maker.name);
    makers.dedup_by_key(|maker| maker.name);
    makers
}

/// The plugin with this name.
pub fn find(name: &str) -> Option<&'static ServiceMaker> {
    inventory::iter::<ServiceMaker>
        .into_iter()
        .find(|maker| maker.name == name)
}

/// The value of `option`, which clap gives a default or requires; an error naming the option
/// if it is missing all the same.
pub(crate) fn required<T: Clone + Send + Sync + 'static>(
    options: &clap::ArgMatches,
    option: &'static str,
) -> Result<T, PluginError> {
    options
        .get_one::<T>(option)
        .cloned()
        .ok_or(PluginError::Option {
            option,
            message: "missing".into(),
        })
}

/// Builds the service of plugin `name` from command-line `args`, as `rtap NAME ARGS` would;
/// errors as text.
#[cfg(test)]
pub(crate) fn build(name: &str, args: &[&str]) -> Result<Child, String> {
    let maker = find(name).ok_or_else(|| format!("no plugin {name}"))?;
    let matches = maker
        .command()
        .try_get_matches_from(std::iter::once(name).chain(args.iter().copied()))
        .map_err(|error| error.to_string())?;
    (maker.make_service)(&matches).map_err(|error| error.to_string())
}
