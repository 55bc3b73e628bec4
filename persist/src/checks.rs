//! Checks every load makes after decoding, typed (what `rtwistd` runs) and generic (what
//! `rtap inspect` shows) alike, so the two never disagree about a snapshot: the header's
//! application name is the payload's, and the process settings are ones a daemon can apply.

use rtwisted_core::{Application, ProcessSettings};
use serde::Deserialize;
use serde_json::Value;

use crate::{FormatError, Header};

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
        Some(process) => {
            let settings =
                ProcessSettings::deserialize(process).map_err(|error| bad(error.to_string()))?;
            check_process(&settings)
        }
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
    process.validate().map_err(|error| bad(error.to_string()))
}
