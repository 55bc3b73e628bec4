//! `rtap store diff APP@A APP@B`: what differs between two stored snapshots, for people (one
//! line per change) or scripts (`--json`). The comparison itself is
//! [`rtwisted_core::diff`].

use std::path::Path;

use rtwisted_core::diff::{Difference, FieldChange, PlacedService};
use rtwisted_persist::store::Entry;
use serde_json::{Value, json};

use super::{Decode, address, decode, print_json};
use crate::error::CliError;

fn diff_text(from: &str, to: &str, difference: &Difference) -> String {
    if difference.is_empty() {
        return format!("{from} -> {to}: no differences\n");
    }
    let mut out = format!("{from} -> {to}\n");
    for line in crate::output::change_lines(difference) {
        out.push_str(&line);
        out.push('\n');
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
    let nodes = |nodes: &[PlacedService]| -> Vec<Value> {
        nodes
            .iter()
            .map(|node| json!({"path": node.path, "type": node.type_tag}))
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

/// Prints what differs between the snapshots `from` and `to` of the store at `dir`.
pub(super) fn run(
    dir: &Path,
    from: &str,
    to: &str,
    as_json: bool,
    access: &crate::snapshots::Access,
) -> Result<(), CliError> {
    let from = address(from)?;
    let to = address(to)?;
    let (old_entry, old_bytes, new_entry, new_bytes) = {
        let store = access.open_reader(dir)?;
        let (old_entry, old_bytes) = store.get(&from)?;
        let (new_entry, new_bytes) = store.get(&to)?;
        (old_entry, old_bytes, new_entry, new_bytes)
    };
    let mut passphrase = None;
    let mut open_raw = |entry: &Entry, bytes: &[u8]| {
        decode(bytes, &mut passphrase, access).map_err(|error| match error {
            Decode::Cli(error) => error,
            Decode::Format(error) => {
                CliError::failed(format!("cannot read {}: {error}", entry.address()))
            }
        })
    };
    let old = open_raw(&old_entry, &old_bytes)?;
    let new = open_raw(&new_entry, &new_bytes)?;
    let difference = rtwisted_core::diff::diff(&old.application, &new.application);
    let (from, to) = (old_entry.address(), new_entry.address());
    if as_json {
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
    fn the_diff_text_shows_added_removed_and_changed_services() {
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
        let difference = rtwisted_core::diff::diff(&old, &new);
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
        let same = rtwisted_core::diff::diff(&old, &old);
        assert!(diff_text("a@1", "a@2", &same).contains("no differences"));
    }

    #[test]
    fn the_diff_json_names_each_change() {
        let old = json!({"name": "a", "services": {"children": [
            {"type": "x.A", "name": "one"}, {"type": "x.A", "name": "two"}]}});
        let new = json!({"name": "b", "services": {"children": [
            {"type": "x.A", "name": "two"}, {"type": "x.B", "name": "one"}]}});
        let difference = rtwisted_core::diff::diff(&old, &new);
        let document = diff_json("a@1", "b@1", &difference);
        assert_eq!(document["changed"][1]["fields"][0]["to"], "x.B");
        assert_eq!(document["same"], false);
        assert_eq!(document["app"]["to"], "b");
    }
}
