//! `rtap save PLUGIN`: build from a plugin and freeze (mktap), or add to a snapshot
//! (`--append`); `rtap save -y app.tac`: freeze the application a TAC file builds.

use std::path::{Path, PathBuf};

use clap::ArgMatches;
use rtwisted_core::Style;

use super::convert::{describe, style_from_extension};
use super::document::Document;
use crate::error::CliError;
use crate::passphrase::PassphraseSource;
use crate::plugins;
use crate::snapshots::Location;

/// Builds the application from the chosen plugin or TAC file and saves it.
pub fn run(matches: &ArgMatches) -> Result<(), CliError> {
    let tac = matches.get_one::<String>("python").map(PathBuf::from);
    let chosen = plugins::chosen(matches);
    let asked_style = matches
        .get_one::<String>("style")
        .map(|style| style.parse::<Style>())
        .transpose()
        .map_err(|error| CliError::failed(error.to_string()))?;
    let mut app = match (chosen, tac) {
        (Some(_), Some(_)) => {
            return Err(CliError::failed(
                "give either a plugin or a TAC file (-y), not both",
            ));
        }
        (None, None) => {
            return Err(CliError::failed(
                "nothing to save: give a plugin (see rtap plugins) or a TAC file with -y",
            ));
        }
        (None, Some(path)) => {
            let mut app = crate::tac_source::evaluate(&path)?;
            if let Some(name) = matches.get_one::<String>("appname") {
                app.set_name(name.as_str())
                    .map_err(|error| CliError::failed(error.to_string()))?;
            }
            app
        }
        (Some((maker, options)), None) => {
            if let Some(target) = matches.get_one::<String>("append") {
                let target = Path::new(target);
                if target.exists() {
                    return append(matches, maker, options, target);
                }
            }
            let name = matches
                .get_one::<String>("appname")
                .map_or(maker.name, String::as_str);
            plugins::application_from(maker, options, name)?
        }
    };
    let explicit = matches
        .get_one::<String>("append")
        .or_else(|| matches.get_one::<String>("output"))
        .map(PathBuf::from);
    let named = explicit.as_deref().and_then(style_from_extension);
    let style = asked_style
        .or(named.map(|(style, _)| style))
        .unwrap_or(app.persistence().style);
    let encrypt = matches.get_flag("encrypt") || named.is_some_and(|(_, encrypted)| encrypted);
    app.persistence_mut().style = style;
    if let Some(uid) = matches.get_one::<u32>("uid") {
        app.process_mut().uid = Some(*uid);
    }
    if let Some(gid) = matches.get_one::<u32>("gid") {
        app.process_mut().gid = Some(*gid);
    }
    let path = explicit.unwrap_or_else(|| {
        PathBuf::from(rtwisted_persist::file_name(
            app.name(),
            None,
            style,
            encrypt,
        ))
    });
    let key = if encrypt {
        Some(PassphraseSource::from_matches(matches).key(true)?)
    } else {
        None
    };
    if let Some(dir) = matches.get_one::<String>("store") {
        let tag = matches.get_one::<String>("tag").map(String::as_str);
        let (header, written) = crate::snapshots::save_to_store(
            std::path::Path::new(dir),
            &app,
            style,
            key.as_ref(),
            tag,
        )?;
        crate::output::println(format!(
            "saved {} application '{}' as {written} ({})",
            describe(style, encrypt),
            app.name(),
            header.checksum
        ))?;
        return Ok(());
    }
    let header = crate::snapshots::save(&app, &path, style, key.as_ref())?;
    crate::output::println(format!(
        "saved {} application '{}' to {} ({})",
        describe(style, encrypt),
        app.name(),
        path.display(),
        header.checksum
    ))?;
    Ok(())
}

/// `--append FILE` with an existing FILE: the plugin's service joins its root; a name clash
/// leaves the file untouched.
fn append(
    matches: &ArgMatches,
    maker: &rtwisted_services::plugin::ServiceMaker,
    options: &ArgMatches,
    target: &Path,
) -> Result<(), CliError> {
    let mut document = Document::open(
        &Location::File(target.to_owned()),
        &PassphraseSource::from_matches(matches),
    )?;
    let service = plugins::make_service(maker, options)?;
    document
        .app
        .services_mut()
        .insert(service)
        .map_err(|error| {
            CliError::failed(format!(
                "cannot append to {}: {error}; the file is unchanged",
                target.display()
            ))
        })?;
    if let Some(uid) = matches.get_one::<u32>("uid") {
        document.app.process_mut().uid = Some(*uid);
    }
    if let Some(gid) = matches.get_one::<u32>("gid") {
        document.app.process_mut().gid = Some(*gid);
    }
    let (header, _) = document.write()?;
    crate::output::println(format!(
        "appended '{}' to application '{}' in {} ({})",
        maker.name,
        document.app.name(),
        target.display(),
        header.checksum
    ))?;
    Ok(())
}
