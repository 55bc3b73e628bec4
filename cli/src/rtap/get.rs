//! `rtap get FILE PATH [FIELD]`: a service's saved form, or one field of it (dotted for nested
//! ones: `factory.max_value_bytes`), as JSON. It reads the snapshot's generic data, so the
//! types need not be linked, and prints every value whole.

use serde_json::Value;

use super::GetArgs;
use super::document::{node_mut, parse_path};
use crate::error::CliError;
use crate::snapshots::{self, Access, Location};

/// Prints the value the arguments name.
pub fn run(args: &GetArgs, access: &Access) -> Result<(), CliError> {
    let location = Location::new(&args.file, args.store.store.as_deref())?;
    let path = parse_path("get", &args.path)?;
    let raw = snapshots::open_raw_at(
        &location,
        access,
        rtwisted_persist::view::Detail::Everything,
    )?;
    let mut application = raw.application;
    let node = node_mut(&mut application, &path)?;
    let value = match &args.field {
        None => Value::Object(std::mem::take(node)),
        Some(field) => field_value(node, field)
            .map_err(|reason| CliError::failed(format!("service '{path}': {reason}")))?,
    };
    let text = serde_json::to_string_pretty(&value)
        .map_err(|error| CliError::failed(error.to_string()))?;
    crate::output::println(text)
}

/// The value at `dotted` (`a.b.c`) in `object`.
fn field_value(object: &mut serde_json::Map<String, Value>, dotted: &str) -> Result<Value, String> {
    let mut here = object;
    let steps: Vec<&str> = dotted.split('.').collect();
    if steps.iter().any(|step| step.is_empty()) {
        return Err(format!("'{dotted}' is not a field path (write a.b.c)"));
    }
    let (last, parents) = steps
        .split_last()
        .ok_or_else(|| format!("'{dotted}' is empty"))?;
    let mut walked: Vec<&str> = Vec::new();
    let known = |map: &serde_json::Map<String, Value>| {
        let keys: Vec<&str> = map.keys().map(String::as_str).collect();
        if keys.is_empty() {
            "none".to_owned()
        } else {
            keys.join(", ")
        }
    };
    for step in parents {
        walked.push(step);
        let fields = known(here);
        here = match here.get_mut(*step) {
            Some(Value::Object(inner)) => inner,
            Some(_) => return Err(format!("'{}' is not a group of fields", walked.join("."))),
            None => {
                return Err(format!(
                    "no field '{}' (the fields there are: {fields})",
                    walked.join(".")
                ));
            }
        };
    }
    let fields = known(here);
    here.remove(*last)
        .ok_or_else(|| format!("no field '{dotted}' (the fields there are: {fields})"))
}
