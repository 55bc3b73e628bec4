//! The snapshot header: what a snapshot is, who wrote it, and which types it needs.

use rtwisted_core::Style;
use rtwisted_core::registry::{self, TypeKind};
use rtwisted_core::tree::ROOT_TAG;
use serde::{Deserialize, Serialize};

use crate::FormatError;

/// The snapshot format version this build writes, and the newest it reads.
pub const FORMAT_VERSION: u16 = 1;

/// One type a snapshot needs, with the version it was written at.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// The type tag, e.g. `rtwisted.StreamServer`.
    #[serde(rename = "type")]
    pub tag: String,
    /// Service or factory.
    pub kind: TypeKind,
    /// The type's version when the snapshot was written.
    pub version: u32,
}

/// The header fields both styles carry. The checksum covers them together with the payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderFields {
    /// The style of the file.
    pub style: Style,
    /// The application's name.
    pub app: String,
    /// When the snapshot was written (RFC 3339, UTC).
    pub created: String,
    /// What wrote it: `rtwisted VERSION`.
    pub producer: String,
    /// Every type the payload uses.
    pub manifest: Vec<ManifestEntry>,
    /// The snapshot this one was made from; absent for a snapshot made from scratch, whose
    /// header then has no `parent` field at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<crate::lineage::Parent>,
}

/// A decoded header: the fields plus the format version and the verified checksum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Header {
    /// The snapshot format version.
    pub format_version: u16,
    /// The fields.
    #[serde(flatten)]
    pub fields: HeaderFields,
    /// `sha256:HEX` of the contents (verified on load).
    pub checksum: String,
}

impl HeaderFields {
    /// Header fields for `app_name`, stamped now by this build, with `manifest`.
    pub fn new(style: Style, app_name: &str, manifest: Vec<ManifestEntry>) -> Self {
        HeaderFields {
            style,
            app: app_name.to_owned(),
            created: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            producer: format!("rtwisted {}", env!("CARGO_PKG_VERSION")),
            manifest,
            parent: None,
        }
    }
}

/// The manifest of what an encoder wrote: every tag it recorded (see
/// [`rtwisted_core::codec::record`]), each with its registered kind and version.
pub fn manifest_of_tags(tags: Vec<String>) -> Result<Vec<ManifestEntry>, FormatError> {
    let mut tags = tags;
    if !tags.iter().any(|tag| tag == ROOT_TAG) {
        tags.push(ROOT_TAG.to_owned());
    }
    tags.sort();
    tags.dedup();
    tags.into_iter()
        .map(|tag| match registry::lookup(&tag) {
            Some(info) => Ok(ManifestEntry {
                tag,
                kind: info.kind,
                version: info.version,
            }),
            None => Err(FormatError::UnregisteredType { tag }),
        })
        .collect()
}

/// Checks a manifest against the tags a decoder found: every type found must be listed, and
/// every service listed must have been found. (A factory or task listed but not found may sit
/// inside a type of your own that reads it through typetag, where the codec does not see it.)
pub fn check_manifest(manifest: &[ManifestEntry], found: &[String]) -> Result<(), FormatError> {
    let unlisted: Vec<String> = found
        .iter()
        .filter(|tag| !manifest.iter().any(|entry| &entry.tag == *tag))
        .cloned()
        .collect();
    let absent: Vec<String> = manifest
        .iter()
        .filter(|entry| entry.kind == TypeKind::Service && entry.tag != ROOT_TAG)
        .filter(|entry| !found.contains(&entry.tag))
        .map(|entry| entry.tag.clone())
        .collect();
    if unlisted.is_empty() && absent.is_empty() {
        return Ok(());
    }
    Err(FormatError::ManifestMismatch { unlisted, absent })
}

/// The tags in a manifest that this binary does not know, sorted.
pub fn unknown_types(manifest: &[ManifestEntry]) -> Vec<String> {
    let mut unknown: Vec<String> = manifest
        .iter()
        .filter(|entry| registry::lookup(&entry.tag).is_none())
        .map(|entry| entry.tag.clone())
        .collect();
    unknown.sort();
    unknown.dedup();
    unknown
}

/// `sha256:HEX` of the parts, in order.
pub fn checksum(parts: &[&[u8]]) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hex("sha256:", &hasher.finalize())
}

/// The raw SHA-256 of the parts.
pub fn digest(parts: &[&[u8]]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// `prefix` followed by the bytes in lowercase hex.
pub fn hex(prefix: &str, bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut text = String::with_capacity(prefix.len() + bytes.len() * 2);
    text.push_str(prefix);
    for byte in bytes {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(tag: &str, kind: TypeKind) -> ManifestEntry {
        ManifestEntry {
            tag: tag.into(),
            kind,
            version: 1,
        }
    }

    #[test]
    fn the_manifest_lists_each_recorded_tag_once_with_the_root() {
        let manifest = manifest_of_tags(vec![]).unwrap();
        assert_eq!(manifest, [entry(ROOT_TAG, TypeKind::Service)]);
        let err = manifest_of_tags(vec!["acme.Unknown".into()]).unwrap_err();
        assert!(
            matches!(&err, FormatError::UnregisteredType { tag } if tag == "acme.Unknown"),
            "{err}"
        );
    }

    #[test]
    fn a_manifest_must_list_what_was_found_and_find_what_it_lists() {
        let manifest = [
            entry(ROOT_TAG, TypeKind::Service),
            entry("acme.Listed", TypeKind::Service),
            entry("acme.Nested", TypeKind::Factory),
        ];
        let found = |tags: &[&str]| tags.iter().map(|tag| (*tag).to_owned()).collect::<Vec<_>>();
        check_manifest(&manifest, &found(&[ROOT_TAG, "acme.Listed"])).unwrap();
        let err = check_manifest(&manifest, &found(&["acme.Other"])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the snapshot's manifest does not match its contents: found acme.Other, which the manifest does not list; the manifest lists acme.Listed, which is not there (the file was altered or written by broken code; restore a copy)"
        );
    }
}
