//! Errors: [`FormatError`] says what is wrong with a snapshot's bytes; [`SnapshotError`] adds
//! the file it came from or was going to.
//!
//! Every message is whole on its own: a cause (an I/O error, a decoder's error) is part of the
//! message and kept as a typed field, and is not returned again by `source()`, so a chain
//! printer (anyhow's `{:#}`) shows each cause once.

use std::io;
use std::path::PathBuf;

/// An error of one of the two encodings, or of the age encryption around them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// MessagePack could not be written.
    #[error("{0}")]
    MessagePackEncode(rmp_serde::encode::Error),
    /// MessagePack could not be read.
    #[error("{0}")]
    MessagePackDecode(rmp_serde::decode::Error),
    /// JSON could not be read or written.
    #[error("{0}")]
    Json(serde_json::Error),
}

impl From<rmp_serde::encode::Error> for CodecError {
    fn from(error: rmp_serde::encode::Error) -> Self {
        CodecError::MessagePackEncode(error)
    }
}

impl From<rmp_serde::decode::Error> for CodecError {
    fn from(error: rmp_serde::decode::Error) -> Self {
        CodecError::MessagePackDecode(error)
    }
}

impl From<serde_json::Error> for CodecError {
    fn from(error: serde_json::Error) -> Self {
        CodecError::Json(error)
    }
}

/// Why an encryption failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncryptError {
    /// age refused the recipient (boxed: age's error is large, and errors travel by value).
    #[error("{0}")]
    Age(Box<age::EncryptError>),
    /// Writing the encrypted stream failed.
    #[error("{0}")]
    Io(io::Error),
}

/// What is wrong with a snapshot's bytes (or with a tree that was to be encoded).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// Neither a tap nor a tas header.
    #[error("not an rtwisted snapshot (it has neither a tap nor a tas header)")]
    NotASnapshot,
    /// The bytes end before the snapshot does.
    #[error("the file is truncated: it ends before the snapshot does (restore it from a copy)")]
    Truncated,
    /// The checksum does not match the contents.
    #[error(
        "checksum mismatch: the file is damaged or was edited by hand (expected {expected}, found {actual}); edit snapshots with `rtap`, or restore a copy"
    )]
    ChecksumMismatch {
        /// The checksum the header records.
        expected: String,
        /// The checksum of the contents.
        actual: String,
    },
    /// Written by a newer rtwisted.
    #[error(
        "snapshot format version {found} is newer than this rtwisted reads (up to {supported}); upgrade rtwisted"
    )]
    NewerFormat {
        /// The file's format version.
        found: u64,
        /// The newest version this build reads.
        supported: u16,
    },
    /// Types this binary does not link.
    #[error(
        "unknown service types {} (this binary does not link the crates that define them)",
        .types.join(", ")
    )]
    UnknownTypes {
        /// Every unknown tag, sorted.
        types: Vec<String>,
    },
    /// The snapshot is larger than the size limit (see [`Limits`](crate::Limits)).
    #[error(
        "the snapshot is {size} bytes, more than the {limit} bytes a snapshot may have (raise the limit with {} BYTES or {}=BYTES)",
        crate::limits::MAX_BYTES_OPTION,
        crate::limits::MAX_BYTES_VARIABLE
    )]
    TooLarge {
        /// The snapshot's size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The snapshot holds more values than the value limit (see [`Limits`](crate::Limits)).
    #[error(
        "the snapshot holds more than the {limit} values a snapshot may have (raise the limit with {} N or {}=N)",
        crate::limits::MAX_VALUES_OPTION,
        crate::limits::MAX_VALUES_VARIABLE
    )]
    TooManyValues {
        /// The limit.
        limit: u64,
    },
    /// A map holds the same key twice: decoders would keep one silently, so it is refused.
    #[error("the snapshot is damaged: a map holds the key '{key}' twice")]
    DuplicateKey {
        /// The key.
        key: String,
    },
    /// The header names another application than the payload holds.
    #[error(
        "the snapshot is damaged: its header names application '{header}' but it holds '{payload}'"
    )]
    AppMismatch {
        /// The name in the header.
        header: String,
        /// The name in the payload.
        payload: String,
    },
    /// A process setting is out of range.
    #[error("the snapshot's process settings are invalid: {detail}")]
    BadProcessSettings {
        /// What is wrong.
        detail: String,
    },
    /// The structure is damaged in a way the checksum did not catch (or the header is bad).
    #[error("the snapshot is damaged: {detail}")]
    Corrupt {
        /// What the scan found.
        detail: String,
    },
    /// A tap header does not decode.
    #[error("the snapshot is damaged: bad header: {0}")]
    BadHeader(CodecError),
    /// A tap payload does not decode as generic data.
    #[error("the snapshot is damaged: bad payload: {0}")]
    BadPayload(CodecError),
    /// A tas file is not valid JSON (or not the JSON of a snapshot).
    #[error("the snapshot is damaged: {0}")]
    BadJson(serde_json::Error),
    /// The age header of an encrypted snapshot does not parse.
    #[error("the snapshot is damaged: bad encryption header: {0}")]
    BadEncryptionHeader(age::DecryptError),
    /// The encrypted payload does not decrypt to the end.
    #[error("the snapshot is damaged: the encrypted payload is damaged: {0}")]
    DamagedCiphertext(io::Error),
    /// The file is encrypted to age keys, not to a passphrase.
    #[error("the snapshot is damaged: the file is encrypted to age keys, not to a passphrase")]
    NotPassphraseEncrypted,
    /// The data is whole but does not fit the types this binary has.
    #[error("the snapshot's data does not fit this build's types: {0}")]
    Incompatible(CodecError),
    /// A type was written by a newer version of its code.
    #[error(
        "the snapshot holds {tag} at version {found}, but this build knows it only up to version {known} (it was written by newer code: upgrade the binary)"
    )]
    NewerType {
        /// The type tag.
        tag: String,
        /// The version in the file.
        found: u32,
        /// The version this build has.
        known: u32,
    },
    /// No step upgrades a type from an old version.
    #[error(
        "the snapshot holds {tag} at version {from}, and no upgrade step takes it from version {from} to {} (register one with rtwisted_core::register_upgrade!)",
        .from + 1
    )]
    MissingUpgrade {
        /// The type tag.
        tag: String,
        /// The version with no step.
        from: u32,
    },
    /// An upgrade step refused the data.
    #[error("upgrading {tag} from version {from} failed: {reason}")]
    UpgradeFailed {
        /// The type tag.
        tag: String,
        /// The version the step upgrades from.
        from: u32,
        /// The step's message.
        reason: String,
    },
    /// The manifest and the types in the payload disagree.
    #[error(
        "the snapshot's manifest does not match its contents: {}{}{} (the file was altered or written by broken code; restore a copy)",
        if .unlisted.is_empty() { String::new() } else { format!("found {}, which the manifest does not list", .unlisted.join(", ")) },
        if .unlisted.is_empty() || .absent.is_empty() { "" } else { "; " },
        if .absent.is_empty() { String::new() } else { format!("the manifest lists {}, which is not there", .absent.join(", ")) }
    )]
    ManifestMismatch {
        /// Types found in the payload that the manifest does not list.
        unlisted: Vec<String>,
        /// Services the manifest lists that the payload does not hold.
        absent: Vec<String>,
    },
    /// A type in the tree was never registered, so the manifest cannot list it.
    #[error(
        "type '{tag}' is not registered: add `rtwisted_core::register_type!(service \"{tag}\", version 1);` (or `factory`) beside its #[typetag::serde] impl"
    )]
    UnregisteredType {
        /// The typetag name.
        tag: String,
    },
    /// The snapshot is encrypted and no passphrase was given.
    #[error(
        "the snapshot is encrypted: give its passphrase (--passphrase-file FILE, RTWISTED_PASSPHRASE, or the terminal)"
    )]
    Encrypted,
    /// The passphrase does not open the snapshot.
    #[error("wrong passphrase (or the encrypted file is damaged)")]
    WrongPassphrase,
    /// The file asks for more scrypt work than allowed.
    #[error(
        "the encrypted snapshot asks for scrypt work factor {required}, above the limit of {limit}: refusing to spend that much time and memory"
    )]
    ExcessiveWork {
        /// The work factor in the file.
        required: u8,
        /// The highest accepted.
        limit: u8,
    },
    /// Serialization failed.
    #[error("cannot encode the application: {0}")]
    Encode(CodecError),
    /// A tap header would not fit its 32-bit length.
    #[error("cannot encode the application: the header is larger than 4 GiB")]
    HeaderTooLarge,
    /// An encryption asked for a work factor outside what loads accept.
    #[error(
        "cannot encode the application: scrypt work factor {factor} is outside 1..={}",
        crate::crypto::MAX_WORK_FACTOR
    )]
    WorkFactorOutOfRange {
        /// The factor asked for.
        factor: u8,
    },
    /// The encryption failed.
    #[error("cannot encode the application: cannot encrypt: {0}")]
    Encrypt(EncryptError),
}

/// A snapshot file could not be loaded or saved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The file could not be read.
    #[error("cannot load snapshot '{}': {}", .path.display(), describe_io(.cause))]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        cause: io::Error,
    },
    /// The file was read but is not a valid snapshot for this binary.
    #[error("cannot load snapshot '{}': {cause}", .path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        cause: FormatError,
    },
    /// The application could not be encoded; nothing was written.
    #[error("cannot save snapshot '{}': {cause}", .path.display())]
    Encode {
        /// The target file.
        path: PathBuf,
        /// What went wrong.
        cause: FormatError,
    },
    /// Writing failed; the previous file at the path, if any, is untouched.
    #[error("cannot save snapshot '{}': {}", .path.display(), describe_io(.cause))]
    Write {
        /// The target file.
        path: PathBuf,
        /// The operating system's error.
        cause: io::Error,
    },
    /// Another save or edit of the file did not finish within the wait.
    #[error(
        "'{}' is busy: another rtap or rtwistd is saving or editing it; try again",
        .path.display()
    )]
    Busy {
        /// The snapshot file.
        path: PathBuf,
    },
    /// A running rtwistd holds the snapshot, and the edit was not forced.
    #[error(
        "cannot edit '{}': held by rtwistd PID {pid}, stop it or apply the change to the running daemon, or --force to edit anyway",
        .path.display()
    )]
    Held {
        /// The snapshot file.
        path: PathBuf,
        /// The holder's PID, as it recorded it.
        pid: String,
    },
    /// The lock file beside the snapshot could not be used.
    #[error("cannot lock snapshot '{}': {}", .path.display(), describe_io(.cause))]
    Lock {
        /// The snapshot file.
        path: PathBuf,
        /// The operating system's error.
        cause: io::Error,
    },
}

pub use rtwisted_core::describe_io;
