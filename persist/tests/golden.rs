//! The golden corpus in `tests/golden/`: snapshots written by earlier code that must load (and
//! upgrade) forever, and a check that today's encoder still writes the same bytes for the same
//! data, so a format change cannot slip in without a new format version and a new golden file.
//!
//! To add golden files after a deliberate change: `cargo test -p rtwisted-persist --test golden
//! -- --ignored write_golden_files`, then commit the new files (never rewrite old ones).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use rtwisted_core::registry::TypeKind;
use rtwisted_core::{Application, IntoChild, Service, Style};
use rtwisted_persist::{FormatError, HeaderFields};
use rtwisted_services::net::StreamServer;
use rtwisted_services::protocols::Echo;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

// The corpus is written and read through the built-in types' fast path, as rtap and rtwistd
// do (persist's other tests go through typetag alone: both must give these bytes).
rtwisted_core::inventory::submit! {
    rtwisted_persist::codec::Registered(
        &rtwisted_persist::codec::CatalogCodec::<rtwisted_services::codec::BuiltIns>::NEW,
    )
}

fn golden(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/golden")
        .join(name)
}

/// Version 2 of a test type; version 1 called `value` `count`.
#[derive(Debug, Serialize, Deserialize)]
struct Counter {
    value: u64,
}

#[typetag::serde(name = "test.Counter")]
#[async_trait::async_trait]
impl Service for Counter {}

rtwisted_core::register_type!(service "test.Counter", version 2);

fn count_to_value(object: &mut Map<String, Value>) -> Result<(), String> {
    let count = object
        .remove("count")
        .ok_or("version 1 data has no 'count'")?;
    object.insert("value".into(), count);
    Ok(())
}

rtwisted_core::register_upgrade!("test.Counter", from 1, count_to_value);

const CREATED: &str = "2026-11-24T00:00:00Z";

fn fields(style: Style, app: &str, manifest: &[(&str, TypeKind, u32)]) -> HeaderFields {
    common::header_fields(style, app, CREATED, manifest)
}

fn echo_value() -> Value {
    let mut app = Application::new("echo").unwrap();
    let server = StreamServer::new(
        "tcp:7001:interface=127.0.0.1".parse().unwrap(),
        Arc::new(Echo::default()),
    )
    .named("echo")
    .unwrap();
    app.services_mut().insert(server).unwrap();
    serde_json::to_value(&app).unwrap()
}

const ECHO_MANIFEST: &[(&str, TypeKind, u32)] = &[
    ("rtwisted.Echo", TypeKind::Factory, 1),
    ("rtwisted.MultiService", TypeKind::Service, 1),
    ("rtwisted.StreamServer", TypeKind::Service, 1),
];

fn counter_value(field: &str, version_note: &str) -> Value {
    json!({
        "name": "counter",
        "process": {"uid": null, "gid": null, "process_name": null, "umask": null},
        "persistence": {"style": "tas", "file_name": null},
        "services": {"name": null, "children": [
            {"type": "test.Counter", "name": version_note, field: 41}
        ]}
    })
}

fn counter_manifest(version: u32) -> Vec<(&'static str, TypeKind, u32)> {
    vec![
        ("rtwisted.MultiService", TypeKind::Service, 1),
        ("test.Counter", TypeKind::Service, version),
    ]
}

#[test]
#[ignore = "writes the golden files; run on purpose, then commit only new files"]
fn write_golden_files() {
    let write = |name: &str, bytes: Vec<u8>| std::fs::write(golden(name), bytes).unwrap();
    let echo = echo_value();
    write(
        "echo-format1.tap",
        rtwisted_persist::tap::encode(&fields(Style::Tap, "echo", ECHO_MANIFEST), &echo)
            .unwrap()
            .0,
    );
    write(
        "echo-format1.tas",
        rtwisted_persist::tas::encode(&fields(Style::Tas, "echo", ECHO_MANIFEST), &echo)
            .unwrap()
            .0,
    );
    for (name, field, version) in [
        ("counter-v1.tas", "count", 1),
        ("counter-v0.tas", "count", 0),
        ("counter-v3.tas", "value", 3),
    ] {
        let manifest = counter_manifest(version);
        write(
            name,
            rtwisted_persist::tas::encode(
                &fields(Style::Tas, "counter", &manifest),
                &counter_value(field, "c"),
            )
            .unwrap()
            .0,
        );
    }
}

#[test]
fn format_1_snapshots_load_and_encode_to_the_same_bytes() {
    for (name, style) in [
        ("echo-format1.tap", Style::Tap),
        ("echo-format1.tas", Style::Tas),
    ] {
        let bytes = std::fs::read(golden(name)).unwrap();
        let raw = rtwisted_persist::decode_raw(&bytes).unwrap();
        assert_eq!(raw.header.format_version, 1);
        let again = match style {
            Style::Tap => {
                rtwisted_persist::tap::encode(&raw.header.fields, &raw.application)
                    .unwrap()
                    .0
            }
            Style::Tas => {
                rtwisted_persist::tas::encode(&raw.header.fields, &raw.application)
                    .unwrap()
                    .0
            }
        };
        assert_eq!(
            again, bytes,
            "{name}: the encoder writes different bytes for the same data: a format change needs a new format version and golden file"
        );
        // The typed form of today's types reads and writes the same data.
        let snapshot = rtwisted_persist::decode(&bytes).unwrap();
        let mut typed = serde_json::to_value(&snapshot.app).unwrap();
        typed["persistence"]["style"] = raw.application["persistence"]["style"].clone();
        assert_eq!(
            typed, raw.application,
            "{name}: a built-in type changed its persisted shape"
        );
        assert_eq!(
            snapshot
                .app
                .services()
                .get("echo")
                .unwrap()
                .service()
                .type_tag(),
            "rtwisted.StreamServer"
        );
    }
}

#[test]
fn an_old_version_is_upgraded_on_load_and_saved_at_the_new_version() {
    let bytes = std::fs::read(golden("counter-v1.tas")).unwrap();
    let snapshot = rtwisted_persist::decode(&bytes).unwrap();
    let counter = snapshot
        .app
        .services()
        .get("c")
        .unwrap()
        .service()
        .downcast_ref::<Counter>()
        .unwrap();
    assert_eq!(counter.value, 41);

    let (again, header) = rtwisted_persist::encode(&snapshot.app, Style::Tas).unwrap();
    assert_eq!(common::manifest_version(&header, "test.Counter"), 2);
    let mut raw = rtwisted_persist::decode_raw(&again).unwrap();
    assert_eq!(
        rtwisted_persist::upgrade::upgrade(&raw.header.fields.manifest, &mut raw.application)
            .unwrap(),
        0
    );
}

#[test]
fn a_newer_version_of_a_type_is_refused_naming_it_and_both_versions() {
    let bytes = std::fs::read(golden("counter-v3.tas")).unwrap();
    let err = rtwisted_persist::decode(&bytes).unwrap_err();
    assert!(
        matches!(
            err,
            FormatError::NewerType {
                found: 3,
                known: 2,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "the snapshot holds test.Counter at version 3, but this build knows it only up to version 2 (it was written by newer code: upgrade the binary)"
    );
}

#[test]
fn a_missing_upgrade_step_is_named() {
    let bytes = std::fs::read(golden("counter-v0.tas")).unwrap();
    let err = rtwisted_persist::decode(&bytes).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the snapshot holds test.Counter at version 0, and no upgrade step takes it from version 0 to 1 (register one with rtwisted_core::register_upgrade!)"
    );
}
