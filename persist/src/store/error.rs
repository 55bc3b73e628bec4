//! What can go wrong with a snapshot store, each phrased for the person at the terminal.

use std::io;
use std::path::PathBuf;

use crate::FormatError;

/// A snapshot store operation failed.
///
/// Every message is whole on its own: a cause is part of the message and is not returned again
/// by `source()`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The folder does not exist or holds no store (only for opens that do not create one).
    #[error("no store at '{}'", .dir.display())]
    NoStore {
        /// The folder asked for.
        dir: PathBuf,
    },
    /// The path exists but is not an rtwisted snapshot store; nothing was written to it.
    #[error("'{}' is not an rtwisted snapshot store: {detail}", .dir.display())]
    NotAStore {
        /// The path asked for.
        dir: PathBuf,
        /// What it is instead.
        detail: String,
    },
    /// Another process holds the store open for longer than the open waits.
    #[error(
        "the store {} is busy (another rtap or rtwistd is writing to it); try again, or wait longer with --wait SECONDS",
        .dir.display()
    )]
    Busy {
        /// The store's folder.
        dir: PathBuf,
    },
    /// The store was written by a newer rtwisted.
    #[error(
        "the store {} has format version {found}, newer than this rtwisted reads (up to {supported}); upgrade rtwisted",
        .dir.display()
    )]
    NewerStore {
        /// The store's folder.
        dir: PathBuf,
        /// The store's format version.
        found: u32,
        /// The newest this build reads.
        supported: u32,
    },
    /// The store's data is damaged (sled found corruption, or a record does not check out).
    #[error(
        "the store {} is damaged: {detail} (export what still reads with `rtap store export`, or restore a copy)",
        .dir.display()
    )]
    Damaged {
        /// The store's folder.
        dir: PathBuf,
        /// What was found.
        detail: String,
    },
    /// Reading or writing the store's files failed.
    #[error("cannot use the store {}: {}", .dir.display(), crate::describe_io(.cause))]
    Io {
        /// The store's folder.
        dir: PathBuf,
        /// The operating system's error.
        cause: io::Error,
    },
    /// An address that does not parse.
    #[error("invalid store address '{text}': {reason}")]
    InvalidAddress {
        /// The text given.
        text: String,
        /// Why it is refused.
        reason: String,
    },
    /// An application name that cannot be stored.
    #[error("invalid application name: {reason}")]
    InvalidApp {
        /// Why it is refused.
        reason: String,
    },
    /// A tag that cannot be used.
    #[error("invalid tag: {reason}")]
    InvalidTag {
        /// Why it is refused.
        reason: String,
    },
    /// The store has no snapshot of this application.
    #[error("no application '{app}' in the store")]
    NoApp {
        /// The application asked for.
        app: String,
    },
    /// The application exists but the address picks none of its snapshots.
    #[error("no snapshot '{address}' in the store ({hint})")]
    NoSnapshot {
        /// The address asked for, as written.
        address: String,
        /// What there is instead: `echo has 1..5`, or the tags.
        hint: String,
    },
    /// The tag is already on another snapshot of the application.
    #[error(
        "tag '{tag}' is already on {app}@{number}; tags are unique per application (move it with --move, or remove it with `rtap store untag {app}@{tag}`)"
    )]
    TagTaken {
        /// The application.
        app: String,
        /// The tag.
        tag: String,
        /// The snapshot that has it.
        number: u64,
    },
    /// Untagging a snapshot that has no tag.
    #[error("{address} has no tag")]
    NotTagged {
        /// The snapshot, as `APP@N`.
        address: String,
    },
    /// The bytes are not a snapshot (or not one of the application they were stored under).
    #[error("not a snapshot: {0}")]
    NotASnapshot(FormatError),
    /// The snapshot's header names another application than the one it is stored under.
    #[error("the snapshot is of application '{found}', not '{expected}'")]
    AppMismatch {
        /// The name it was to be stored under.
        expected: String,
        /// The name in its header.
        found: String,
    },
    /// An edit read the store when one snapshot was the newest, and another was saved before it
    /// could write.
    #[error(
        "{app}@{latest} was saved while this edit ran (it began when {app}@{read} was the newest); nothing was written: run the edit again"
    )]
    Changed {
        /// The application.
        app: String,
        /// The newest snapshot when the edit began.
        read: u64,
        /// The newest snapshot.
        latest: u64,
    },
    /// A running rtwistd holds the application, and the edit was not forced.
    #[error(
        "cannot edit {app} in the store: held by rtwistd PID {pid}, stop it or apply the change to the running daemon, or --force to edit anyway"
    )]
    Held {
        /// The application.
        app: String,
        /// The holder's PID.
        pid: u32,
    },
    /// The file system has too little free space for a write; nothing was written.
    #[error(
        "not enough free space for the store {}: {needed} bytes needed (with a margin), {free} free; nothing was written: free some space and try again",
        .dir.display()
    )]
    NoSpace {
        /// The store's folder.
        dir: PathBuf,
        /// The bytes the write needs, margin included.
        needed: u64,
        /// The bytes free.
        free: u64,
    },
    /// The store was opened for reading only (its folder is read-only, or the caller asked).
    #[error("the store {} is open for reading only; nothing was written", .dir.display())]
    ReadOnly {
        /// The store's folder.
        dir: PathBuf,
    },
    /// A store operation did not finish within its deadline.
    #[error(
        "the store {} did not answer within {seconds} s ({what}); nothing was reported saved",
        .dir.display()
    )]
    TimedOut {
        /// The store's folder.
        dir: PathBuf,
        /// What was being done.
        what: String,
        /// The deadline, in seconds.
        seconds: u64,
    },
    /// A remote store (etcd) could not do what was asked; its own words say why.
    #[error("the store {} failed: {detail}", .dir.display())]
    Remote {
        /// The store's address.
        dir: PathBuf,
        /// What the backend reported, with the way out where there is one.
        detail: String,
    },
    /// `gc` was asked to keep no snapshot.
    #[error("gc must keep at least 1 snapshot (the newest is always kept)")]
    KeepNothing,
}
