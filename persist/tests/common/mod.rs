//! What the tests of snapshot files share: the header fields golden snapshots were written
//! with, and what a header's manifest lists.
#![allow(dead_code)] // Each test file uses some of these.

use rtwisted_core::Style;
use rtwisted_core::registry::TypeKind;
use rtwisted_persist::{Header, HeaderFields, ManifestEntry};

/// The header of a golden snapshot of `app`, written at `created` by `rtwisted 0.1.0`, whose
/// manifest lists `(tag, kind, version)`.
pub fn header_fields(
    style: Style,
    app: &str,
    created: &str,
    manifest: &[(&str, TypeKind, u32)],
) -> HeaderFields {
    HeaderFields {
        style,
        app: app.into(),
        created: created.into(),
        producer: "rtwisted 0.1.0".into(),
        manifest: manifest
            .iter()
            .map(|(tag, kind, version)| ManifestEntry {
                tag: (*tag).into(),
                kind: *kind,
                version: *version,
            })
            .collect(),
        parent: None,
    }
}

/// The tags a header's manifest lists, in its order.
pub fn manifest_tags(header: &Header) -> Vec<&str> {
    header
        .fields
        .manifest
        .iter()
        .map(|entry| entry.tag.as_str())
        .collect()
}

/// The version a header's manifest gives `tag` (the test fails if it lists no `tag`).
pub fn manifest_version(header: &Header, tag: &str) -> u32 {
    let entry = header.fields.manifest.iter().find(|entry| entry.tag == tag);
    entry
        .unwrap_or_else(|| panic!("the manifest lists no {tag}"))
        .version
}
