//! `rtap store`: a history of snapshots per application, kept in a store folder (sled).
//!
//! ```text
//! rtap store list [--json]                     applications, counts, sizes, newest
//! rtap store log APP [--json]                  every snapshot of APP: number, time, size, tag, producer
//! rtap store tag APP[@N|@TAG] TAG [--move]     tag a snapshot (tags are unique per application)
//! rtap store untag APP@TAG                     take a tag off
//! rtap store diff APP@A APP@B [--json]         added, removed and changed services and fields
//! rtap store export APP[@N|@TAG] FILE          write the snapshot's exact bytes to FILE
//! rtap store import FILE [--tag TAG]           store a snapshot file as its application's next
//! rtap store gc APP --keep N                   keep the newest N (and every tagged one)
//! ```
//!
//! Every subcommand takes `--store DIR`; without it, the `RTWISTED_STORE` variable names the
//! folder. `import` creates the store when there is none; the others need an existing one. The
//! store is opened for each command and closed at once, so `rtap` can read a store that
//! `rtwistd` saves into; a command that finds it open elsewhere waits up to two seconds.

use std::path::{Path, PathBuf};

use clap::error::ErrorKind;
use clap::{Arg, ArgAction, ArgMatches, Command};
use rtwisted_core::tree::Node;
use rtwisted_persist::store::{
    Entry, SledStore, SnapshotStore, StoreAddress, StoreError, TagConflict,
};
use rtwisted_persist::{Passphrase, RawSnapshot, SnapshotError};
use serde_json::{Map, Value, json};

use crate::error::CliError;
use crate::output::println;
use crate::passphrase::PassphraseSource;

/// The environment variable naming the store folder when `--store` is not given.
pub const STORE_VARIABLE: &str = "RTWISTED_STORE";

/// How long a value may be in a people's diff line before it is cut.
const SHOWN_VALUE_LEN: usize = 100;

fn json_flag() -> Arg {
    Arg::new("json")
        .long("json")
        .action(ArgAction::SetTrue)
        .help("Print JSON for scripts")
}

fn address_arg(id: &'static str, name: &'static str, help: &'static str) -> Arg {
    Arg::new(id).value_name(name).required(true).help(help)
}

/// The clap definition of `rtap store` and its subcommands.
pub fn command() -> Command {
    Command::new("store")
        .about("Keep a history of snapshots per application in a store folder")
        .long_about(
            "Keep a history of snapshots per application in a store folder: numbered snapshots \
             (never reused), unique tags, retention, and the exact bytes of a .tap file, so \
             export and import are copies. Addresses: APP (the newest), APP@N, APP@TAG.",
        )
        .subcommand_required(true)
        .arg(
            Arg::new("store")
                .long("store")
                .value_name("DIR")
                .value_parser(clap::value_parser!(PathBuf))
                .global(true)
                .help("The store folder (default: $RTWISTED_STORE)"),
        )
        .subcommand(
            Command::new("list")
                .about("List the applications in the store, with counts, sizes and the newest snapshot")
                .arg(json_flag()),
        )
        .subcommand(
            Command::new("log")
                .about("List every snapshot of an application: number, time, size, tag, producer")
                .arg(address_arg("app", "APP", "The application"))
                .arg(json_flag()),
        )
        .subcommand(
            Command::new("tag")
                .about("Tag a snapshot (a tag is unique within its application; a snapshot has one tag)")
                .arg(address_arg("address", "APP[@N|@TAG]", "The snapshot (APP alone: the newest)"))
                .arg(address_arg("tag", "TAG", "The tag: letters, digits, '.', '_', '-', not all digits"))
                .arg(
                    Arg::new("move")
                        .long("move")
                        .action(ArgAction::SetTrue)
                        .help("Move the tag from the snapshot that has it (else that is refused)"),
                ),
        )
        .subcommand(
            Command::new("untag")
                .about("Take the tag off a snapshot (gc may then remove it)")
                .arg(address_arg("address", "APP@TAG", "The snapshot")),
        )
        .subcommand(
            Command::new("diff")
                .about("Show the services and fields that differ between two snapshots")
                .arg(address_arg("from", "APP@A", "The older snapshot"))
                .arg(address_arg("to", "APP@B", "The newer snapshot"))
                .arg(json_flag()),
        )
        .subcommand(
            Command::new("export")
                .about("Write a stored snapshot's exact bytes to a file (atomically, mode 0600)")
                .arg(address_arg("address", "APP[@N|@TAG]", "The snapshot (APP alone: the newest)"))
                .arg(address_arg("file", "FILE", "The file to write")),
        )
        .subcommand(
            Command::new("import")
                .about("Store a snapshot file as the next snapshot of its application (creates the store)")
                .arg(address_arg("file", "FILE", "The snapshot file (.tap, .tas, .etap, .etas)"))
                .arg(
                    Arg::new("tag")
                        .long("tag")
                        .value_name("TAG")
                        .help("Tag the new snapshot"),
                ),
        )
        .subcommand(
            Command::new("gc")
                .about("Remove old snapshots of an application: keep the newest N and every tagged one")
                .arg(address_arg("app", "APP", "The application"))
                .arg(
                    Arg::new("keep")
                        .long("keep")
                        .value_name("N")
                        .required(true)
                        .value_parser(parse_keep)
                        .help("How many of the newest snapshots to keep (at least 1)"),
                ),
        )
}

/// Runs `rtap store SUBCOMMAND` with the `store` command's matches.
pub fn run(matches: &ArgMatches) -> Result<(), CliError> {
    let Some((name, sub)) = matches.subcommand() else {
        return Err(CliError::failed(
            "no store command given; see rtap store --help",
        ));
    };
    let dir = store_dir(name, sub)?;
    match name {
        "list" => list(&dir, sub),
        "log" => log(&dir, sub),
        "tag" => tag(&dir, sub),
        "untag" => untag(&dir, sub),
        "diff" => diff(&dir, sub),
        "export" => export(&dir, sub),
        "import" => import(&dir, sub),
        "gc" => gc(&dir, sub),
        other => Err(CliError::failed(format!("unknown store command '{other}'"))),
    }
}

/// `--store DIR`, else `$RTWISTED_STORE`; neither is a usage error.
fn store_dir(name: &str, matches: &ArgMatches) -> Result<PathBuf, CliError> {
    if let Some(dir) = matches.get_one::<PathBuf>("store") {
        return Ok(dir.clone());
    }
    match std::env::var_os(STORE_VARIABLE) {
        Some(dir) if !dir.is_empty() => Ok(PathBuf::from(dir)),
        _ => {
            let message = format!("no store given: use --store DIR or set {STORE_VARIABLE}");
            let mut store = command().bin_name("rtap store");
            store.build();
            let error = match store.find_subcommand_mut(name) {
                Some(sub) => sub.error(ErrorKind::MissingRequiredArgument, message),
                None => store.error(ErrorKind::MissingRequiredArgument, message),
            };
            Err(CliError::Usage(error))
        }
    }
}

/// `--keep N`: a whole number of at least 1 (the newest snapshot is always kept).
fn parse_keep(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("gc keeps at least 1 snapshot (the newest is always kept)".to_owned()),
        Ok(keep) => Ok(keep),
        Err(_) => Err(format!("'{text}' is not a whole number")),
    }
}

fn failed(error: StoreError) -> CliError {
    CliError::failed(error.to_string())
}

fn arg<'a>(matches: &'a ArgMatches, id: &str) -> Result<&'a String, CliError> {
    matches
        .get_one::<String>(id)
        .ok_or_else(|| CliError::failed(format!("missing argument '{id}'")))
}

fn address(matches: &ArgMatches, id: &str) -> Result<StoreAddress, CliError> {
    arg(matches, id)?.parse().map_err(failed)
}

/// The application named by `id`: a bare name (`APP@latest` is accepted too).
fn app_name(matches: &ArgMatches, id: &str) -> Result<String, CliError> {
    let text = arg(matches, id)?;
    let address: StoreAddress = text.parse().map_err(failed)?;
    match address.selector {
        rtwisted_persist::store::Selector::Latest => Ok(address.app),
        _ => Err(CliError::failed(format!(
            "'{text}' names a snapshot; give the application alone ('{}')",
            address.app
        ))),
    }
}

fn open(dir: &Path) -> Result<SledStore, CliError> {
    SledStore::open(dir).map_err(failed)
}

fn print_json(value: &Value) -> Result<(), CliError> {
    println(
        serde_json::to_string_pretty(value).map_err(|error| CliError::failed(error.to_string()))?,
    )
}

/// An entry for scripts: its fields plus `address`.
fn entry_json(entry: &Entry) -> Value {
    let mut value = serde_json::to_value(entry).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.insert("address".to_owned(), Value::String(entry.address()));
    }
    value
}

/// Rows as aligned columns (two spaces apart; the last column is not padded).
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|column| {
            rows.iter()
                .filter_map(|row| row.get(column))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (column, cell) in row.iter().enumerate() {
            if column + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  ", width = widths[column]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn list(dir: &Path, matches: &ArgMatches) -> Result<(), CliError> {
    let apps = open(dir)?.list().map_err(failed)?;
    if matches.get_flag("json") {
        let apps: Vec<Value> = apps
            .iter()
            .map(|summary| {
                json!({
                    "app": summary.app,
                    "count": summary.count,
                    "total_bytes": summary.total_bytes,
                    "latest": entry_json(&summary.latest),
                })
            })
            .collect();
        return print_json(&Value::Array(apps));
    }
    if apps.is_empty() {
        return println(format!("the store {} holds no snapshots", dir.display()));
    }
    let mut rows = vec![
        ["APP", "SNAPSHOTS", "BYTES", "LATEST", "SAVED"]
            .map(str::to_owned)
            .to_vec(),
    ];
    for summary in &apps {
        rows.push(vec![
            summary.app.clone(),
            summary.count.to_string(),
            summary.total_bytes.to_string(),
            summary.latest.address(),
            summary.latest.saved.clone(),
        ]);
    }
    crate::output::print(table(&rows))
}

fn log(dir: &Path, matches: &ArgMatches) -> Result<(), CliError> {
    let app = app_name(matches, "app")?;
    let entries = open(dir)?.log(&app).map_err(failed)?;
    if matches.get_flag("json") {
        return print_json(&Value::Array(entries.iter().map(entry_json).collect()));
    }
    let mut rows = vec![
        ["SNAPSHOT", "SAVED", "BYTES", "TAG", "PRODUCER"]
            .map(str::to_owned)
            .to_vec(),
    ];
    for entry in &entries {
        rows.push(vec![
            entry.address(),
            entry.saved.clone(),
            entry.size.to_string(),
            entry.tag.clone().unwrap_or_else(|| "-".to_owned()),
            entry.producer.clone(),
        ]);
    }
    crate::output::print(table(&rows))
}

fn tag(dir: &Path, matches: &ArgMatches) -> Result<(), CliError> {
    let address = address(matches, "address")?;
    let tag = arg(matches, "tag")?;
    let conflict = if matches.get_flag("move") {
        TagConflict::Move
    } else {
        TagConflict::Refuse
    };
    let tagged = open(dir)?.tag(&address, tag, conflict).map_err(failed)?;
    let mut line = format!("tagged {} '{tag}'", tagged.entry.address());
    if let Some(from) = tagged.moved_from {
        line.push_str(&format!(" (moved from {}@{from})", tagged.entry.app));
    }
    if let Some(old) = &tagged.replaced {
        line.push_str(&format!(" (it was '{old}')"));
    }
    println(line)
}

fn untag(dir: &Path, matches: &ArgMatches) -> Result<(), CliError> {
    let address = address(matches, "address")?;
    let (entry, tag) = open(dir)?.untag(&address).map_err(failed)?;
    println(format!("removed tag '{tag}' from {}", entry.address()))
}

fn export(dir: &Path, matches: &ArgMatches) -> Result<(), CliError> {
    let address = address(matches, "address")?;
    let file = PathBuf::from(arg(matches, "file")?);
    let (entry, bytes) = open(dir)?.get(&address).map_err(failed)?;
    rtwisted_persist::write_atomic(&file, &bytes).map_err(|source| SnapshotError::Write {
        path: file.clone(),
        source,
    })?;
    println(format!(
        "exported {} ({} bytes) to {}",
        entry.address(),
        entry.size,
        file.display()
    ))
}

fn import(dir: &Path, matches: &ArgMatches) -> Result<(), CliError> {
    let file = PathBuf::from(arg(matches, "file")?);
    let tag = matches.get_one::<String>("tag").map(String::as_str);
    let bytes = rtwisted_persist::read(&file).map_err(|source| SnapshotError::Read {
        path: file.clone(),
        source,
    })?;
    // Check it is a snapshot, and learn its application's name (decrypting if need be).
    let mut passphrase = None;
    let raw = decode(
        &bytes,
        &mut passphrase,
        &PassphraseSource::from_matches(matches),
    )
    .map_err(|error| match error {
        Decode::Cli(error) => error,
        Decode::Format(source) => CliError::Snapshot(SnapshotError::Invalid {
            path: file.clone(),
            source,
        }),
    })?;
    let store = SledStore::open_or_create(dir).map_err(failed)?;
    let entry = store
        .put(&raw.header.fields.app, &bytes, tag)
        .map_err(failed)?;
    drop(store);
    println(entry.address())
}

fn gc(dir: &Path, matches: &ArgMatches) -> Result<(), CliError> {
    let app = app_name(matches, "app")?;
    let keep = matches
        .get_one::<usize>("keep")
        .copied()
        .ok_or_else(|| CliError::failed("--keep N is required"))?;
    let store = open(dir)?;
    let removed = store.gc(&app, keep).map_err(failed)?;
    let left = store.log(&app).map_err(failed)?;
    drop(store);
    let kept: Vec<String> = left.iter().map(Entry::address).collect();
    if removed.is_empty() {
        return println(format!(
            "nothing to remove; kept {} ({})",
            kept.len(),
            kept.join(", ")
        ));
    }
    let gone: Vec<String> = removed.iter().map(Entry::address).collect();
    println(format!(
        "removed {} ({}); kept {} ({})",
        gone.len(),
        gone.join(", "),
        kept.len(),
        kept.join(", ")
    ))
}

/// Why bytes did not decode: a snapshot problem, or no passphrase to be had.
enum Decode {
    Format(rtwisted_persist::FormatError),
    Cli(CliError),
}

/// Decodes snapshot bytes as generic data, asking `source` for a passphrase (once) when they
/// are encrypted.
fn decode(
    bytes: &[u8],
    passphrase: &mut Option<Passphrase>,
    source: &PassphraseSource,
) -> Result<RawSnapshot, Decode> {
    if rtwisted_persist::crypto::looks_encrypted(bytes) && passphrase.is_none() {
        *passphrase = Some(source.obtain(false).map_err(Decode::Cli)?);
    }
    rtwisted_persist::decode_raw_with(bytes, passphrase.as_ref()).map_err(Decode::Format)
}

/// One field that differs.
#[derive(Debug, Clone, PartialEq)]
struct FieldChange {
    field: String,
    from: Value,
    to: Value,
}

/// A service that exists in both snapshots but differs.
#[derive(Debug, Clone, PartialEq)]
struct Changed {
    path: String,
    type_tag: String,
    fields: Vec<FieldChange>,
}

/// Everything that differs between two snapshots.
#[derive(Debug, Default, PartialEq)]
struct Difference {
    app: Option<(Value, Value)>,
    process: Vec<FieldChange>,
    removed: Vec<(String, String)>,
    added: Vec<(String, String)>,
    changed: Vec<Changed>,
}

impl Difference {
    fn is_empty(&self) -> bool {
        self.app.is_none()
            && self.process.is_empty()
            && self.removed.is_empty()
            && self.added.is_empty()
            && self.changed.is_empty()
    }
}

/// The fields of two maps that differ, in `from`'s order then `to`'s new keys.
fn field_changes(from: &Map<String, Value>, to: &Map<String, Value>) -> Vec<FieldChange> {
    let mut changes = Vec::new();
    for (field, old) in from {
        let new = to.get(field).cloned().unwrap_or(Value::Null);
        if *old != new {
            changes.push(FieldChange {
                field: field.clone(),
                from: old.clone(),
                to: new,
            });
        }
    }
    for (field, new) in to {
        if !from.contains_key(field) {
            changes.push(FieldChange {
                field: field.clone(),
                from: Value::Null,
                to: new.clone(),
            });
        }
    }
    changes
}

fn child_names(node: &Node) -> Vec<String> {
    node.children
        .iter()
        .flatten()
        .map(|child| {
            child
                .path
                .rsplit('/')
                .next()
                .unwrap_or(&child.path)
                .to_owned()
        })
        .collect()
}

/// Compares two applications (as generic data) service by service, by path.
fn compare(from: &Value, to: &Value) -> Difference {
    let mut difference = Difference::default();
    let name = |app: &Value| app.get("name").cloned().unwrap_or(Value::Null);
    if name(from) != name(to) {
        difference.app = Some((name(from), name(to)));
    }
    let settings = |app: &Value| match app.get("process") {
        Some(Value::Object(map)) => map.clone(),
        _ => Map::new(),
    };
    difference.process = field_changes(&settings(from), &settings(to));

    let services = |app: &Value| Node::from_value(app.get("services").unwrap_or(&Value::Null));
    let (old_tree, new_tree) = (services(from), services(to));
    let old: Vec<&Node> = old_tree.walk().collect();
    let new: Vec<&Node> = new_tree.walk().collect();
    let find = |nodes: &[&'_ Node], path: &str| nodes.iter().position(|node| node.path == path);
    for node in &old {
        let Some(index) = find(&new, &node.path) else {
            difference
                .removed
                .push((node.path.clone(), node.type_tag.clone()));
            continue;
        };
        let other = new[index];
        let mut fields = Vec::new();
        if node.type_tag != other.type_tag {
            fields.push(FieldChange {
                field: "type".to_owned(),
                from: Value::String(node.type_tag.clone()),
                to: Value::String(other.type_tag.clone()),
            });
        }
        fields.extend(field_changes(&node.fields, &other.fields));
        // Start order is the order of children: a reordering is a change of the parent.
        let (before, after) = (child_names(node), child_names(other));
        let common_before: Vec<&String> = before.iter().filter(|n| after.contains(n)).collect();
        let common_after: Vec<&String> = after.iter().filter(|n| before.contains(n)).collect();
        if common_before != common_after {
            fields.push(FieldChange {
                field: "order".to_owned(),
                from: json!(common_before),
                to: json!(common_after),
            });
        }
        if !fields.is_empty() {
            difference.changed.push(Changed {
                path: node.path.clone(),
                type_tag: other.type_tag.clone(),
                fields,
            });
        }
    }
    for node in &new {
        if find(&old, &node.path).is_none() {
            difference
                .added
                .push((node.path.clone(), node.type_tag.clone()));
        }
    }
    difference
}

fn shown(value: &Value) -> String {
    if value.is_null() {
        return "(none)".to_owned();
    }
    let text = serde_json::to_string(value).unwrap_or_default();
    if text.chars().count() > SHOWN_VALUE_LEN {
        let cut: String = text.chars().take(SHOWN_VALUE_LEN).collect();
        format!("{cut}…")
    } else {
        text
    }
}

fn diff_text(from: &str, to: &str, difference: &Difference) -> String {
    if difference.is_empty() {
        return format!("{from} -> {to}: no differences\n");
    }
    let mut out = format!("{from} -> {to}\n");
    if let Some((old, new)) = &difference.app {
        out.push_str(&format!("~ app name: {} -> {}\n", shown(old), shown(new)));
    }
    for change in &difference.process {
        out.push_str(&format!(
            "~ process  {}: {} -> {}\n",
            change.field,
            shown(&change.from),
            shown(&change.to)
        ));
    }
    for (path, type_tag) in &difference.removed {
        out.push_str(&format!("- {path}  [{type_tag}]\n"));
    }
    for (path, type_tag) in &difference.added {
        out.push_str(&format!("+ {path}  [{type_tag}]\n"));
    }
    for changed in &difference.changed {
        for change in &changed.fields {
            out.push_str(&format!(
                "~ {}  {}: {} -> {}\n",
                changed.path,
                change.field,
                shown(&change.from),
                shown(&change.to)
            ));
        }
    }
    out
}

fn diff_json(from: &str, to: &str, difference: &Difference) -> Value {
    let fields = |changes: &[FieldChange]| -> Vec<Value> {
        changes
            .iter()
            .map(|c| json!({"field": c.field, "from": c.from, "to": c.to}))
            .collect()
    };
    let nodes = |nodes: &[(String, String)]| -> Vec<Value> {
        nodes
            .iter()
            .map(|(path, type_tag)| json!({"path": path, "type": type_tag}))
            .collect()
    };
    json!({
        "from": from,
        "to": to,
        "same": difference.is_empty(),
        "app": difference.app.as_ref().map(|(old, new)| json!({"from": old, "to": new})),
        "process": fields(&difference.process),
        "removed": nodes(&difference.removed),
        "added": nodes(&difference.added),
        "changed": difference
            .changed
            .iter()
            .map(|c| json!({"path": c.path, "type": c.type_tag, "fields": fields(&c.fields)}))
            .collect::<Vec<Value>>(),
    })
}

fn diff(dir: &Path, matches: &ArgMatches) -> Result<(), CliError> {
    let from = address(matches, "from")?;
    let to = address(matches, "to")?;
    let (old_entry, old_bytes, new_entry, new_bytes) = {
        let store = open(dir)?;
        let (old_entry, old_bytes) = store.get(&from).map_err(failed)?;
        let (new_entry, new_bytes) = store.get(&to).map_err(failed)?;
        (old_entry, old_bytes, new_entry, new_bytes)
    };
    let source = PassphraseSource::from_matches(matches);
    let mut passphrase = None;
    let mut open_raw = |entry: &Entry, bytes: &[u8]| {
        decode(bytes, &mut passphrase, &source).map_err(|error| match error {
            Decode::Cli(error) => error,
            Decode::Format(error) => {
                CliError::failed(format!("cannot read {}: {error}", entry.address()))
            }
        })
    };
    let old = open_raw(&old_entry, &old_bytes)?;
    let new = open_raw(&new_entry, &new_bytes)?;
    let difference = compare(&old.application, &new.application);
    let (from, to) = (old_entry.address(), new_entry.address());
    if matches.get_flag("json") {
        print_json(&diff_json(&from, &to, &difference))
    } else {
        crate::output::print(diff_text(&from, &to, &difference))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn app(endpoint: &str, children: Value, uid: Value) -> Value {
        json!({
            "name": "echo",
            "process": {"uid": uid, "gid": null},
            "services": {"children": [
                {"type": "rtwisted.StreamServer", "name": "echo", "endpoint": endpoint},
                {"type": "rtwisted.MultiService", "name": "web", "children": children},
            ]},
        })
    }

    #[test]
    fn compare_reports_added_removed_and_changed_by_path() {
        let old = app(
            "tcp:7001",
            json!([{"type": "rtwisted.MultiService", "name": "old"}]),
            Value::Null,
        );
        let new = app(
            "tcp:7002",
            json!([{"type": "rtwisted.StreamServer", "name": "http", "endpoint": "tcp:80"}]),
            json!(1234),
        );
        let difference = compare(&old, &new);
        assert_eq!(difference.app, None);
        assert_eq!(
            difference.process,
            [FieldChange {
                field: "uid".into(),
                from: Value::Null,
                to: json!(1234)
            }]
        );
        assert_eq!(
            difference.removed,
            [("web/old".into(), "rtwisted.MultiService".into())]
        );
        assert_eq!(
            difference.added,
            [("web/http".into(), "rtwisted.StreamServer".into())]
        );
        assert_eq!(difference.changed.len(), 1);
        assert_eq!(difference.changed[0].path, "echo");
        let text = diff_text("echo@1", "echo@2", &difference);
        assert!(
            text.contains("~ echo  endpoint: \"tcp:7001\" -> \"tcp:7002\"\n"),
            "{text}"
        );
        assert!(
            text.contains("+ web/http  [rtwisted.StreamServer]\n"),
            "{text}"
        );
        assert!(
            text.contains("- web/old  [rtwisted.MultiService]\n"),
            "{text}"
        );
        assert!(text.contains("~ process  uid: (none) -> 1234\n"), "{text}");
        assert!(compare(&old, &old).is_empty());
        assert!(diff_text("a@1", "a@2", &compare(&old, &old)).contains("no differences"));
    }

    #[test]
    fn compare_reports_a_type_change_a_rename_and_a_reordering() {
        let old = json!({"name": "a", "services": {"children": [
            {"type": "x.A", "name": "one"}, {"type": "x.A", "name": "two"}]}});
        let new = json!({"name": "b", "services": {"children": [
            {"type": "x.A", "name": "two"}, {"type": "x.B", "name": "one"}]}});
        let difference = compare(&old, &new);
        assert_eq!(difference.app, Some((json!("a"), json!("b"))));
        let fields: Vec<(&str, &str)> = difference
            .changed
            .iter()
            .flat_map(|c| {
                c.fields
                    .iter()
                    .map(move |f| (c.path.as_str(), f.field.as_str()))
            })
            .collect();
        assert_eq!(fields, [("/", "order"), ("one", "type")]);
        let document = diff_json("a@1", "b@1", &difference);
        assert_eq!(document["changed"][1]["fields"][0]["to"], "x.B");
        assert_eq!(document["same"], false);
    }

    #[test]
    fn tables_align_their_columns() {
        let rows = vec![
            vec!["A".to_owned(), "BB".to_owned(), "C".to_owned()],
            vec!["long".to_owned(), "x".to_owned(), "y".to_owned()],
        ];
        assert_eq!(table(&rows), "A     BB  C\nlong  x   y\n");
    }
}
