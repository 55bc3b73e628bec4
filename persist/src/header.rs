//! The snapshot header: what a snapshot is, who wrote it, and which types it needs.

use rtwisted_core::Style;
use rtwisted_core::registry::{self, TypeKind};
use rtwisted_core::tree::{ROOT_TAG, TYPE_KEY};
use serde::{Deserialize, Serialize};
use serde_json::Value;

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

/// The manifest of an encoded application: the root collection plus every tagged object (a map
/// whose first key is `type`) in the service tree, each with its registered kind and version.
pub fn manifest_of(services: &Value) -> Result<Vec<ManifestEntry>, FormatError> {
    let mut tags = vec![ROOT_TAG.to_owned()];
    collect_tags(services, &mut tags);
    manifest_from_tags(tags)
}

/// The manifest of an application already encoded as MessagePack, found without decoding it.
pub fn manifest_of_msgpack(payload: &[u8]) -> Result<Vec<ManifestEntry>, FormatError> {
    let mut tags = DistinctTags::default();
    // The first pair of a map is items 0 (key) and 1 (value).
    let mut first_key_is_type = false;
    crate::bounds::walk_msgpack(payload, |item, index, in_map| {
        if !in_map {
            return;
        }
        match (index, item) {
            (0, crate::bounds::Item::Str(key)) => first_key_is_type = key == TYPE_KEY.as_bytes(),
            (1, crate::bounds::Item::Str(tag)) if first_key_is_type => {
                tags.insert(tag);
                first_key_is_type = false;
            }
            (0, _) | (1, _) => first_key_is_type = false,
            _ => {}
        }
    })?;
    let mut all = vec![ROOT_TAG.to_owned()];
    all.extend(
        tags.list
            .iter()
            .map(|tag| String::from_utf8_lossy(tag).into_owned()),
    );
    manifest_from_tags(all)
}

/// The distinct tags of a payload, each kept once as it was found: a tree of a hundred
/// thousand services has only a handful of types.
#[derive(Default)]
struct DistinctTags<'a> {
    list: Vec<&'a [u8]>,
    /// An index of `list` once it is too long to search.
    index: std::collections::HashSet<&'a [u8]>,
}

impl<'a> DistinctTags<'a> {
    const SEARCHED: usize = 16;

    fn insert(&mut self, tag: &'a [u8]) {
        if self.list.len() < Self::SEARCHED {
            if !self.list.contains(&tag) {
                self.list.push(tag);
            }
            return;
        }
        if self.index.is_empty() {
            self.index.extend(self.list.iter().copied());
        }
        if self.index.insert(tag) {
            self.list.push(tag);
        }
    }
}

fn manifest_from_tags(mut tags: Vec<String>) -> Result<Vec<ManifestEntry>, FormatError> {
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

fn collect_tags(value: &Value, tags: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some((key, Value::String(tag))) = map.iter().next()
                && key == TYPE_KEY
            {
                tags.push(tag.clone());
            }
            for item in map.values() {
                collect_tags(item, tags);
            }
        }
        Value::Array(items) => {
            for item in items {
                collect_tags(item, tags);
            }
        }
        _ => {}
    }
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

    /// The manifest as it was read before tags were kept once each: every tag, sorted.
    fn every_tag(payload: &[u8]) -> Vec<String> {
        let mut tags = vec![ROOT_TAG.to_owned()];
        let mut first_key_is_type = false;
        crate::bounds::walk_msgpack(payload, |item, index, in_map| {
            if !in_map {
                return;
            }
            match (index, item) {
                (0, crate::bounds::Item::Str(key)) => first_key_is_type = key == b"type",
                (1, crate::bounds::Item::Str(tag)) if first_key_is_type => {
                    tags.push(String::from_utf8_lossy(tag).into_owned());
                    first_key_is_type = false;
                }
                (0, _) | (1, _) => first_key_is_type = false,
                _ => {}
            }
        })
        .unwrap();
        tags.sort();
        tags.dedup();
        tags
    }

    #[test]
    fn many_distinct_tags_are_each_listed_once() {
        // Forty tags, each used several times, past the point where the list is indexed. (No
        // numbers: with serde_json's `arbitrary_precision`, which the workspace enables, a
        // number in a `Value` is written as a map holding a string.)
        let children: Vec<Value> = (0..400)
            .map(|i| serde_json::json!({"type": format!("acme.T{}", i % 40), "n": format!("{i}")}))
            .collect();
        let payload = rmp_serde::to_vec_named(&serde_json::json!({"children": children})).unwrap();
        let mut tags = DistinctTags::default();
        crate::bounds::walk_msgpack(&payload, |item, index, in_map| {
            if let (true, 1, crate::bounds::Item::Str(tag)) = (in_map, index, item) {
                tags.insert(tag);
            }
        })
        .unwrap();
        assert_eq!(tags.list.len(), 40);
        let err = manifest_of_msgpack(&payload).unwrap_err();
        assert!(
            matches!(&err, FormatError::UnregisteredType { tag } if tag == "acme.T0"),
            "{err}"
        );
        assert_eq!(every_tag(&payload).len(), 41);
    }

    #[test]
    fn the_manifest_lists_each_registered_tag_once() {
        let value = serde_json::json!({"name": "x", "services": {"name": null, "children": [
            {"type": "rtwisted.MultiService", "name": "a", "children": [
                {"type": "rtwisted.MultiService", "name": "b", "children": []}]},
            {"type": "rtwisted.MultiService", "name": "c", "children": []}]}});
        let payload = rmp_serde::to_vec_named(&value).unwrap();
        let manifest = manifest_of_msgpack(&payload).unwrap();
        let tags: Vec<_> = manifest.iter().map(|entry| entry.tag.clone()).collect();
        assert_eq!(tags, every_tag(&payload));
        assert_eq!(tags, ["rtwisted.MultiService"]);
    }
}
