//! Dotted field paths into a service's saved form: `factory.max_value_bytes=4096`.

use serde_json::{Map, Value};

/// One field set: its dotted path, the value before and after.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldChange {
    /// The dotted path, as given.
    pub field: String,
    /// The value it had.
    pub old: Value,
    /// The value it has now.
    pub new: Value,
}

/// Sets `dotted` (`a.b.c`) in `object` to `value`. Every step must exist: a name that is not a
/// field is refused, listing the fields there are (`name` and `type` are not fields of the
/// service's own; they are refused too).
pub fn set_dotted(
    object: &mut Map<String, Value>,
    dotted: &str,
    value: Value,
) -> Result<FieldChange, String> {
    let steps: Vec<&str> = dotted.split('.').collect();
    if steps.iter().any(|step| step.is_empty()) {
        return Err(format!("'{dotted}' is not a field path (write a.b.c)"));
    }
    if matches!(steps[0], "type" | "name" | "children") {
        return Err(format!(
            "'{}' is not a field of the service: its type is fixed, its name changes with rename, its children with add and remove",
            steps[0]
        ));
    }
    let mut node = object;
    let (last, parents) = steps
        .split_last()
        .ok_or_else(|| format!("'{dotted}' is empty"))?;
    let mut walked = Vec::new();
    for step in parents {
        walked.push(*step);
        let known = fields_of(node);
        node = match node.get_mut(*step) {
            Some(Value::Object(inner)) => inner,
            Some(_) => {
                return Err(format!(
                    "'{}' is not a group of fields, so it has no '{}'",
                    walked.join("."),
                    dotted[walked.join(".").len() + 1..]
                        .split('.')
                        .next()
                        .unwrap_or("")
                ));
            }
            None => return Err(unknown(&walked.join("."), &known)),
        };
    }
    let known = fields_of(node);
    let Some(slot) = node.get_mut(*last) else {
        let mut full = walked.clone();
        full.push(last);
        return Err(unknown(&full.join("."), &known));
    };
    let old = std::mem::replace(slot, value.clone());
    Ok(FieldChange {
        field: dotted.to_owned(),
        old,
        new: value,
    })
}

fn fields_of(object: &Map<String, Value>) -> Vec<String> {
    object
        .keys()
        .filter(|key| !matches!(key.as_str(), "type" | "name" | "children"))
        .cloned()
        .collect()
}

fn unknown(field: &str, known: &[String]) -> String {
    format!(
        "no field '{field}' here (the fields are: {})",
        if known.is_empty() {
            "none".to_owned()
        } else {
            known.join(", ")
        }
    )
}

/// A value given on the command line: JSON when it parses as JSON, else a string.
pub fn parse_value(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn a_dotted_path_sets_one_nested_field_and_says_what_it_was() {
        let mut object = json!({"type": "rtwisted.StreamServer", "name": "kv", "endpoint": "tcp:1",
            "factory": {"type": "rtwisted.Kv", "max_value_bytes": 10, "table": {"items": {}}}})
        .as_object()
        .unwrap()
        .clone();
        let change = set_dotted(&mut object, "factory.max_value_bytes", json!(4096)).unwrap();
        assert_eq!((change.old, change.new), (json!(10), json!(4096)));
        assert_eq!(
            object["factory"]["table"],
            json!({"items": {}}),
            "the rest is kept"
        );
        let err = set_dotted(&mut object, "factory.max_value", json!(1)).unwrap_err();
        assert_eq!(
            err,
            "no field 'factory.max_value' here (the fields are: max_value_bytes, table)"
        );
        assert!(set_dotted(&mut object, "name", json!("x")).is_err());
        assert!(
            set_dotted(&mut object, "endpoint.port", json!(1))
                .unwrap_err()
                .contains("not a group")
        );
        assert!(set_dotted(&mut object, "factory..x", json!(1)).is_err());
    }
}
