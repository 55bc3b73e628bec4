//! Opening a snapshot for an edit and writing it back: loaded typed (so every type must be
//! linked), changed, validated as a whole, and saved atomically in the style it had.

use rtwisted_core::{Application, PathSegment, ServicePath, Style};
use rtwisted_persist::{Header, Key};
use serde_json::{Map, Value};

use crate::error::CliError;
use crate::passphrase::PassphraseSource;
use crate::snapshots::{self, Location};

/// A snapshot opened for editing.
#[derive(Debug)]
pub struct Document {
    /// Where it came from and goes back to.
    pub location: Location,
    /// The style it is written back in.
    pub style: Style,
    /// The application.
    pub app: Application,
    /// The key it is written back with, when it was encrypted.
    pub key: Option<Key>,
}

impl Document {
    /// Loads the snapshot at `location` (asking `source` for the passphrase if it is
    /// encrypted).
    pub fn open(location: &Location, source: &PassphraseSource) -> Result<Self, CliError> {
        let (snapshot, key) = snapshots::open_at(location, source)?;
        Ok(Document {
            location: location.clone(),
            style: snapshot.header.fields.style,
            app: snapshot.app,
            key,
        })
    }

    /// Writes the application back, atomically, in its style (encrypted again if it was): over
    /// the file, or as a new snapshot in the store. Returns the header and where it went.
    pub fn write(&self) -> Result<(Header, String), CliError> {
        snapshots::save_at(
            &self.location,
            &self.app,
            self.style,
            self.key.as_ref(),
            None,
        )
    }

    /// The application as generic data, to change fields by name.
    pub fn to_value(&self) -> Result<Value, CliError> {
        serde_json::to_value(&self.app).map_err(|error| CliError::failed(error.to_string()))
    }

    /// Replaces the application with `value`, which must be a valid application as a whole
    /// (types, fields, endpoint strings, unique names); otherwise nothing changes.
    pub fn replace_with(&mut self, value: Value) -> Result<(), CliError> {
        self.app = validate(value)?;
        Ok(())
    }
}

/// Types the generic data of an application, with an error that says the change is invalid.
pub fn validate(value: Value) -> Result<Application, CliError> {
    serde_json::from_value(value)
        .map_err(|error| CliError::failed(format!("the change is not valid: {error}")))
}

/// The generic data of the service at `path` in an application value.
pub fn node_mut<'a>(
    application: &'a mut Value,
    path: &ServicePath,
) -> Result<&'a mut Map<String, Value>, CliError> {
    let mut node = application
        .get_mut("services")
        .ok_or_else(|| CliError::failed("the snapshot has no service tree"))?;
    let mut walked = ServicePath::root();
    for segment in path.segments() {
        let here = walked.clone();
        walked = walked.join(segment.clone());
        let children = node
            .get_mut("children")
            .and_then(Value::as_array_mut)
            .ok_or_else(|| CliError::failed(format!("service '{here}' has no children")))?;
        let index = match segment {
            PathSegment::Index(index) => Some(*index),
            PathSegment::Name(name) => children
                .iter()
                .position(|child| child.get("name").and_then(Value::as_str) == Some(name)),
        };
        node = index
            .and_then(|index| children.get_mut(index))
            .ok_or_else(|| CliError::failed(format!("no service at '{walked}'")))?;
    }
    node.as_object_mut()
        .ok_or_else(|| CliError::failed(format!("service '{path}' is not an object")))
}

/// Parses the path argument of `rtap SUBCOMMAND`; a malformed one is a usage error.
pub fn parse_path(subcommand: &str, text: &str) -> Result<ServicePath, CliError> {
    text.parse()
        .map_err(|error: rtwisted_core::path::PathError| {
            super::usage(subcommand, &error.to_string())
        })
}
