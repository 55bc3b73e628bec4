//! The golden files of the key-value server: `kv-v1.tap`, written before keys and values were
//! bytes (items in a map by key, non-UTF-8 values as arrays of numbers), must load through the
//! upgrade step; `kv-v2.tap` and `kv-v2.tas` pin today's form (keys and values as `bin`, or as
//! text and base64 in the readable style), which today's encoder must still write.
//!
//! To add golden files after a deliberate change: `cargo test -p rtwisted-persist --test
//! golden_kv -- --ignored write_golden_files`, then commit the new files (never rewrite old ones).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use rtwisted_core::registry::TypeKind;
use rtwisted_core::{Application, IntoChild, Style};
use rtwisted_persist::HeaderFields;
use rtwisted_services::net::StreamServer;
use rtwisted_services::protocols::Kv;
use serde_json::{Value, json};

fn golden(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/golden")
        .join(name)
}

const CREATED: &str = "2026-12-01T00:00:00Z";

fn fields(style: Style, kv_version: u32) -> HeaderFields {
    common::header_fields(
        style,
        "kv",
        CREATED,
        &[
            ("rtwisted.Kv", TypeKind::Factory, kv_version),
            ("rtwisted.MultiService", TypeKind::Service, 1),
            ("rtwisted.StreamServer", TypeKind::Service, 1),
        ],
    )
}

/// Far in the future, so the item is live whenever the test runs.
const LATER: i64 = 4_000_000_000;

/// One item of the golden table: (key, flags, expires_at, cas, value).
type Item = (Vec<u8>, u32, i64, u64, Vec<u8>);

/// The items of the golden table.
fn items() -> Vec<Item> {
    vec![
        (
            b"greeting".to_vec(),
            0,
            0,
            1,
            b"hello, persistence".to_vec(),
        ),
        (b"n".to_vec(), 7, LATER, 2, b"42".to_vec()),
        (b"raw".to_vec(), 0, 0, 3, vec![0, 159, 146, 150, 255]),
        (vec![0xff, 0x01, b'k'], 1, 0, 4, b"binary key".to_vec()),
    ]
}

fn app(table: Value) -> Application {
    let kv: Kv = serde_json::from_value(json!({"max_value_bytes": 4096, "table": table})).unwrap();
    let server = StreamServer::new("tcp:11211".parse().unwrap(), Arc::new(kv))
        .named("kv")
        .unwrap();
    let mut app = Application::new("kv").unwrap();
    app.services_mut().insert(server).unwrap();
    app
}

fn readable(bytes: &[u8]) -> Value {
    rtwisted_persist::view::readable_bytes(bytes)
}

/// Today's table, as generic data.
fn table_v2() -> Value {
    let items: Vec<Value> = items()
        .into_iter()
        .map(|(key, flags, expires_at, cas, value)| {
            json!({"key": readable(&key), "flags": flags, "expires_at": expires_at, "cas": cas, "value": readable(&value)})
        })
        .collect();
    json!({"next_cas": 5, "items": items})
}

/// The table as version 1 wrote it (it could not hold a non-UTF-8 key).
fn application_v1() -> Value {
    let mut by_key = serde_json::Map::new();
    for (key, flags, expires_at, cas, value) in items() {
        let Ok(key) = String::from_utf8(key) else {
            continue;
        };
        let mut item = json!({"flags": flags, "expires_at": expires_at, "cas": cas});
        match String::from_utf8(value.clone()) {
            Ok(text) => item["text"] = json!(text),
            Err(_) => item["data"] = json!(value),
        }
        by_key.insert(key, item);
    }
    json!({
        "name": "kv",
        "process": {"uid": null, "gid": null, "process_name": null, "umask": null},
        "persistence": {"style": "tap", "file_name": null},
        "services": {"name": null, "children": [
            {"type": "rtwisted.StreamServer", "name": "kv", "endpoint": "tcp:11211",
             "factory": {"type": "rtwisted.Kv", "max_value_bytes": 4096,
                         "table": {"next_cas": 4, "items": by_key}}}
        ]}
    })
}

/// The snapshot bytes of `app` in `style` with the golden header fields.
fn typed_bytes(app: &Application, style: Style) -> Vec<u8> {
    match style {
        Style::Tap => {
            let payload = rmp_serde::to_vec_named(app).unwrap();
            rtwisted_persist::tap::seal(&fields(style, 2), &payload)
                .unwrap()
                .0
        }
        Style::Tas => {
            let pretty = serde_json::to_string_pretty(app).unwrap();
            rtwisted_persist::tas::seal(&fields(style, 2), &pretty)
                .unwrap()
                .0
        }
    }
}

#[test]
#[ignore = "writes the golden files; run on purpose, then commit only new files"]
fn write_golden_files() {
    let write = |name: &str, bytes: Vec<u8>| std::fs::write(golden(name), bytes).unwrap();
    write(
        "kv-v1.tap",
        rtwisted_persist::tap::encode(&fields(Style::Tap, 1), &application_v1())
            .unwrap()
            .0,
    );
    let mut tas_app = app(table_v2());
    tas_app.persistence_mut().style = Style::Tas;
    write("kv-v2.tap", typed_bytes(&app(table_v2()), Style::Tap));
    write("kv-v2.tas", typed_bytes(&tas_app, Style::Tas));
}

/// The kv server's factory, thawed again as the concrete type from the typed application.
fn served(app: &Application) -> Kv {
    let mut factory =
        serde_json::to_value(app).unwrap()["services"]["children"][0]["factory"].clone();
    factory.as_object_mut().unwrap().shift_remove("type");
    serde_json::from_value(factory).unwrap()
}

#[test]
fn a_version_1_table_loads_through_its_upgrade() {
    let snapshot = rtwisted_persist::load(&golden("kv-v1.tap")).unwrap();
    let kv = served(&snapshot.app);
    assert_eq!(kv.len(), 3);
    assert_eq!(kv.get("greeting").unwrap(), b"hello, persistence");
    assert_eq!(kv.get("raw").unwrap(), [0, 159, 146, 150, 255]);
    assert_eq!(kv.get("n").unwrap(), b"42");
    // Saved again, it is today's form.
    let (bytes, header) = rtwisted_persist::encode(&snapshot.app, Style::Tap).unwrap();
    assert_eq!(common::manifest_version(&header, "rtwisted.Kv"), 2);
    assert!(
        bytes
            .windows(7)
            .any(|w| w == [0xc4, 5, 0, 159, 146, 150, 255]),
        "the binary value is not one bin"
    );
}

#[test]
fn version_2_snapshots_load_and_encode_to_the_same_bytes() {
    for (name, style) in [("kv-v2.tap", Style::Tap), ("kv-v2.tas", Style::Tas)] {
        let bytes = std::fs::read(golden(name)).unwrap();
        let snapshot = rtwisted_persist::decode(&bytes).unwrap();
        let kv = served(&snapshot.app);
        assert_eq!(kv.len(), 4, "{name}");
        for (key, _, _, _, value) in items() {
            assert_eq!(kv.get(&key).unwrap(), value, "{name}");
        }
        assert_eq!(
            typed_bytes(&snapshot.app, style),
            bytes,
            "{name}: today's types write different bytes for the same data: a change of the kv form needs a new version, an upgrade step and a golden file"
        );
        // The generic view shows what the readable style holds.
        let raw = rtwisted_persist::decode_raw(&bytes).unwrap();
        let factory = &raw.application["services"]["children"][0]["factory"];
        assert_eq!(factory["table"], table_v2(), "{name}");
    }
}
