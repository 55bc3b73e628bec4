//! `rtap convert IN OUT [--style tap|tas]`: Twisted's `tapconvert`.

use std::path::Path;

use clap::ArgMatches;
use rtwisted_core::Style;

use crate::error::CliError;

/// The style a file name asks for, from its extension.
pub fn style_from_extension(path: &Path) -> Option<Style> {
    match path.extension()?.to_str()? {
        "tap" => Some(Style::Tap),
        "tas" => Some(Style::Tas),
        _ => None,
    }
}

/// Loads IN and saves it to OUT in the style given, or the one OUT's extension names.
pub fn run(matches: &ArgMatches) -> Result<(), CliError> {
    let input = Path::new(
        matches
            .get_one::<String>("input")
            .ok_or_else(|| CliError::failed("no input given"))?,
    );
    let output = Path::new(
        matches
            .get_one::<String>("output")
            .ok_or_else(|| CliError::failed("no output given"))?,
    );
    let style = match matches.get_one::<String>("style") {
        Some(style) => style
            .parse::<Style>()
            .map_err(|error| CliError::failed(error.to_string()))?,
        None => style_from_extension(output).ok_or_else(|| {
            CliError::failed(format!(
                "cannot tell the style of '{}' from its extension: name it .tap or .tas, or give --style tap|tas",
                output.display()
            ))
        })?,
    };
    let mut snapshot = rtwisted_persist::load(input)?;
    let from = snapshot.header.fields.style;
    snapshot.app.persistence_mut().style = style;
    let header = rtwisted_persist::save(&snapshot.app, output, style)?;
    crate::output::println(format!(
        "converted {} ({from}) to {} ({style}, {})",
        input.display(),
        output.display(),
        header.checksum
    ))?;
    Ok(())
}
