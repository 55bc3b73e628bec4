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
//! app.services_mut().insert_named("web", Box::new(MultiService::new())).unwrap();
//! let folder = tempfile::tempdir().unwrap();
//! let path = folder.path().join(rtwisted_persist::file_name(app.name(), None, Style::Tap, false));
//! rtwisted_persist::save(&app, &path, Style::Tap).unwrap();
//! let loaded = rtwisted_persist::load(&path).unwrap();
//! assert_eq!(loaded.app.name(), "demo");
//! assert!(!loaded.app.services().get("web").unwrap().running());
//! ```
//!
//! Saves are atomic ([`write_atomic`]): a failed or killed save never damages the previous file.
//! With a [`Key`], a snapshot is encrypted with a passphrase in the `age` format ([`crypto`]):
//! `.etap` and `.etas` files open with the standard `age` tool too.

pub mod bounds;
pub mod checks;
pub mod codec;
pub mod crypto;
mod error;
mod file;
pub mod header;
pub mod limits;
pub mod lineage;
pub mod lock;
mod options;
pub mod peek;
pub mod store;
pub mod tap;
pub mod tas;
pub mod upgrade;
pub mod view;

use std::path::Path;

use rtwisted_core::{Application, Style};
use serde_json::Value;

pub use crypto::{Key, Passphrase};
pub use error::{CodecError, EncryptError, FormatError, SnapshotError, describe_io};
pub use file::{file_name, read, remove_abandoned_temporaries, write_atomic};
pub use header::{FORMAT_VERSION, Header, HeaderFields, ManifestEntry};
pub use limits::Limits;
pub use options::{
    LoadOptions, SaveOptions, decode_as, decode_raw_as, encode_as, load_as, load_raw_as, save_as,
    save_locked, verify,
};

/// A thawed snapshot: its header and the application, every service stopped.
#[derive(Debug)]
pub struct Snapshot {
    /// The verified header.
    pub header: Header,
    /// The application; its persistence style is the style it was loaded from.
    pub app: Application,
    /// True if the file was passphrase-encrypted.
    pub encrypted: bool,
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
    /// True if the file was passphrase-encrypted.
    pub encrypted: bool,
}

/// Encodes `app` in `style`; returns the bytes and the header written.
///
/// The application is serialized once, straight from its types (no generic value in between),
/// with the [registered codec](codec::codec); the manifest lists the types that were written.
pub fn encode(app: &Application, style: Style) -> Result<(Vec<u8>, Header), FormatError> {
    encode_from(app, style, None)
}

/// [`encode`], recording `parent` in the header when given.
fn encode_from(
    app: &Application,
    style: Style,
    parent: Option<&lineage::Parent>,
) -> Result<(Vec<u8>, Header), FormatError> {
    let codec = codec::codec();
    let fields_of = |tags| -> Result<HeaderFields, FormatError> {
        let mut fields = HeaderFields::new(style, app.name(), header::manifest_of_tags(tags)?);
        fields.parent = parent.cloned();
        Ok(fields)
    };
    let sealed = match style {
        Style::Tap => {
            let (payload, tags) = rtwisted_core::codec::recording(|| codec.encode_msgpack(app));
            let payload = payload.map_err(|error| FormatError::Encode(error.into()))?;
            let fields = fields_of(tags)?;
            (tap::seal_owned(&fields, payload)?, fields)
        }
        Style::Tas => {
            let (pretty, tags) = rtwisted_core::codec::recording(|| codec.encode_json_pretty(app));
            let pretty = pretty.map_err(|error| FormatError::Encode(error.into()))?;
            let fields = fields_of(tags)?;
            (tas::seal(&fields, &pretty)?, fields)
        }
    };
    let ((bytes, checksum), fields) = sealed;
    Ok((
        bytes,
        Header {
            format_version: FORMAT_VERSION,
            fields,
            checksum,
        },
    ))
}

/// Encodes `app` in `style`, encrypted to `key` when one is given.
pub fn encode_with(
    app: &Application,
    style: Style,
    key: Option<&Key>,
) -> Result<(Vec<u8>, Header), FormatError> {
    encode_as(app, style, &SaveOptions::with_key(key.cloned()))
}

/// Verifies and decodes a plain (not encrypted) snapshot of either style into generic data.
pub fn decode_raw(bytes: &[u8]) -> Result<RawSnapshot, FormatError> {
    decode_raw_with(bytes, None)
}

/// Verifies and decodes a snapshot into generic data, decrypting it first with `passphrase`
/// if it is encrypted. Large fields are summarized ([`view`]).
pub fn decode_raw_with(
    bytes: &[u8],
    passphrase: Option<&Passphrase>,
) -> Result<RawSnapshot, FormatError> {
    decode_raw_as(bytes, &LoadOptions::with_passphrase(passphrase.cloned()))
}

fn decode_plain(
    bytes: &[u8],
    limits: &Limits,
    detail: view::Detail,
) -> Result<RawSnapshot, FormatError> {
    limits.check_size(bytes.len() as u64)?;
    let (header, application) = if tap::looks_like_tap(bytes) {
        let (header, payload) = tap::open_with(bytes, limits)?;
        (header, view::from_msgpack(payload, detail)?)
    } else if tas::looks_like_tas(bytes) {
        let (header, text) = tas::open_with(bytes, limits)?;
        (header, view::from_json(text, detail)?)
    } else {
        return Err(FormatError::NotASnapshot);
    };
    checks::check_raw(&header, &application)?;
    let unknown_types = header::unknown_types(&header.fields.manifest);
    Ok(RawSnapshot {
        header,
        application,
        unknown_types,
        encrypted: false,
    })
}

/// Verifies and decodes a plain snapshot of either style into an application.
pub fn decode(bytes: &[u8]) -> Result<Snapshot, FormatError> {
    decode_with(bytes, None)
}

/// Verifies and decodes a snapshot into an application, decrypting it first with `passphrase`
/// if it is encrypted.
pub fn decode_with(bytes: &[u8], passphrase: Option<&Passphrase>) -> Result<Snapshot, FormatError> {
    decode_as(bytes, &LoadOptions::with_passphrase(passphrase.cloned()))
}

/// A verified payload, still encoded.
enum Payload<'a> {
    Tap(&'a [u8]),
    Tas(&'a str),
}

fn decode_typed(bytes: &[u8], limits: &Limits) -> Result<Snapshot, FormatError> {
    limits.check_size(bytes.len() as u64)?;
    let (header, payload) = if tap::looks_like_tap(bytes) {
        let (header, payload) = tap::open_with(bytes, limits)?;
        (header, Payload::Tap(payload))
    } else if tas::looks_like_tas(bytes) {
        let (header, text) = tas::open_with(bytes, limits)?;
        (header, Payload::Tas(text))
    } else {
        return Err(FormatError::NotASnapshot);
    };
    let unknown_types = header::unknown_types(&header.fields.manifest);
    if !unknown_types.is_empty() {
        return Err(FormatError::UnknownTypes {
            types: unknown_types,
        });
    }
    let incompatible = |error: error::CodecError| FormatError::Incompatible(error);
    let current = header.fields.manifest.iter().all(|entry| {
        rtwisted_core::registry::lookup(&entry.tag)
            .is_some_and(|info| info.version == entry.version)
    });
    let codec = codec::codec();
    let (app, found) = rtwisted_core::codec::recording(|| -> Result<Application, FormatError> {
        if current {
            // The common case: straight from the bytes to the types.
            return match payload {
                Payload::Tap(payload) => codec
                    .decode_msgpack(payload)
                    .map_err(|error| incompatible(error.into())),
                Payload::Tas(text) => codec
                    .decode_json(text)
                    .map_err(|error| incompatible(error.into())),
            };
        }
        let mut value = match payload {
            Payload::Tap(payload) => tap::payload_value(payload)?,
            Payload::Tas(text) => serde_json::from_str(text).map_err(FormatError::BadJson)?,
        };
        upgrade::upgrade(&header.fields.manifest, &mut value)?;
        codec
            .decode_value(value)
            .map_err(|error| incompatible(error.into()))
    });
    let mut app = app?;
    header::check_manifest(&header.fields.manifest, &found)?;
    checks::check_typed(&header, &app)?;
    app.persistence_mut().style = header.fields.style;
    Ok(Snapshot {
        header,
        app,
        encrypted: false,
    })
}

/// Saves `app` to `path` in `style`, atomically, mode 0600. Returns the header written.
pub fn save(app: &Application, path: &Path, style: Style) -> Result<Header, SnapshotError> {
    save_with(app, path, style, None)
}

/// Saves `app` to `path` in `style`, encrypted to `key` when one is given; atomically, mode
/// 0600, under the file's [`lock::EditLock`]. Returns the header written.
pub fn save_with(
    app: &Application,
    path: &Path,
    style: Style,
    key: Option<&Key>,
) -> Result<Header, SnapshotError> {
    save_as(app, path, style, &SaveOptions::with_key(key.cloned()))
}

/// Loads the plain snapshot at `path` (either style, detected from its contents).
pub fn load(path: &Path) -> Result<Snapshot, SnapshotError> {
    load_with(path, None)
}

/// Loads the snapshot at `path`, decrypting it with `passphrase` if it is encrypted.
pub fn load_with(path: &Path, passphrase: Option<&Passphrase>) -> Result<Snapshot, SnapshotError> {
    load_as(path, &LoadOptions::with_passphrase(passphrase.cloned()))
}

/// Loads the plain snapshot at `path` as generic data, whether or not this binary links its
/// types.
pub fn load_raw(path: &Path) -> Result<RawSnapshot, SnapshotError> {
    load_raw_with(path, None)
}

/// Loads the snapshot at `path` as generic data, decrypting it with `passphrase` if it is
/// encrypted. Large fields are summarized ([`view`]).
pub fn load_raw_with(
    path: &Path,
    passphrase: Option<&Passphrase>,
) -> Result<RawSnapshot, SnapshotError> {
    load_raw_as(path, &LoadOptions::with_passphrase(passphrase.cloned()))
}

/// True if the file at `path` is an encrypted snapshot (it starts with age's header). A file
/// that cannot be read is reported by the load that follows.
pub fn is_encrypted(path: &Path) -> bool {
    use std::io::Read;
    let mut start = [0u8; crypto::AGE_MAGIC.len()];
    std::fs::File::open(path)
        .and_then(|mut file| file.read_exact(&mut start))
        .is_ok_and(|()| crypto::looks_encrypted(&start))
}

fn read_file(path: &Path, limits: &Limits) -> Result<Vec<u8>, SnapshotError> {
    let read_error = |cause| SnapshotError::Read {
        path: path.to_owned(),
        cause,
    };
    let metadata = std::fs::metadata(path).map_err(read_error)?;
    if !metadata.is_dir() {
        limits
            .check_size(metadata.len())
            .map_err(|cause| SnapshotError::Invalid {
                path: path.to_owned(),
                cause,
            })?;
    }
    read(path).map_err(read_error)
}
