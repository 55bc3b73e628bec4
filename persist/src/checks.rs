//! Checks every load makes after decoding, typed (what `rtwistd` runs) and generic (what
//! `rtap inspect` shows) alike, so the two never disagree about a snapshot: the header's
//! application name is the payload's, and the process settings are ones a daemon can apply.

use rtwisted_core::{Application, ProcessSettings};
use serde_json::Value;

use crate::{FormatError, Header};

/// The largest umask: the nine permission bits.
const MAX_UMASK: u64 = 0o777;

fn bad(detail: String) -> FormatError {
    FormatError::BadProcessSettings { detail }
}

/// Checks a typed application against its header.
pub fn check_typed(header: &Header, app: &Application) -> Result<(), FormatError> {
    check_name(header, app.name())?;
    check_process(app.process())
}

/// Checks an application's generic data against its header, as [`check_typed`] would.
pub fn check_raw(header: &Header, application: &Value) -> Result<(), FormatError> {
    let Some(map) = application.as_object() else {
        return Err(FormatError::Corrupt {
            detail: "the payload is not an application (a map with a name and services)".into(),
        });
    };
    match map.get("name") {
        Some(Value::String(name)) => check_name(header, name)?,
        _ => {
            return Err(FormatError::Corrupt {
                detail: "the application has no name".into(),
            });
        }
    }
    match map.get("process") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Object(process)) => {
            for id in ["uid", "gid"] {
                match process.get(id) {
                    None | Some(Value::Null) => {}
                    Some(Value::Number(n))
                        if n.as_u64().is_some_and(|n| n <= u64::from(u32::MAX)) => {}
                    Some(other) => {
                        return Err(bad(format!("{id} {other} is not a user or group id")));
                    }
                }
            }
            match process.get("process_name") {
                None | Some(Value::Null | Value::String(_)) => {}
                Some(other) => return Err(bad(format!("the process name {other} is not text"))),
            }
            match process.get("umask") {
                None | Some(Value::Null) => Ok(()),
                Some(Value::Number(n)) if n.as_u64().is_some_and(|n| n <= MAX_UMASK) => Ok(()),
                Some(Value::Number(n)) if n.as_u64().is_some() => {
                    Err(umask_error(n.as_u64().unwrap_or(0)))
                }
                Some(other) => Err(bad(format!("umask {other} is not a number"))),
            }
        }
        Some(other) => Err(bad(format!("{other} is not a map of settings"))),
    }
}

fn check_name(header: &Header, name: &str) -> Result<(), FormatError> {
    if header.fields.app != name {
        return Err(FormatError::AppMismatch {
            header: header.fields.app.clone(),
            payload: name.to_owned(),
        });
    }
    Ok(())
}

fn check_process(process: &ProcessSettings) -> Result<(), FormatError> {
    match process.umask {
        Some(mask) if u64::from(mask) > MAX_UMASK => Err(umask_error(u64::from(mask))),
        _ => Ok(()),
    }
}

fn umask_error(mask: u64) -> FormatError {
    bad(format!(
        "umask {mask:o} (octal) is more than the 777 a umask can be"
    ))
}
