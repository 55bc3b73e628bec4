//! The `tas` style: a source snapshot in pretty JSON, for people, diffs and `jq`.
//!
//! ```json
//! {
//!   "rtwisted": "snapshot",
//!   "format_version": 1,
//!   "style": "tas",
//!   "app": "echo",
//!   "created": "2026-11-24T10:00:00Z",
//!   "producer": "rtwisted 0.1.0",
//!   "manifest": [ { "type": "rtwisted.Echo", "kind": "factory", "version": 1 } ],
//!   "checksum": "sha256:…",
//!   "application": { "name": "echo", … }
//! }
//! ```
//! The checksum is the SHA-256 of the compact JSON of the header fields (format version first),
//! a newline, and the `application` text exactly as it stands in the file. A hand edit therefore
//! shows up as a checksum mismatch; `rtap` edits snapshots and rewrites the checksum.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::FormatError;
use crate::header::{FORMAT_VERSION, Header, HeaderFields, ManifestEntry, checksum};

/// The value of the `rtwisted` key that marks a tas file.
pub const MARKER: &str = "snapshot";

#[derive(Serialize)]
struct Canonical<'a> {
    format_version: u64,
    #[serde(flatten)]
    fields: &'a HeaderFields,
}

fn canonical(format_version: u64, fields: &HeaderFields) -> Result<Vec<u8>, FormatError> {
    serde_json::to_vec(&Canonical {
        format_version,
        fields,
    })
    .map_err(|error| FormatError::Encode(error.into()))
}

/// True if the first non-blank byte is `{`.
pub fn looks_like_tas(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .find(|byte| !byte.is_ascii_whitespace())
        .is_some_and(|&byte| byte == b'{')
}

/// Encodes header fields and an application value; returns the bytes and the checksum text.
pub fn encode(
    fields: &HeaderFields,
    application: &Value,
) -> Result<(Vec<u8>, String), FormatError> {
    let pretty = serde_json::to_string_pretty(application)
        .map_err(|error| FormatError::Encode(error.into()))?;
    seal(fields, &pretty)
}

/// Frames the pretty JSON of an application with its header and checksum.
pub fn seal(fields: &HeaderFields, pretty: &str) -> Result<(Vec<u8>, String), FormatError> {
    let encode_error = |error: serde_json::Error| FormatError::Encode(error.into());
    let body = pretty.replace('\n', "\n  ");
    let sum = checksum(&[
        &canonical(FORMAT_VERSION.into(), fields)?,
        b"\n",
        body.as_bytes(),
    ]);
    let mut head = serde_json::Map::new();
    head.insert("rtwisted".into(), MARKER.into());
    head.insert("format_version".into(), FORMAT_VERSION.into());
    if let Value::Object(map) = serde_json::to_value(fields).map_err(encode_error)? {
        head.extend(map);
    }
    head.insert("checksum".into(), sum.clone().into());
    let head = serde_json::to_string_pretty(&head).map_err(encode_error)?;
    let head = head.strip_suffix("\n}").unwrap_or(&head);
    let text = format!("{head},\n  \"application\": {body}\n}}\n");
    Ok((text.into_bytes(), sum))
}

#[derive(Deserialize)]
struct Probe {
    rtwisted: Option<String>,
    format_version: Option<u64>,
}

/// Refuses text without the tas marker, or of a format version this build cannot read.
fn check_marker_and_version(marker: Option<&str>, version: Option<u64>) -> Result<(), FormatError> {
    if marker != Some(MARKER) {
        return Err(FormatError::NotASnapshot);
    }
    match version {
        Some(found) if found > u64::from(FORMAT_VERSION) => Err(FormatError::NewerFormat {
            found,
            supported: FORMAT_VERSION,
        }),
        Some(0) | None => Err(FormatError::Corrupt {
            detail: "missing or invalid format_version".into(),
        }),
        Some(_) => Ok(()),
    }
}

#[derive(Deserialize)]
struct Document<'a> {
    rtwisted: Option<String>,
    format_version: u64,
    style: rtwisted_core::Style,
    app: String,
    created: String,
    producer: String,
    manifest: Vec<ManifestEntry>,
    #[serde(default)]
    parent: Option<crate::lineage::Parent>,
    checksum: String,
    #[serde(borrow)]
    application: &'a RawValue,
}

fn json_error(error: serde_json::Error) -> FormatError {
    if error.is_eof() {
        FormatError::Truncated
    } else {
        FormatError::BadJson(error)
    }
}

/// Checks the marker, version and checksum, then decodes the application into a generic value.
pub fn decode(bytes: &[u8]) -> Result<(Header, Value), FormatError> {
    let (header, application) = open(bytes)?;
    let value = serde_json::from_str(application).map_err(json_error)?;
    Ok((header, value))
}

/// Checks the marker, version, checksum and the default bounds; returns the header and the
/// verified `application` text.
pub fn open(bytes: &[u8]) -> Result<(Header, &str), FormatError> {
    open_with(bytes, &crate::Limits::default())
}

/// [`open`] under `limits`.
pub fn open_with<'a>(
    bytes: &'a [u8],
    limits: &crate::Limits,
) -> Result<(Header, &'a str), FormatError> {
    if !looks_like_tas(bytes) {
        return Err(FormatError::NotASnapshot);
    }
    crate::bounds::scan_json_with(bytes, limits)?;
    // One parse of the whole document in the common case; only when it fails is the text
    // probed for the marker and version, which explain a failure better than the parse does.
    let document: Document<'_> = match serde_json::from_slice(bytes) {
        Ok(document) => document,
        Err(error) => {
            let probe: Probe = serde_json::from_slice(bytes).map_err(json_error)?;
            check_marker_and_version(probe.rtwisted.as_deref(), probe.format_version)?;
            return Err(json_error(error));
        }
    };
    check_marker_and_version(document.rtwisted.as_deref(), Some(document.format_version))?;
    let fields = HeaderFields {
        style: document.style,
        app: document.app,
        created: document.created,
        producer: document.producer,
        manifest: document.manifest,
        parent: document.parent,
    };
    let actual = checksum(&[
        &canonical(document.format_version, &fields)?,
        b"\n",
        document.application.get().as_bytes(),
    ]);
    if actual != document.checksum {
        return Err(FormatError::ChecksumMismatch {
            expected: document.checksum,
            actual,
        });
    }
    if fields.style != rtwisted_core::Style::Tas {
        return Err(FormatError::Corrupt {
            detail: format!("the header says style '{}' in a tas file", fields.style),
        });
    }
    let format_version = u16::try_from(document.format_version).unwrap_or(FORMAT_VERSION);
    Ok((
        Header {
            format_version,
            fields,
            checksum: document.checksum,
        },
        document.application.get(),
    ))
}
