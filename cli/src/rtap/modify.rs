//! Scriptable edits, each validated as a whole and written atomically under the snapshot's
//! lock: `rtap set`, `rtap remove`, `rtap rename`, `rtap add`. Each prints what it wrote and
//! then every change as `old -> new`; one that would remove stored data (kv items, counters)
//! says how much and needs `--force` (or a yes on the terminal).

use rtwisted_core::PathSegment;
use serde_json::Value;

use super::document::{Document, node_mut, parse_path};
use super::stored;
use super::{AddArgs, RenameArgs, ServiceArgs, SetArgs};
use crate::error::CliError;
use crate::output::field_line;
use crate::plugins;
use crate::snapshots::Access;

/// Keys of a service's data that are not plain fields.
const RESERVED: [&str; 3] = ["type", "name", "children"];

/// Writes the document and prints what was written, then each change.
fn say(document: &Document, changes: &[String]) -> Result<(), CliError> {
    let (header, written) = document.write()?;
    let mut text = format!("wrote {written} ({})\n", header.checksum);
    for change in changes {
        text.push_str(change);
        text.push('\n');
    }
    crate::output::print(text)
}

/// `rtap set FILE [PATH FIELD=VALUE...] [--uid U] [--gid G] [--procname N] [--umask M] [--appname N]`.
pub fn set(args: &SetArgs, access: &Access) -> Result<(), CliError> {
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
    let path = args
        .path
        .as_deref()
        .map(|text| parse_path("set", text))
        .transpose()?;
    let location = args.target.location()?;
    access.arm_deadline(&location);
    let mut document = Document::open(&location, access, args.target.force.force)?;
    let before = document.to_value()?;
    let mut changes = Vec::new();
    if let Some(path) = &path {
        let mut value = before.clone();
        let node = node_mut(&mut value, path)?;
        for assignment in &args.assignments {
            let (field, text) = assignment
                .split_once('=')
                .ok_or_else(|| CliError::failed(format!("'{assignment}' is not FIELD=VALUE")))?;
            let first = field.split('.').next().unwrap_or(field);
            if RESERVED.contains(&first) {
                return Err(CliError::failed(format!(
                    "'{first}' cannot be set: use `rtap rename` for names, and remove and add a service to change its type or children"
                )));
            }
            if !node.contains_key(first) {
                let fields: Vec<&str> = node
                    .keys()
                    .map(String::as_str)
                    .filter(|key| !RESERVED.contains(key))
                    .collect();
                return Err(CliError::failed(format!(
                    "service '{path}' has no field '{first}' (its fields: {})",
                    if fields.is_empty() {
                        "none".to_owned()
                    } else {
                        fields.join(", ")
                    }
                )));
            }
            let change =
                crate::fields::set_dotted(node, field, crate::fields::parse_value(text))
                    .map_err(|reason| CliError::failed(format!("service '{path}': {reason}")))?;
            changes.push(field_line(
                &path.to_string(),
                &change.field,
                &change.old,
                &change.new,
            ));
        }
        document.replace_with(value)?;
    }
    let old = document.app.process().clone();
    let process = document.app.process_mut();
    let id = |value: Option<u32>| value.map_or(Value::Null, Value::from);
    if let Some(uid) = args.ids.uid {
        process.uid = Some(uid);
        changes.push(field_line("process", "uid", &id(old.uid), &id(Some(uid))));
    }
    if let Some(gid) = args.ids.gid {
        process.gid = Some(gid);
        changes.push(field_line("process", "gid", &id(old.gid), &id(Some(gid))));
    }
    if let Some(name) = &args.procname {
        process.process_name = Some(name.clone());
        let was = old.process_name.clone().map_or(Value::Null, Value::String);
        changes.push(field_line(
            "process",
            "process_name",
            &was,
            &Value::String(name.clone()),
        ));
    }
    if let Some(umask) = args.umask {
        process.umask = Some(umask);
        let octal =
            |mask: Option<u32>| mask.map_or(Value::Null, |m| Value::String(format!("{m:04o}")));
        changes.push(field_line(
            "process",
            "umask",
            &octal(old.umask),
            &octal(Some(umask)),
        ));
    }
    if let Some(name) = &args.appname.appname {
        let was = document.app.name().to_owned();
        document
            .app
            .set_name(name.clone())
            .map_err(|error| CliError::failed(error.to_string()))?;
        changes.push(format!(
            "~ app name: {} -> {}",
            crate::output::shown(&Value::String(was)),
            crate::output::shown(&Value::String(name.clone()))
        ));
    }
    let after = document.to_value()?;
    stored::confirm_removal(stored::removed(&before, &after), args.target.force.force)?;
    say(&document, &changes)
}

/// `rtap remove FILE PATH`.
pub fn remove(args: &ServiceArgs, access: &Access) -> Result<(), CliError> {
    let path = parse_path("remove", &args.path)?;
    let location = args.target.location()?;
    access.arm_deadline(&location);
    let mut document = Document::open(&location, access, args.target.force.force)?;
    let (parent, last) = split_last(&path)?;
    let before = document.to_value()?;
    let collection = document
        .app
        .services_mut()
        .collection_at_mut(&parent)
        .map_err(|error| CliError::failed(error.to_string()))?;
    let removed = collection
        .remove(&last)
        .map_err(|_| CliError::failed(format!("no service at '{path}'")))?;
    let after = document.to_value()?;
    stored::confirm_removal(stored::removed(&before, &after), args.target.force.force)?;
    say(
        &document,
        &[format!("- {path}  [{}]", removed.service().type_tag())],
    )
}

/// `rtap rename FILE PATH NEWNAME`.
pub fn rename(args: &RenameArgs, access: &Access) -> Result<(), CliError> {
    let path = parse_path("rename", &args.service.path)?;
    let new_name = &args.newname;
    rtwisted_core::service::validate_name(new_name)
        .map_err(|error| super::usage("rename", &error.to_string()))?;
    let location = args.service.target.location()?;
    access.arm_deadline(&location);
    let mut document = Document::open(&location, access, args.service.target.force.force)?;
    split_last(&path)?;
    let mut value = document.to_value()?;
    let node = node_mut(&mut value, &path)?;
    let old = node.get("name").cloned().unwrap_or(Value::Null);
    node.insert("name".into(), Value::String(new_name.clone()));
    document.replace_with(value)?;
    say(
        &document,
        &[field_line(
            &path.to_string(),
            "name",
            &old,
            &Value::String(new_name.clone()),
        )],
    )
}

/// The service `rtap add` adds: the plugin's, named by `--name` when given.
pub(super) fn added_child(args: &AddArgs) -> Result<rtwisted_core::Child, CliError> {
    let service = plugins::make_service(args.plugin.maker, &args.plugin.options)?;
    match &args.name {
        None => Ok(service),
        Some(name) => service
            .renamed(Some(name.clone()))
            .map_err(|error| CliError::failed(error.to_string())),
    }
}

/// `rtap add FILE [--parent PATH] [--name NAME] PLUGIN [plugin options]`.
pub fn add(args: &AddArgs, access: &Access) -> Result<(), CliError> {
    let parent = match &args.parent {
        Some(text) => parse_path("add", text)?,
        None => rtwisted_core::ServicePath::root(),
    };
    let location = args.target.location()?;
    access.arm_deadline(&location);
    let mut document = Document::open(&location, access, args.target.force.force)?;
    let service = added_child(args)?;
    let shown = service.name().unwrap_or("(unnamed)").to_owned();
    let type_tag = service.service().type_tag().to_owned();
    document
        .app
        .services_mut()
        .collection_at_mut(&parent)
        .and_then(|collection| collection.insert(service))
        .map_err(|error| CliError::failed(error.to_string()))?;
    let at = if parent.is_root() {
        shown
    } else {
        format!("{parent}/{shown}")
    };
    say(&document, &[format!("+ {at}  [{type_tag}]")])
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
