//! `rtap save PLUGIN`: build from a plugin and freeze (mktap).

use std::path::PathBuf;

use clap::ArgMatches;
use rtwisted_core::Style;

use crate::error::CliError;
use crate::plugins;

/// Builds the application from the chosen plugin and saves it.
pub fn run(matches: &ArgMatches) -> Result<(), CliError> {
    let (maker, options) = plugins::chosen(matches)
        .ok_or_else(|| CliError::failed("no plugin given; see rtap save --help"))?;
    let style = match matches.get_one::<String>("style").map(String::as_str) {
        Some("tas") => Style::Tas,
        _ => Style::Tap,
    };
    let name = matches
        .get_one::<String>("appname")
        .map_or(maker.name, String::as_str);
    let mut app = plugins::application_from(maker, options, name)?;
    app.persistence_mut().style = style;
    let path = matches.get_one::<String>("output").map_or_else(
        || PathBuf::from(rtwisted_persist::file_name(app.name(), None, style)),
        PathBuf::from,
    );
    let header = rtwisted_persist::save(&app, &path, style)?;
    println!(
        "saved {} application '{}' to {} ({})",
        style,
        app.name(),
        path.display(),
        header.checksum
    );
    Ok(())
}
