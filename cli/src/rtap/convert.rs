//! `rtap convert IN OUT [--style tap|tas]`: Twisted's `tapconvert`. As tapconvert guesses a
//! `.tac` input to be a program, a TAC file converts too: it is run and its application saved.

use std::path::Path;

use rtwisted_core::Style;

use super::ConvertArgs;
use crate::error::CliError;
use crate::snapshots::{self, Access};

/// The style a file name asks for, and whether it names an encrypted snapshot, from its
/// extension: `.tap`, `.tas`, `.etap`, `.etas`.
pub fn style_from_extension(path: &Path) -> Option<(Style, bool)> {
    match path.extension()?.to_str()? {
        "tap" => Some((Style::Tap, false)),
        "tas" => Some((Style::Tas, false)),
        "etap" => Some((Style::Tap, true)),
        "etas" => Some((Style::Tas, true)),
        _ => None,
    }
}

/// Loads IN and saves it to OUT in the style given, or the one OUT's extension names.
pub fn run(args: &ConvertArgs, access: &Access) -> Result<(), CliError> {
    let source = &access.passphrase;
    let input = args.input.as_path();
    let output = args.output.as_path();
    let named = style_from_extension(output);
    let style = match &args.style {
        Some(style) => style
            .parse::<Style>()
            .map_err(|error| CliError::failed(error.to_string()))?,
        None => named.map(|(style, _)| style).ok_or_else(|| {
            super::usage(
                "convert",
                &format!(
                    "cannot tell the style of '{}' from its extension: name it .tap, .tas, .etap or .etas, or give --style tap|tas",
                    output.display()
                ),
            )
        })?,
    };
    let (mut app, key, encrypted, from, parent) = if crate::tac_source::is_tac(input) {
        let app = crate::tac_source::evaluate(input)?;
        (app, None, false, "TAC file".to_owned(), None)
    } else {
        let (snapshot, key) = snapshots::open(input, access)?;
        let from = describe(snapshot.header.fields.style, snapshot.encrypted);
        // The converted snapshot is made from this one: it records it as its parent.
        let parent = rtwisted_persist::lineage::Parent::of(&snapshot.header, None);
        (snapshot.app, key, snapshot.encrypted, from, Some(parent))
    };
    let encrypt = if args.encrypt {
        true
    } else if args.decrypt {
        false
    } else {
        named.map_or(encrypted, |(_, encrypted)| encrypted)
    };
    let key = match (encrypt, key) {
        (false, _) => None,
        (true, Some(key)) => Some(key),
        (true, None) => Some(source.key(true)?),
    };
    app.persistence_mut().style = style;
    let options = access.save_options(key.as_ref(), parent);
    let header = crate::snapshots::save(&app, output, style, &options)?;
    crate::output::println(format!(
        "converted {} ({from}) to {} ({}, {})",
        input.display(),
        output.display(),
        describe(style, key.is_some()),
        header.checksum
    ))?;
    Ok(())
}

/// `tap`, `tas`, `encrypted tap`, `encrypted tas`.
pub fn describe(style: Style, encrypted: bool) -> String {
    if encrypted {
        format!("encrypted {style}")
    } else {
        style.to_string()
    }
}
