//! Where a snapshot came from: every snapshot made from another one (an edit, a daemon's
//! shutdown save or checkpoint) records that one as its [`Parent`] in its header, with the
//! parent's own ancestors, so "does this shutdown snapshot descend from `echo.tap` as it is
//! now?" has an answer even after the snapshots in between were overwritten.
//!
//! A snapshot made from scratch (`rtap save`) has no parent, and its header has no `parent`
//! field at all: its bytes are the ones it always had.
//!
//! ```
//! use rtwisted_persist::lineage::{Parent, descends_from};
//! let base = "sha256:aa".to_owned();
//! let child = Parent::from_checksum(base.clone(), None, &[]);
//! let grandchild = Parent::from_checksum("sha256:bb".into(), None, &child.lineage().map(str::to_owned).collect::<Vec<_>>());
//! assert!(descends_from("sha256:cc", Some(&grandchild), &base));
//! assert!(!descends_from("sha256:cc", Some(&grandchild), "sha256:dd"));
//! ```

use serde::{Deserialize, Serialize};

use crate::Header;

/// How many ancestors beyond the parent a header keeps.
pub const MAX_ANCESTORS: usize = 64;

/// The snapshot a snapshot was made from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parent {
    /// `sha256:HEX` of the parent (of its plain bytes, as its header says).
    pub checksum: String,
    /// The parent's number in the snapshot store, when it was loaded from one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<u64>,
    /// The parent's own ancestors, newest first, at most [`MAX_ANCESTORS`] (the oldest beyond
    /// that are dropped, except one pinned by [`Parent::pin`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ancestors: Vec<String>,
}

impl Parent {
    /// The parent record of a snapshot made from the snapshot whose header is `header` (loaded
    /// from store number `store`, if from a store).
    pub fn of(header: &Header, store: Option<u64>) -> Self {
        let ancestors: Vec<String> = header
            .fields
            .parent
            .as_ref()
            .map(|parent| parent.lineage().map(str::to_owned).collect())
            .unwrap_or_default();
        Self::from_checksum(header.checksum.clone(), store, &ancestors)
    }

    /// A parent record for the snapshot `checksum` whose own lineage (newest first) is
    /// `ancestors`.
    pub fn from_checksum(checksum: String, store: Option<u64>, ancestors: &[String]) -> Self {
        let mut kept: Vec<String> = Vec::with_capacity(ancestors.len().min(MAX_ANCESTORS));
        for ancestor in ancestors {
            if kept.len() == MAX_ANCESTORS {
                break;
            }
            if *ancestor != checksum && !kept.contains(ancestor) {
                kept.push(ancestor.clone());
            }
        }
        Parent {
            checksum,
            store,
            ancestors: kept,
        }
    }

    /// Keeps `checksum` in the lineage even when it is older than the ancestors kept: a daemon
    /// resumed again and again from one base file pins that file, so its saves always descend
    /// from it.
    pub fn pin(&mut self, checksum: &str) {
        if self.checksum == checksum || self.ancestors.iter().any(|a| a == checksum) {
            return;
        }
        if self.ancestors.len() == MAX_ANCESTORS {
            self.ancestors.pop();
        }
        self.ancestors.push(checksum.to_owned());
    }

    /// The parent and then its ancestors, newest first.
    pub fn lineage(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.checksum.as_str()).chain(self.ancestors.iter().map(String::as_str))
    }
}

/// True if the snapshot `checksum`, whose header records `parent`, is the snapshot `base` or
/// descends from it.
pub fn descends_from(checksum: &str, parent: Option<&Parent>, base: &str) -> bool {
    checksum == base || parent.is_some_and(|parent| parent.lineage().any(|c| c == base))
}
