//! What the store records beside each snapshot's bytes, and what it lists per application.

use rtwisted_core::Style;
use serde::{Deserialize, Serialize};

/// One stored snapshot's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The application it belongs to.
    pub app: String,
    /// Its number within the application: 1, 2, 3, ... in the order stored, never reused.
    pub number: u64,
    /// When it was stored (RFC 3339, UTC, seconds).
    pub saved: String,
    /// The size of its bytes.
    pub size: u64,
    /// Its tag, if it has one (unique within the application).
    pub tag: Option<String>,
    /// What wrote the snapshot (`rtwisted 0.1.0`, from its header), or `encrypted` when the
    /// bytes are encrypted and so were not opened.
    pub producer: String,
    /// True when the bytes are passphrase-encrypted (age).
    pub encrypted: bool,
    /// The snapshot's style (`tap` or `tas`), unknown for encrypted bytes.
    pub style: Option<Style>,
    /// When the snapshot was written, from its header; unknown for encrypted bytes.
    pub created: Option<String>,
    /// `sha256:HEX` of the stored bytes, checked whenever they are read back.
    pub sha256: String,
    /// The snapshot of the same application it was made from (a daemon's save records the
    /// snapshot the daemon loaded; an edit, the one it edited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<u64>,
    /// Set when it was saved from [`parent`](Entry::parent) while a newer snapshot of the
    /// application existed (this one): the history forked, and nothing was reverted silently.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diverged_from: Option<u64>,
}

impl Entry {
    /// The entry's address, `APP@N`.
    pub fn address(&self) -> String {
        format!("{}@{}", self.app, self.number)
    }
}

/// One application in a store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppSummary {
    /// The application's name.
    pub app: String,
    /// How many snapshots the store holds for it.
    pub count: usize,
    /// Their total size in bytes.
    pub total_bytes: u64,
    /// The newest one.
    pub latest: Entry,
}
