//! `rtap save PLUGIN`: build from a plugin and freeze (mktap), or add to a snapshot
//! (`--append`); `rtap save -y app.tac`: freeze the application a TAC file builds. An existing
//! snapshot is never overwritten without `--force`.

use std::path::{Path, PathBuf};

use super::SaveArgs;
use super::convert::{describe, style_from_extension};
use super::document::Document;
use crate::args::PluginChoice;
use crate::error::CliError;
use crate::plugins;
use crate::snapshots::{Access, Location, StorePut};

/// Builds the application from the chosen plugin or TAC file and saves it.
pub fn run(args: &SaveArgs, access: &Access) -> Result<(), CliError> {
    let mut app = match (&args.plugin, &args.python) {
        (Some(_), Some(_)) => {
            return Err(super::usage(
                "save",
                "give either a plugin or a TAC file (-y), not both",
            ));
        }
        (None, None) => {
            return Err(super::usage(
                "save",
                "nothing to save: give a plugin (see rtap plugins) or a TAC file with -y",
            ));
        }
        (None, Some(path)) => {
            let mut app = crate::tac_source::evaluate(path)?;
            if let Some(name) = &args.appname.appname {
                app.set_name(name.as_str())
                    .map_err(|error| CliError::failed(error.to_string()))?;
            }
            app
        }
        (Some(plugin), None) => {
            if let Some(target) = &args.append
                && target.exists()
            {
                return append(args, plugin, target, access);
            }
            let name = args.appname.appname.as_deref().unwrap_or(plugin.maker.name);
            plugins::application_from(plugin.maker, &plugin.options, name)?
        }
    };
    let explicit = args.append.clone().or_else(|| args.output.clone());
    let named = explicit.as_deref().and_then(style_from_extension);
    let style = args
        .style
        .style
        .or(named.map(|(style, _)| style))
        .unwrap_or(app.persistence().style);
    let encrypt = args.encrypt || named.is_some_and(|(_, encrypted)| encrypted);
    app.persistence_mut().style = style;
    if let Some(uid) = args.ids.uid {
        app.process_mut().uid = Some(uid);
    }
    if let Some(gid) = args.ids.gid {
        app.process_mut().gid = Some(gid);
    }
    let path = explicit.unwrap_or_else(|| {
        PathBuf::from(rtwisted_persist::file_name(
            app.name(),
            None,
            style,
            encrypt,
        ))
    });
    if args.store.is_none() && !args.force && path.exists() {
        return Err(CliError::failed(format!(
            "{} exists: nothing was saved; give --force to overwrite it, --append to add the service to it, or -o another file",
            path.display()
        )));
    }
    let key = if encrypt {
        Some(access.passphrase.key(true)?)
    } else {
        None
    };
    let options = access.save_options(key.as_ref(), None);
    if let Some(dir) = &args.store {
        let put = StorePut {
            tag: args.tag.as_deref(),
            ..StorePut::default()
        };
        let (header, _, written) =
            crate::snapshots::save_to_store(dir, &app, style, &options, access, put)?;
        crate::output::println(format!(
            "saved {} application '{}' as {written} ({})",
            describe(style, encrypt),
            app.name(),
            header.checksum
        ))?;
        return Ok(());
    }
    let header = crate::snapshots::save(&app, &path, style, &options)?;
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
    args: &SaveArgs,
    plugin: &PluginChoice,
    target: &Path,
    access: &Access,
) -> Result<(), CliError> {
    let mut document = Document::open(&Location::File(target.to_owned()), access, args.force)?;
    let service = plugins::make_service(plugin.maker, &plugin.options)?;
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
    if let Some(uid) = args.ids.uid {
        document.app.process_mut().uid = Some(uid);
    }
    if let Some(gid) = args.ids.gid {
        document.app.process_mut().gid = Some(gid);
    }
    let (header, _) = document.write()?;
    crate::output::println(format!(
        "appended '{}' to application '{}' in {} ({})",
        plugin.maker.name,
        document.app.name(),
        target.display(),
        header.checksum
    ))?;
    Ok(())
}
