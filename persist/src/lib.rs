//! # rtwisted-persist: snapshots
//!
//! Freezes an [`Application`] into a snapshot and thaws it again, with every service stopped.
//!
//! Two styles carry the same data: `tap` (binary MessagePack with named fields, see [`tap`]) and
//! `tas` (pretty JSON, see [`tas`]). Both carry a header (magic, format version, style,
//! application name, creation time, producer, a manifest of every type used, and a SHA-256
//! checksum). Loading checks the magic, the version and the checksum before it decodes
//! anything, and reports every type this binary does not link at once.
//!
//! ```
//! use rtwisted_core::{Application, MultiService, Style};
//! let mut app = Application::new("demo").unwrap();
//! app.services_mut().insert(Box::new(MultiService::named("web").unwrap())).unwrap();
//! let folder = tempfile::tempdir().unwrap();
//! let path = folder.path().join(rtwisted_persist::file_name(app.name(), None, Style::Tap));
//! rtwisted_persist::save(&app, &path, Style::Tap).unwrap();
//! let loaded = rtwisted_persist::load(&path).unwrap();
//! assert_eq!(loaded.app.name(), "demo");
//! assert!(!loaded.app.services().get("web").unwrap().running());
//! ```
//!
//! Saves are atomic ([`write_atomic`]): a failed or killed save never damages the previous file.

mod error;
mod file;
pub mod header;
pub mod tap;
pub mod tas;

use std::path::Path;

use rtwisted_core::{Application, Style};
use serde_json::Value;

pub use error::{FormatError, SnapshotError, describe_io};
pub use file::{file_name, read, write_atomic};
pub use header::{FORMAT_VERSION, Header, HeaderFields, ManifestEntry};

/// A thawed snapshot: its header and the application, every service stopped.
#[derive(Debug)]
pub struct Snapshot {
    /// The verified header.
    pub header: Header,
    /// The application; its persistence style is the style it was loaded from.
    pub app: Application,
}

/// A snapshot decoded only as far as generic data: enough to inspect it without linking its
/// types.
#[derive(Debug, Clone)]
pub struct RawSnapshot {
    /// The verified header.
    pub header: Header,
    /// The application as generic data (`name`, `process`, `persistence`, `services`).
    pub application: Value,
    /// Manifest types this binary does not link, sorted.
    pub unknown_types: Vec<String>,
}

/// Encodes `app` in `style`; returns the bytes and the header written.
pub fn encode(app: &Application, style: Style) -> Result<(Vec<u8>, Header), FormatError> {
    let application = serde_json::to_value(app).map_err(|error| FormatError::Encode {
        detail: error.to_string(),
    })?;
    let manifest = header::manifest_of(&application)?;
    let fields = HeaderFields::new(style, app.name(), manifest);
    let (bytes, checksum) = match style {
        Style::Tap => tap::encode(&fields, &application)?,
        Style::Tas => tas::encode(&fields, &application)?,
    };
    Ok((
        bytes,
        Header {
            format_version: FORMAT_VERSION,
            fields,
            checksum,
        },
    ))
}

/// Verifies and decodes a snapshot of either style into generic data.
pub fn decode_raw(bytes: &[u8]) -> Result<RawSnapshot, FormatError> {
    let (header, application) = if tap::looks_like_tap(bytes) {
        tap::decode(bytes)?
    } else if tas::looks_like_tas(bytes) {
        tas::decode(bytes)?
    } else {
        return Err(FormatError::NotASnapshot);
    };
    let unknown_types = header::unknown_types(&header.fields.manifest);
    Ok(RawSnapshot {
        header,
        application,
        unknown_types,
    })
}

/// Verifies and decodes a snapshot of either style into an application.
pub fn decode(bytes: &[u8]) -> Result<Snapshot, FormatError> {
    let raw = decode_raw(bytes)?;
    if !raw.unknown_types.is_empty() {
        return Err(FormatError::UnknownTypes {
            types: raw.unknown_types,
        });
    }
    let mut app: Application =
        serde_json::from_value(raw.application).map_err(|error| FormatError::Incompatible {
            detail: error.to_string(),
        })?;
    app.persistence_mut().style = raw.header.fields.style;
    Ok(Snapshot {
        header: raw.header,
        app,
    })
}

/// Saves `app` to `path` in `style`, atomically, mode 0600. Returns the header written.
pub fn save(app: &Application, path: &Path, style: Style) -> Result<Header, SnapshotError> {
    let (bytes, header) = encode(app, style).map_err(|source| SnapshotError::Encode {
        path: path.to_owned(),
        source,
    })?;
    write_atomic(path, &bytes).map_err(|source| SnapshotError::Write {
        path: path.to_owned(),
        source,
    })?;
    Ok(header)
}

/// Loads the snapshot at `path` (either style, detected from its contents).
pub fn load(path: &Path) -> Result<Snapshot, SnapshotError> {
    let bytes = read_file(path)?;
    decode(&bytes).map_err(|source| SnapshotError::Invalid {
        path: path.to_owned(),
        source,
    })
}

/// Loads the snapshot at `path` as generic data, whether or not this binary links its types.
pub fn load_raw(path: &Path) -> Result<RawSnapshot, SnapshotError> {
    let bytes = read_file(path)?;
    decode_raw(&bytes).map_err(|source| SnapshotError::Invalid {
        path: path.to_owned(),
        source,
    })
}

fn read_file(path: &Path) -> Result<Vec<u8>, SnapshotError> {
    read(path).map_err(|source| SnapshotError::Read {
        path: path.to_owned(),
        source,
    })
}
