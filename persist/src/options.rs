//! Loads and saves with every option: passphrase or key, [`Limits`], how much generic data to
//! decode, and the [`Parent`] a new snapshot records. The plain functions at the crate root
//! (`load`, `save_with`, ...) are these with the defaults.

use std::path::Path;

use rtwisted_core::{Application, Style};

use crate::lineage::Parent;
use crate::lock::EditLock;
use crate::view::Detail;
use crate::{
    FormatError, Header, Key, Limits, Passphrase, RawSnapshot, Snapshot, SnapshotError, crypto,
};

/// How to load a snapshot.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Opens an encrypted snapshot; without it one is [`FormatError::Encrypted`].
    pub passphrase: Option<Passphrase>,
    /// The limits the bytes must keep.
    pub limits: Limits,
    /// For generic data: summarize large fields, or decode everything.
    pub detail: Detail,
}

impl LoadOptions {
    /// The defaults, with this passphrase.
    pub fn with_passphrase(passphrase: Option<Passphrase>) -> Self {
        LoadOptions {
            passphrase,
            ..LoadOptions::default()
        }
    }
}

/// How to save a snapshot.
#[derive(Debug, Clone, Default)]
pub struct SaveOptions {
    /// Encrypts the snapshot to this key.
    pub key: Option<Key>,
    /// The limits the snapshot must keep, checked before anything is written.
    pub limits: Limits,
    /// What the snapshot was made from, recorded in its header.
    pub parent: Option<Parent>,
}

impl SaveOptions {
    /// The defaults, with this key.
    pub fn with_key(key: Option<Key>) -> Self {
        SaveOptions {
            key,
            ..SaveOptions::default()
        }
    }
}

/// Verifies plain snapshot bytes (magic, version, lengths, checksum, bounds) and returns their
/// header, without decoding the payload.
pub fn verify(bytes: &[u8], limits: &Limits) -> Result<Header, FormatError> {
    limits.check_size(bytes.len() as u64)?;
    if crate::tap::looks_like_tap(bytes) {
        Ok(crate::tap::open_with(bytes, limits)?.0)
    } else if crate::tas::looks_like_tas(bytes) {
        Ok(crate::tas::open_with(bytes, limits)?.0)
    } else {
        Err(FormatError::NotASnapshot)
    }
}

/// Verifies and decodes a snapshot (decrypting it if need be) into generic data.
pub fn decode_raw_as(bytes: &[u8], options: &LoadOptions) -> Result<RawSnapshot, FormatError> {
    if crypto::looks_encrypted(bytes) {
        options.limits.check_size(bytes.len() as u64)?;
        let passphrase = options.passphrase.as_ref().ok_or(FormatError::Encrypted)?;
        let plain = crypto::decrypt(bytes, passphrase)?;
        let mut raw = crate::decode_plain(&plain, &options.limits, options.detail)?;
        raw.encrypted = true;
        return Ok(raw);
    }
    crate::decode_plain(bytes, &options.limits, options.detail)
}

/// Verifies and decodes a snapshot (decrypting it if need be) into an application.
pub fn decode_as(bytes: &[u8], options: &LoadOptions) -> Result<Snapshot, FormatError> {
    if crypto::looks_encrypted(bytes) {
        options.limits.check_size(bytes.len() as u64)?;
        let passphrase = options.passphrase.as_ref().ok_or(FormatError::Encrypted)?;
        let plain = crypto::decrypt(bytes, passphrase)?;
        let mut snapshot = crate::decode_typed(&plain, &options.limits)?;
        snapshot.encrypted = true;
        return Ok(snapshot);
    }
    crate::decode_typed(bytes, &options.limits)
}

/// Encodes `app` in `style` as [`SaveOptions`] say; the limits are checked on the bytes a load
/// would read, so a snapshot past them is refused here, before anything is written.
pub fn encode_as(
    app: &Application,
    style: Style,
    options: &SaveOptions,
) -> Result<(Vec<u8>, Header), FormatError> {
    let (plain, header) = crate::encode_from(app, style, options.parent.as_ref())?;
    options.limits.check_encoded(&plain)?;
    match &options.key {
        Some(key) => {
            let cipher = crypto::encrypt(&plain, key)?;
            options.limits.check_size(cipher.len() as u64)?;
            Ok((cipher, header))
        }
        None => Ok((plain, header)),
    }
}

/// Saves `app` to `path` in `style`, atomically, mode 0600, under the file's [`EditLock`].
pub fn save_as(
    app: &Application,
    path: &Path,
    style: Style,
    options: &SaveOptions,
) -> Result<Header, SnapshotError> {
    let _lock = EditLock::acquire(path)?;
    save_locked(app, path, style, options)
}

/// [`save_as`] for a caller that already holds the [`EditLock`] of `path` (an edit, which
/// re-read the file under it).
pub fn save_locked(
    app: &Application,
    path: &Path,
    style: Style,
    options: &SaveOptions,
) -> Result<Header, SnapshotError> {
    let (bytes, header) =
        encode_as(app, style, options).map_err(|cause| SnapshotError::Encode {
            path: path.to_owned(),
            cause,
        })?;
    crate::write_atomic(path, &bytes).map_err(|cause| SnapshotError::Write {
        path: path.to_owned(),
        cause,
    })?;
    Ok(header)
}

/// Loads the snapshot at `path` as [`LoadOptions`] say.
pub fn load_as(path: &Path, options: &LoadOptions) -> Result<Snapshot, SnapshotError> {
    let bytes = crate::read_file(path, &options.limits)?;
    decode_as(&bytes, options).map_err(|cause| SnapshotError::Invalid {
        path: path.to_owned(),
        cause,
    })
}

/// Loads the snapshot at `path` as generic data, as [`LoadOptions`] say.
pub fn load_raw_as(path: &Path, options: &LoadOptions) -> Result<RawSnapshot, SnapshotError> {
    let bytes = crate::read_file(path, &options.limits)?;
    decode_raw_as(&bytes, options).map_err(|cause| SnapshotError::Invalid {
        path: path.to_owned(),
        cause,
    })
}
