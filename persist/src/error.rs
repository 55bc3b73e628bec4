//! Errors: [`FormatError`] says what is wrong with a snapshot's bytes; [`SnapshotError`] adds
//! the file it came from or was going to.

use std::io;
use std::path::PathBuf;

/// What is wrong with a snapshot's bytes (or with a tree that was to be encoded).
#[derive(Debug, thiserror::Error)]
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
    /// The file is larger than any snapshot this build loads.
    #[error("the file is {size} bytes, more than the {limit} bytes a snapshot may have")]
    TooLarge {
        /// The file's size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The structure is damaged in a way the checksum did not catch (or the header is bad).
    #[error("the snapshot is damaged: {detail}")]
    Corrupt {
        /// What the decoder found.
        detail: String,
    },
    /// The data is whole but does not fit the types this binary has.
    #[error("the snapshot's data does not fit this build's types: {detail}")]
    Incompatible {
        /// What the decoder found.
        detail: String,
    },
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
    #[error("cannot encode the application: {detail}")]
    Encode {
        /// The serializer's message.
        detail: String,
    },
}

/// A snapshot file could not be loaded or saved.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The file could not be read.
    #[error("cannot load snapshot '{}': {}", .path.display(), describe_io(.source))]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The file was read but is not a valid snapshot for this binary.
    #[error("cannot load snapshot '{}': {source}", .path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        #[source]
        source: FormatError,
    },
    /// The application could not be encoded; nothing was written.
    #[error("cannot save snapshot '{}': {source}", .path.display())]
    Encode {
        /// The target file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: FormatError,
    },
    /// Writing failed; the previous file at the path, if any, is untouched.
    #[error("cannot save snapshot '{}': {}", .path.display(), describe_io(.source))]
    Write {
        /// The target file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
}

pub use rtwisted_core::describe_io;
