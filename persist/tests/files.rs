//! Saving and loading files: atomicity, permissions, and a clear error for every bad input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use rtwisted_core::registry::TypeKind;
use rtwisted_core::{Application, IntoChild, Style};
use rtwisted_persist::{FormatError, HeaderFields, ManifestEntry};
use rtwisted_services::net::StreamServer;
use rtwisted_services::protocols::Echo;
use serde_json::json;

fn echo_app() -> Application {
    let mut app = Application::new("echo").unwrap();
    let server = StreamServer::new("tcp:7001".parse().unwrap(), Arc::new(Echo::default()))
        .named("echo")
        .unwrap();
    app.services_mut().insert(server).unwrap();
    app
}

/// A folder holding the echo application saved as `echo.tap`, and that file's path.
fn saved_echo() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("echo.tap");
    rtwisted_persist::save(&echo_app(), &path, Style::Tap).unwrap();
    (dir, path)
}

/// The echo application's snapshot in each style.
fn echo_snapshots() -> impl Iterator<Item = (Style, Vec<u8>)> {
    [Style::Tap, Style::Tas].into_iter().map(|style| {
        let (bytes, _) = rtwisted_persist::encode(&echo_app(), style).unwrap();
        (style, bytes)
    })
}

fn load_error(path: &Path) -> String {
    rtwisted_persist::load(path).unwrap_err().to_string()
}

#[test]
fn a_save_is_mode_0600_and_leaves_no_temporary_file() {
    let (dir, path) = saved_echo();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["echo.tap"]);
}

/// A service type whose author forgot `register_type!`.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Unregistered {}

#[typetag::serde(name = "test.Unregistered")]
#[async_trait::async_trait]
impl rtwisted_core::Service for Unregistered {}

#[test]
fn a_failed_save_leaves_the_previous_snapshot_whole() {
    let (dir, path) = saved_echo();
    let before = std::fs::read(&path).unwrap();

    let mut app = echo_app();
    app.services_mut()
        .insert_unnamed(Box::new(Unregistered {}))
        .unwrap();
    let err = rtwisted_persist::save(&app, &path, Style::Tap).unwrap_err();
    assert!(
        err.to_string().contains(
            "type 'test.Unregistered' is not registered: add `rtwisted_core::register_type!"
        ),
        "{err}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn saving_into_a_missing_folder_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing/echo.tap");
    let err = rtwisted_persist::save(&echo_app(), &path, Style::Tap).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "cannot save snapshot '{}': no such file or directory",
            path.display()
        )
    );
}

#[test]
fn a_missing_file_or_a_folder_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.tap");
    assert_eq!(
        load_error(&missing),
        format!(
            "cannot load snapshot '{}': no such file or directory",
            missing.display()
        )
    );
    assert_eq!(
        load_error(dir.path()),
        format!(
            "cannot load snapshot '{}': it is a directory, not a file",
            dir.path().display()
        )
    );
}

#[test]
fn a_file_that_is_not_a_snapshot_says_so() {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in [
        ("text.tap", &b"hello world"[..]),
        ("empty.tap", b""),
        ("json.tas", br#"{"some": "json"}"#),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        assert!(
            load_error(&path)
                .ends_with("not an rtwisted snapshot (it has neither a tap nor a tas header)"),
            "{name}: {}",
            load_error(&path)
        );
    }
}

#[test]
fn every_truncation_of_a_snapshot_is_reported_never_a_panic() {
    for (style, bytes) in echo_snapshots() {
        // Trailing whitespace after a tas document is not part of it.
        let whole = bytes.trim_ascii_end().len();
        for len in 1..whole {
            let err = rtwisted_persist::decode(&bytes[..len]).unwrap_err();
            assert!(
                matches!(
                    err,
                    FormatError::Truncated
                        | FormatError::ChecksumMismatch { .. }
                        | FormatError::Corrupt { .. }
                        | FormatError::BadJson(_)
                        | FormatError::BadHeader(_)
                        | FormatError::BadPayload(_)
                        | FormatError::NotASnapshot
                ),
                "{style} cut at {len}: {err}"
            );
        }
        let (tap, _) = rtwisted_persist::encode(&echo_app(), Style::Tap).unwrap();
        let err = rtwisted_persist::decode(&tap[..tap.len() - 1]).unwrap_err();
        assert!(matches!(err, FormatError::Truncated), "{err}");
    }
}

#[test]
fn a_flipped_bit_is_a_checksum_mismatch() {
    for (style, mut bytes) in echo_snapshots() {
        // Inside the endpoint string: "tcp:7001" becomes "tcp:7000", still well-formed.
        let target = bytes.windows(4).position(|w| w == b"7001").unwrap() + 3;
        bytes[target] ^= 0x01;
        let err = rtwisted_persist::decode(&bytes).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("checksum mismatch: the file is damaged"),
            "{style}: {err}"
        );
    }
}

#[test]
fn a_newer_format_version_is_refused_before_decoding() {
    let (mut tap, _) = rtwisted_persist::encode(&echo_app(), Style::Tap).unwrap();
    tap[8..10].copy_from_slice(&7u16.to_be_bytes());
    let err = rtwisted_persist::decode(&tap).unwrap_err();
    assert_eq!(
        err.to_string(),
        "snapshot format version 7 is newer than this rtwisted reads (up to 1); upgrade rtwisted"
    );

    let (tas, _) = rtwisted_persist::encode(&echo_app(), Style::Tas).unwrap();
    let tas = String::from_utf8(tas)
        .unwrap()
        .replace("\"format_version\": 1", "\"format_version\": 9");
    let err = rtwisted_persist::decode(tas.as_bytes()).unwrap_err();
    assert!(
        matches!(err, FormatError::NewerFormat { found: 9, .. }),
        "{err}"
    );
    // A newer format may change what the header holds: the version is still what is named.
    let reshaped = tas.replace("\"style\": \"tas\"", "\"style\": {\"name\": \"tas\"}");
    assert_ne!(reshaped, tas);
    let err = rtwisted_persist::decode(reshaped.as_bytes()).unwrap_err();
    assert!(
        matches!(err, FormatError::NewerFormat { found: 9, .. }),
        "{err}"
    );
}

#[test]
fn unknown_types_are_all_listed_by_tag() {
    let manifest = ["acme.Web", "rtwisted.MultiService", "acme.Cache"]
        .iter()
        .map(|tag| ManifestEntry {
            tag: (*tag).into(),
            kind: TypeKind::Service,
            version: 1,
        })
        .collect();
    let fields = HeaderFields::new(Style::Tas, "acme", manifest);
    let application = json!({
        "name": "acme",
        "services": {"name": null, "children": [
            {"type": "acme.Web", "name": "web"},
            {"type": "acme.Cache", "name": "cache"}
        ]}
    });
    let (bytes, _) = rtwisted_persist::tas::encode(&fields, &application).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("acme.tas");
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(
        load_error(&path),
        format!(
            "cannot load snapshot '{}': unknown service types acme.Cache, acme.Web (this binary does not link the crates that define them)",
            path.display()
        )
    );
    let raw = rtwisted_persist::load_raw(&path).unwrap();
    assert_eq!(raw.unknown_types, ["acme.Cache", "acme.Web"]);
}

#[test]
fn the_tas_style_is_readable_json_with_the_header_first() {
    let (bytes, header) = rtwisted_persist::encode(&echo_app(), Style::Tas).unwrap();
    let text = String::from_utf8(bytes).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["rtwisted"], "snapshot");
    assert_eq!(doc["app"], "echo");
    assert_eq!(doc["checksum"], header.checksum.as_str());
    assert_eq!(
        doc["application"]["services"]["children"][0]["endpoint"],
        "tcp:7001"
    );
    assert!(text.starts_with("{\n  \"rtwisted\": \"snapshot\",\n  \"format_version\": 1,"));
}

#[test]
fn every_single_bit_flip_is_an_error_never_a_panic() {
    for (style, bytes) in echo_snapshots() {
        let whole = bytes.trim_ascii_end().len();
        for position in 0..whole {
            for bit in 0..8 {
                let mut flipped = bytes.clone();
                flipped[position] ^= 1 << bit;
                let result = rtwisted_persist::decode(&flipped);
                assert!(
                    result.is_err(),
                    "{style}: flipping bit {bit} of byte {position} went unnoticed"
                );
            }
        }
    }
}

/// A tap file whose checksum is right but whose payload is hostile.
fn sealed_tap(payload: &[u8]) -> Vec<u8> {
    let (good, _) = rtwisted_persist::encode(&echo_app(), Style::Tap).unwrap();
    let header_len = u32::from_be_bytes(good[10..14].try_into().unwrap()) as usize;
    let header = &good[22..22 + header_len];
    let mut bytes = good[..10].to_vec();
    bytes.extend_from_slice(&(header_len as u32).to_be_bytes());
    bytes.extend_from_slice(&(payload.len() as u64).to_be_bytes());
    bytes.extend_from_slice(header);
    bytes.extend_from_slice(payload);
    let digest = rtwisted_persist::header::digest(&[&bytes]);
    bytes.extend_from_slice(&digest);
    bytes
}

#[test]
fn a_payload_claiming_a_huge_array_is_refused_before_any_allocation() {
    let err =
        rtwisted_persist::decode(&sealed_tap(&[0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the snapshot is damaged: a container claims 4294967295 elements but only 1 bytes remain"
    );
    let mut deep = vec![0x91u8; 100_000];
    deep.push(0xc0);
    let err = rtwisted_persist::decode(&sealed_tap(&deep)).unwrap_err();
    assert!(
        err.to_string().contains("nesting deeper than 128 levels"),
        "{err}"
    );
    let nested_json = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let err = rtwisted_persist::decode(
        format!("{{\"rtwisted\": \"snapshot\", \"x\": {nested_json}}}").as_bytes(),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("nesting deeper than 128 levels"),
        "{err}"
    );
}

#[test]
fn a_file_larger_than_the_limit_is_refused_without_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.tap");
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(rtwisted_persist::bounds::MAX_SNAPSHOT_BYTES + 1)
        .unwrap();
    let err = rtwisted_persist::load(&path).unwrap_err();
    assert!(
        err.to_string()
            .contains("more than the 536870912 bytes a snapshot may have"),
        "{err}"
    );
}

/// The messages of an error and of every error below it, as a chain printer such as anyhow's
/// `{:#}` shows them.
fn chain(error: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut messages = vec![error.to_string()];
    let mut next = error.source();
    while let Some(source) = next {
        messages.push(source.to_string());
        next = source.source();
    }
    messages
}

#[test]
fn an_error_chain_names_each_cause_once() {
    let (dir, path) = saved_echo();
    let whole = std::fs::read(&path).unwrap();
    std::fs::write(&path, &whole[..whole.len() / 2]).unwrap();
    let missing = dir.path().join("missing.tap");
    let errors = [
        rtwisted_persist::load(&path).unwrap_err(),
        rtwisted_persist::load(&missing).unwrap_err(),
        rtwisted_persist::save(
            &echo_app(),
            &dir.path().join("no/such/echo.tap"),
            Style::Tap,
        )
        .unwrap_err(),
    ];
    for error in &errors {
        let messages = chain(error);
        for pair in messages.windows(2) {
            assert!(
                !pair[0].contains(&pair[1]),
                "{:?} repeats its source {:?}",
                pair[0],
                pair[1]
            );
        }
        let line = messages.join(": ");
        for cause in ["truncated", "no such file or directory"] {
            assert!(line.matches(cause).count() <= 1, "{line}");
        }
    }
    let store = rtwisted_persist::store::SledStore::open(&dir.path().join("nothing")).unwrap_err();
    assert_eq!(chain(&store).len(), 1, "{store}");
}
