//! Scriptable edits, each validated as a whole and written atomically:
//! `rtap set`, `rtap remove`, `rtap rename`, `rtap add`.

use rtwisted_core::PathSegment;
use serde_json::Value;

use super::document::{Document, node_mut, parse_path};
use super::{AddArgs, RemoveArgs, RenameArgs, SetArgs};
use crate::error::CliError;
use crate::passphrase::PassphraseSource;
use crate::plugins;
use crate::snapshots::Location;

/// Keys of a service's data that are not plain fields.
const RESERVED: [&str; 3] = ["type", "name", "children"];

fn file(text: &str, store: Option<&std::path::Path>) -> Result<Location, CliError> {
    Location::new(text, store)
}

fn say(document: &Document, what: &str) -> Result<(), CliError> {
    let (header, written) = document.write()?;
    crate::output::println(format!("{what}; wrote {written} ({})", header.checksum))?;
    Ok(())
}

/// `rtap set FILE [PATH FIELD=VALUE...] [--uid U] [--gid G] [--procname N] [--umask M] [--appname N]`.
pub fn set(args: &SetArgs, passphrase: &PassphraseSource) -> Result<(), CliError> {
    let nothing = args.path.is_none()
        && args.ids.uid.is_none()
        && args.ids.gid.is_none()
        && args.procname.is_none()
        && args.umask.is_none()
        && args.appname.appname.is_none();
    if nothing {
        return Err(super::usage(
            "set",
            "nothing to set: give PATH FIELD=VALUE, or --uid, --gid, --procname, --umask, --appname",
        ));
    }
    if let Some(path) = &args.path
        && args.assignments.is_empty()
    {
        return Err(super::usage(
            "set",
            &format!("nothing to set on '{path}': give FIELD=VALUE after the path"),
        ));
    }
    if let Some(bad) = args.assignments.iter().find(|a| !a.contains('=')) {
        return Err(super::usage("set", &format!("'{bad}' is not FIELD=VALUE")));
    }
    let mut document = Document::open(&file(&args.file, args.store.store.as_deref())?, passphrase)?;
    let mut changed = Vec::new();
    let assignments = &args.assignments;
    if let Some(path) = &args.path {
        let path = parse_path("set", path)?;
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
    if let Some(uid) = args.ids.uid {
        process.uid = Some(uid);
        changed.push("uid".into());
    }
    if let Some(gid) = args.ids.gid {
        process.gid = Some(gid);
        changed.push("gid".into());
    }
    if let Some(name) = &args.procname {
        process.process_name = Some(name.clone());
        changed.push("process name".into());
    }
    if let Some(umask) = args.umask {
        process.umask = Some(umask);
        changed.push("umask".into());
    }
    if let Some(name) = &args.appname.appname {
        document
            .app
            .set_name(name.clone())
            .map_err(|error| CliError::failed(error.to_string()))?;
        changed.push("application name".into());
    }
    say(&document, &format!("set {}", changed.join(", ")))
}

/// `rtap remove FILE PATH`.
pub fn remove(args: &RemoveArgs, passphrase: &PassphraseSource) -> Result<(), CliError> {
    let path = parse_path("remove", &args.path)?;
    let mut document = Document::open(&file(&args.file, args.store.store.as_deref())?, passphrase)?;
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
pub fn rename(args: &RenameArgs, passphrase: &PassphraseSource) -> Result<(), CliError> {
    let path = parse_path("rename", &args.path)?;
    let new_name = &args.newname;
    rtwisted_core::service::validate_name(new_name)
        .map_err(|error| super::usage("rename", &error.to_string()))?;
    let mut document = Document::open(&file(&args.file, args.store.store.as_deref())?, passphrase)?;
    split_last(&path)?;
    let mut value = document.to_value()?;
    node_mut(&mut value, &path)?.insert("name".into(), Value::String(new_name.clone()));
    document.replace_with(value)?;
    say(&document, &format!("renamed '{path}' to '{new_name}'"))
}

/// `rtap add FILE [--parent PATH] PLUGIN [plugin options]`.
pub fn add(args: &AddArgs, passphrase: &PassphraseSource) -> Result<(), CliError> {
    let parent = match &args.parent {
        Some(text) => parse_path("add", text)?,
        None => rtwisted_core::ServicePath::root(),
    };
    let mut document = Document::open(&file(&args.file, args.store.store.as_deref())?, passphrase)?;
    let (maker, options) = (args.plugin.maker, &args.plugin.options);
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

fn split_last(
    path: &rtwisted_core::ServicePath,
) -> Result<(rtwisted_core::ServicePath, PathSegment), CliError> {
    let (last, parents) = path
        .segments()
        .split_last()
        .ok_or_else(|| CliError::failed("the root '/' cannot be removed or renamed"))?;
    Ok((parents.to_vec().into(), last.clone()))
}
