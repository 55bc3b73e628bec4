//! What differs between two applications, service by service, matched by path: the services
//! only one of them has, and the fields (and child order) that changed in those both have.
//!
//! It works on the applications' serialized data (a snapshot's decoded `application` value, or
//! `serde_json::to_value(&app)`), through the [`tree`](crate::tree) view, so two snapshots can
//! be compared whether or not this binary links their types. `rtap store diff` prints it; a
//! live apply and `rtap status` can use the same answer.
//!
//! ```
//! use rtwisted_core::diff::diff;
//! use serde_json::json;
//! let old = json!({"name": "echo", "services": {"children": [
//!     {"type": "rtwisted.StreamServer", "name": "echo", "endpoint": "tcp:7001"}]}});
//! let new = json!({"name": "echo", "services": {"children": [
//!     {"type": "rtwisted.StreamServer", "name": "echo", "endpoint": "tcp:7002"}]}});
//! let difference = diff(&old, &new);
//! assert_eq!(difference.changed[0].path, "echo");
//! assert_eq!(difference.changed[0].fields[0].field, "endpoint");
//! assert!(diff(&old, &old).is_empty());
//! ```

use serde_json::{Map, Value, json};

use crate::tree::Node;

/// One field that differs; a missing field is `null` on its side.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldChange {
    /// The field's name (`type` for a change of type, `order` for a reordering of children).
    pub field: String,
    /// Its value in the first application.
    pub from: Value,
    /// Its value in the second application.
    pub to: Value,
}

/// A service that exists, at the same path, in both applications but differs.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangedService {
    /// The service's path.
    pub path: String,
    /// Its type in the second application.
    pub type_tag: String,
    /// What changed, in the first application's field order, then the new fields.
    pub fields: Vec<FieldChange>,
}

/// A service only one side has: its path and type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacedService {
    /// The service's path.
    pub path: String,
    /// Its type tag.
    pub type_tag: String,
}

/// Everything that differs between two applications.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Difference {
    /// The application's name, when it changed: (from, to).
    pub app: Option<(Value, Value)>,
    /// The process settings (uid, gid, process name, umask) that changed.
    pub process: Vec<FieldChange>,
    /// Services only the first application has, depth-first.
    pub removed: Vec<PlacedService>,
    /// Services only the second application has, depth-first.
    pub added: Vec<PlacedService>,
    /// Services both have that differ, depth-first.
    pub changed: Vec<ChangedService>,
}

impl Difference {
    /// True when the two applications are the same.
    pub fn is_empty(&self) -> bool {
        self.app.is_none()
            && self.process.is_empty()
            && self.removed.is_empty()
            && self.added.is_empty()
            && self.changed.is_empty()
    }
}

/// The fields of two maps that differ, in `from`'s order then `to`'s new keys.
pub fn field_changes(from: &Map<String, Value>, to: &Map<String, Value>) -> Vec<FieldChange> {
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

/// Compares two applications given as serialized data, service by service, by path.
pub fn diff(from: &Value, to: &Value) -> Difference {
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
            difference.removed.push(PlacedService {
                path: node.path.clone(),
                type_tag: node.type_tag.clone(),
            });
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
            difference.changed.push(ChangedService {
                path: node.path.clone(),
                type_tag: other.type_tag.clone(),
                fields,
            });
        }
    }
    for node in &new {
        if find(&old, &node.path).is_none() {
            difference.added.push(PlacedService {
                path: node.path.clone(),
                type_tag: node.type_tag.clone(),
            });
        }
    }
    difference
}

#[cfg(test)]
mod tests {
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

    fn placed(path: &str, type_tag: &str) -> PlacedService {
        PlacedService {
            path: path.into(),
            type_tag: type_tag.into(),
        }
    }

    #[test]
    fn added_removed_and_changed_services_are_found_by_path() {
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
        let difference = diff(&old, &new);
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
            [placed("web/old", "rtwisted.MultiService")]
        );
        assert_eq!(
            difference.added,
            [placed("web/http", "rtwisted.StreamServer")]
        );
        assert_eq!(difference.changed.len(), 1);
        assert_eq!(difference.changed[0].path, "echo");
        assert_eq!(
            difference.changed[0].fields,
            [FieldChange {
                field: "endpoint".into(),
                from: json!("tcp:7001"),
                to: json!("tcp:7002")
            }]
        );
        assert!(diff(&old, &old).is_empty());
    }

    #[test]
    fn a_type_change_a_rename_and_a_reordering_are_changes() {
        let old = json!({"name": "a", "services": {"children": [
            {"type": "x.A", "name": "one"}, {"type": "x.A", "name": "two"}]}});
        let new = json!({"name": "b", "services": {"children": [
            {"type": "x.A", "name": "two"}, {"type": "x.B", "name": "one"}]}});
        let difference = diff(&old, &new);
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
        assert_eq!(difference.changed[1].fields[0].to, "x.B");
    }

    #[test]
    fn fields_only_one_side_has_are_null_on_the_other() {
        let from = json!({"a": 1, "b": 2});
        let to = json!({"b": 2, "c": 3});
        let changes = field_changes(
            from.as_object().unwrap_or(&Map::new()),
            to.as_object().unwrap_or(&Map::new()),
        );
        let shown: Vec<(&str, &Value, &Value)> = changes
            .iter()
            .map(|c| (c.field.as_str(), &c.from, &c.to))
            .collect();
        assert_eq!(
            shown,
            [
                ("a", &json!(1), &Value::Null),
                ("c", &Value::Null, &json!(3))
            ]
        );
    }
}
