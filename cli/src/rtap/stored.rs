//! The data a running daemon accumulated in its snapshot, as opposed to its configuration: the
//! items of a key-value table, the traffic counters of a port forward. An edit that would
//! remove some says how much, and needs `--force` (or a yes on the terminal): replacing a
//! factory or removing a service must never drop a user's items silently.
//!
//! The built-in types that keep such data are known here by their saved form (the registry
//! has no place for it yet); a user's own types are not measured.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};

use serde_json::Value;

use crate::error::CliError;

/// How much stored data one place of the tree holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stored {
    /// Items of key-value tables.
    pub items: u64,
    /// The bytes of their keys and values.
    pub bytes: u64,
    /// Connections port forwards counted.
    pub connections: u64,
}

impl Stored {
    fn is_empty(&self) -> bool {
        *self == Stored::default()
    }
}

/// The stored data of an application value, by the path of the service that holds it.
pub fn measure(application: &Value) -> BTreeMap<String, Stored> {
    let mut found = BTreeMap::new();
    if let Some(services) = application.get("services") {
        walk(services, "", &mut found);
    }
    found
}

fn walk(value: &Value, at: &str, found: &mut BTreeMap<String, Stored>) {
    match value {
        Value::Object(map) => {
            let here = match map.get("type").and_then(Value::as_str) {
                Some("rtwisted.Kv") => kv(map),
                Some("rtwisted.PortForward") => forward(map),
                _ => None,
            };
            if let Some(stored) = here.filter(|stored| !stored.is_empty()) {
                let entry = found.entry(at.to_owned()).or_default();
                entry.items += stored.items;
                entry.bytes += stored.bytes;
                entry.connections += stored.connections;
            }
            for (key, child) in map {
                if key == "children" {
                    if let Value::Array(children) = child {
                        for (index, child) in children.iter().enumerate() {
                            let segment = child
                                .get("name")
                                .and_then(Value::as_str)
                                .map_or_else(|| format!("#{index}"), str::to_owned);
                            let path = if at.is_empty() {
                                segment
                            } else {
                                format!("{at}/{segment}")
                            };
                            walk(child, &path, found);
                        }
                    }
                } else {
                    // A field of the service (its factory, say): still the service's data.
                    walk(child, at, found);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                walk(item, at, found);
            }
        }
        _ => {}
    }
}

fn byte_length(value: &Value) -> u64 {
    match value {
        Value::String(text) => text.len() as u64,
        Value::Object(map) => map.get("base64").and_then(Value::as_str).map_or(0, |text| {
            let padding = text.bytes().rev().take_while(|&b| b == b'=').count() as u64;
            (text.len() as u64 * 3 / 4).saturating_sub(padding)
        }),
        Value::Array(bytes) => bytes.len() as u64,
        _ => 0,
    }
}

fn kv(map: &serde_json::Map<String, Value>) -> Option<Stored> {
    let items = map.get("table")?.get("items")?;
    let (count, bytes) = match items {
        Value::Array(items) => (
            items.len() as u64,
            items
                .iter()
                .map(|item| {
                    item.get("key").map_or(0, byte_length)
                        + item.get("value").map_or(0, byte_length)
                })
                .sum(),
        ),
        summary => {
            let inner = summary.get(rtwisted_persist::view::SUMMARY_KEY)?;
            (
                inner.get("entries")?.as_u64()?,
                inner.get("bytes")?.as_u64()?,
            )
        }
    };
    Some(Stored {
        items: count,
        bytes,
        connections: 0,
    })
}

fn forward(map: &serde_json::Map<String, Value>) -> Option<Stored> {
    let counters = map.get("counters")?;
    Some(Stored {
        items: 0,
        bytes: counters
            .get("bytes_in")
            .and_then(Value::as_u64)
            .unwrap_or(0)
            + counters
                .get("bytes_out")
                .and_then(Value::as_u64)
                .unwrap_or(0),
        connections: counters
            .get("connections")
            .and_then(Value::as_u64)
            .unwrap_or(0),
    })
}

/// What `after` lost of `before`'s stored data, in words (`1,000 items (39 MB) of kv`), or
/// nothing.
pub fn removed(before: &Value, after: &Value) -> Option<String> {
    let (old, new) = (measure(before), measure(after));
    let mut parts = Vec::new();
    for (place, had) in &old {
        let has = new.get(place).copied().unwrap_or_default();
        let (items, bytes) = (
            had.items.saturating_sub(has.items),
            had.bytes.saturating_sub(has.bytes),
        );
        let where_ = if place.is_empty() { "/" } else { place };
        if items > 0 || (had.items > 0 && bytes > 0) {
            parts.push(format!(
                "{} item{} ({}) of {where_}",
                rtwisted_persist::view::thousands(items),
                if items == 1 { "" } else { "s" },
                rtwisted_persist::view::human_bytes(bytes)
            ));
        } else if had.connections > has.connections {
            parts.push(format!(
                "the counters of {where_} ({} connections, {} relayed)",
                rtwisted_persist::view::thousands(had.connections),
                rtwisted_persist::view::human_bytes(had.bytes)
            ));
        }
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// Lets an edit that removes stored data go on: with `force`, or with a yes on the terminal;
/// otherwise refuses, saying what would be lost.
pub fn confirm_removal(loss: Option<String>, force: bool) -> Result<(), CliError> {
    let Some(loss) = loss else {
        return Ok(());
    };
    if force {
        eprintln!("rtap: this edit removes stored data: {loss}");
        return Ok(());
    }
    let refusal = || {
        CliError::failed(format!(
            "this edit removes stored data: {loss}; nothing was written (give --force to make it anyway)"
        ))
    };
    if !std::io::stdin().is_terminal() {
        return Err(refusal());
    }
    eprint!("rtap: this edit removes stored data: {loss}. Go on? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|error| CliError::failed(format!("cannot read the answer: {error}")))?;
    match answer.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Ok(()),
        _ => Err(refusal()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn app(items: Value) -> Value {
        json!({"name": "kv", "services": {"children": [
            {"type": "rtwisted.StreamServer", "name": "kv", "endpoint": "tcp:1",
             "factory": {"type": "rtwisted.Kv", "max_value_bytes": 10,
                         "table": {"next_cas": 3, "items": items}}},
            {"type": "rtwisted.StreamServer", "name": "fwd", "endpoint": "tcp:2",
             "factory": {"type": "rtwisted.PortForward", "dest": "tcp:host=h:port=1",
                         "counters": {"connections": 3, "bytes_in": 10, "bytes_out": 20}}}]}})
    }

    #[test]
    fn dropping_items_or_counters_is_a_loss_and_config_changes_are_not() {
        let full =
            app(json!([{"key": "a", "value": "xyz"}, {"key": {"base64": "/w=="}, "value": "v"}]));
        let measured = measure(&full);
        assert_eq!(measured["kv"].items, 2);
        assert_eq!(measured["fwd"].connections, 3);
        assert_eq!(
            removed(&full, &app(json!([]))).unwrap(),
            "2 items (6 B) of kv"
        );
        let mut config = full.clone();
        config["services"]["children"][0]["factory"]["max_value_bytes"] = json!(99);
        assert_eq!(removed(&full, &config), None);
        let mut reset = full.clone();
        reset["services"]["children"][1]["factory"]["counters"] =
            json!({"connections": 0, "bytes_in": 0, "bytes_out": 0});
        assert!(
            removed(&full, &reset)
                .unwrap()
                .starts_with("the counters of fwd")
        );
    }
}
