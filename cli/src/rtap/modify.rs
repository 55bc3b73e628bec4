//! Scriptable edits, each validated as a whole and written atomically:
//! `rtap set`, `rtap remove`, `rtap rename`, `rtap add`.

use clap::ArgMatches;
use rtwisted_core::PathSegment;
use serde_json::Value;

use super::document::{Document, node_mut, parse_path};
use crate::error::CliError;
use crate::passphrase::PassphraseSource;
use crate::plugins;
use crate::snapshots::Location;

/// Keys of a service's data that are not plain fields.
const RESERVED: [&str; 3] = ["type", "name", "children"];

fn file(matches: &ArgMatches) -> Result<Location, CliError> {
    Location::from_matches(matches, "file")
}

fn say(document: &Document, what: &str) -> Result<(), CliError> {
    let (header, written) = document.write()?;
    crate::output::println(format!("{what}; wrote {written} ({})", header.checksum))?;
    Ok(())
}

/// `rtap set FILE [PATH FIELD=VALUE...] [--uid U] [--gid G] [--procname N] [--umask M] [--appname N]`.
pub fn set(matches: &ArgMatches) -> Result<(), CliError> {
    let mut document = Document::open(&file(matches)?, &PassphraseSource::from_matches(matches))?;
    let mut changed = Vec::new();
    let assignments: Vec<&String> = matches
        .get_many::<String>("assignments")
        .map(Iterator::collect)
        .unwrap_or_default();
    if let Some(path) = matches.get_one::<String>("path") {
        if assignments.is_empty() {
            return Err(CliError::failed(format!(
                "nothing to set on '{path}': give FIELD=VALUE after the path"
            )));
        }
        let path = parse_path(path)?;
        let mut value = document.to_value()?;
        let node = node_mut(&mut value, &path)?;
        for assignment in assignments {
            let (field, text) = assignment
                .split_once('=')
                .ok_or_else(|| CliError::failed(format!("'{assignment}' is not FIELD=VALUE")))?;
            if RESERVED.contains(&field) {
                return Err(CliError::failed(format!(
                    "'{field}' cannot be set: use `rtap rename` for names, and remove and add a service to change its type or children"
                )));
            }
            if !node.contains_key(field) {
                let fields: Vec<&str> = node
                    .keys()
                    .map(String::as_str)
                    .filter(|key| !RESERVED.contains(key))
                    .collect();
                return Err(CliError::failed(format!(
                    "service '{path}' has no field '{field}' (its fields: {})",
                    if fields.is_empty() {
                        "none".to_owned()
                    } else {
                        fields.join(", ")
                    }
                )));
            }
            let parsed = serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.into()));
            node.insert(field.to_owned(), parsed);
            changed.push(format!("{path}: {field}"));
        }
        document.replace_with(value)?;
    }
    let process = document.app.process_mut();
    if let Some(uid) = matches.get_one::<u32>("uid") {
        process.uid = Some(*uid);
        changed.push("uid".into());
    }
    if let Some(gid) = matches.get_one::<u32>("gid") {
        process.gid = Some(*gid);
        changed.push("gid".into());
    }
    if let Some(name) = matches.get_one::<String>("procname") {
        process.process_name = Some(name.clone());
        changed.push("process name".into());
    }
    if let Some(umask) = matches.get_one::<u32>("umask") {
        process.umask = Some(*umask);
        changed.push("umask".into());
    }
    if let Some(name) = matches.get_one::<String>("appname") {
        document
            .app
            .set_name(name.clone())
            .map_err(|error| CliError::failed(error.to_string()))?;
        changed.push("application name".into());
    }
    if changed.is_empty() {
        return Err(CliError::failed(
            "nothing to set: give PATH FIELD=VALUE, or --uid, --gid, --procname, --umask, --appname",
        ));
    }
    say(&document, &format!("set {}", changed.join(", ")))
}

/// `rtap remove FILE PATH`.
pub fn remove(matches: &ArgMatches) -> Result<(), CliError> {
    let mut document = Document::open(&file(matches)?, &PassphraseSource::from_matches(matches))?;
    let path = service_path(matches)?;
    let (parent, last) = split_last(&path)?;
    let collection = document
        .app
        .services_mut()
        .collection_at_mut(&parent)
        .map_err(|error| CliError::failed(error.to_string()))?;
    let removed = collection
        .remove(&last)
        .map_err(|_| CliError::failed(format!("no service at '{path}'")))?;
    say(
        &document,
        &format!("removed '{path}' ({})", removed.service().type_tag()),
    )
}

/// `rtap rename FILE PATH NEWNAME`.
pub fn rename(matches: &ArgMatches) -> Result<(), CliError> {
    let mut document = Document::open(&file(matches)?, &PassphraseSource::from_matches(matches))?;
    let path = service_path(matches)?;
    split_last(&path)?;
    let new_name = matches
        .get_one::<String>("newname")
        .ok_or_else(|| CliError::failed("no new name given"))?;
    rtwisted_core::service::validate_name(new_name)
        .map_err(|error| CliError::failed(error.to_string()))?;
    let mut value = document.to_value()?;
    node_mut(&mut value, &path)?.insert("name".into(), Value::String(new_name.clone()));
    document.replace_with(value)?;
    say(&document, &format!("renamed '{path}' to '{new_name}'"))
}

/// `rtap add FILE [--parent PATH] PLUGIN [plugin options]`.
pub fn add(matches: &ArgMatches) -> Result<(), CliError> {
    let mut document = Document::open(&file(matches)?, &PassphraseSource::from_matches(matches))?;
    let (maker, options) = plugins::chosen(matches)
        .ok_or_else(|| CliError::failed("no plugin given; see rtap add --help"))?;
    let parent = match matches.get_one::<String>("parent") {
        Some(text) => parse_path(text)?,
        None => rtwisted_core::ServicePath::root(),
    };
    let service = plugins::make_service(maker, options)?;
    let shown = service.name().unwrap_or("(unnamed)").to_owned();
    document
        .app
        .services_mut()
        .collection_at_mut(&parent)
        .and_then(|collection| collection.insert(service))
        .map_err(|error| CliError::failed(error.to_string()))?;
    say(
        &document,
        &format!(
            "added '{shown}' from the '{}' plugin under '{parent}'",
            maker.name
        ),
    )
}

fn service_path(matches: &ArgMatches) -> Result<rtwisted_core::ServicePath, CliError> {
    let text = matches
        .get_one::<String>("path")
        .ok_or_else(|| CliError::failed("no service path given"))?;
    parse_path(text)
}

fn split_last(
    path: &rtwisted_core::ServicePath,
) -> Result<(rtwisted_core::ServicePath, PathSegment), CliError> {
    let (last, parents) = path
        .segments()
        .split_last()
        .ok_or_else(|| CliError::failed("the root '/' cannot be removed or renamed"))?;
    Ok((parents.to_vec().into(), last.clone()))
}
