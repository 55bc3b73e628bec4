//! Snapshots written as a binary that links other types would write them: the echo snapshot
//! with its text edited and its checksum resealed.

use crate::{Scratch, text};

/// Saves the echo plugin as `echo.tas` in `scratch`, then writes `file`: the same snapshot with
/// each `(from, to)` text replaced and the checksum resealed, as a snapshot written by a binary
/// that links other types would be.
pub fn foreign_snapshot(scratch: &Scratch, file: &str, replacements: &[(&str, &str)]) {
    let output = scratch.rtap(&[
        "save",
        "echo",
        "--port",
        "tcp:0:interface=127.0.0.1",
        "--style",
        "tas",
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let mut snapshot = std::fs::read_to_string(scratch.join("echo.tas")).unwrap();
    for (from, to) in replacements {
        snapshot = snapshot.replace(from, to);
    }
    std::fs::write(scratch.join(file), reseal_tas(&snapshot)).unwrap();
}

/// Rewrites the checksum of a tas snapshot the way the format documents it: SHA-256 over the
/// compact JSON of the header fields (format_version, style, app, created, producer, manifest,
/// and parent when there is one),
/// a newline, and the `application` text exactly as it stands in the file.
pub fn reseal_tas(text: &str) -> String {
    use sha2::{Digest, Sha256};
    let doc: serde_json::Value = serde_json::from_str(text).unwrap();
    let mut header = serde_json::json!({
        "format_version": doc["format_version"],
        "style": doc["style"],
        "app": doc["app"],
        "created": doc["created"],
        "producer": doc["producer"],
        "manifest": doc["manifest"],
    });
    if !doc["parent"].is_null() {
        header["parent"] = doc["parent"].clone();
    }
    let start = text.find("\"application\": ").unwrap() + "\"application\": ".len();
    let end = text.trim_end().len() - 1; // the document's closing brace
    let application = text[start..end].trim_end();
    let mut hasher = Sha256::new();
    hasher.update(serde_json::to_vec(&header).unwrap());
    hasher.update(b"\n");
    hasher.update(application.as_bytes());
    let sum: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let old = doc["checksum"].as_str().unwrap();
    text.replace(old, &format!("sha256:{sum}"))
}
