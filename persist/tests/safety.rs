//! What keeps saved data safe at the library level: limits checked before a save touches the
//! old file, header peeks that agree with full loads, lineage, and the store's refusal (for
//! edits) or diverged mark (for daemon saves) when a newer snapshot landed meanwhile.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rtwisted_core::{Application, IntoChild, MultiService, Style};
use rtwisted_persist::lineage::Parent;
use rtwisted_persist::store::{OnNewer, SledStore, SnapshotStore, StoreError};
use rtwisted_persist::{
    FormatError, Key, Limits, LoadOptions, Passphrase, SaveOptions, SnapshotError,
};

fn app(children: usize) -> Application {
    let mut app = Application::new("demo").unwrap();
    for index in 0..children {
        app.services_mut()
            .insert(MultiService::new().named(format!("c{index}")).unwrap())
            .unwrap();
    }
    app
}

#[test]
fn a_save_past_the_limits_is_refused_and_the_old_file_stays() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("demo.tap");
    rtwisted_persist::save(&app(1), &path, Style::Tap).unwrap();
    let before = std::fs::read(&path).unwrap();
    for limits in [
        Limits::default().with_max_bytes(before.len() as u64),
        Limits::default().with_max_values(20),
    ] {
        let options = SaveOptions {
            limits,
            ..SaveOptions::default()
        };
        let error = rtwisted_persist::save_as(&app(50), &path, Style::Tap, &options).unwrap_err();
        assert!(
            matches!(
                &error,
                SnapshotError::Encode {
                    cause: FormatError::TooLarge { .. } | FormatError::TooManyValues { .. },
                    ..
                }
            ),
            "{error}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }
    // What a save lets through, a load with the same limits reads.
    let limits = Limits::default().with_max_values(2000);
    let options = SaveOptions {
        limits,
        ..SaveOptions::default()
    };
    rtwisted_persist::save_as(&app(50), &path, Style::Tap, &options).unwrap();
    let load = LoadOptions {
        limits,
        ..LoadOptions::default()
    };
    assert_eq!(
        rtwisted_persist::load_as(&path, &load)
            .unwrap()
            .app
            .services()
            .len(),
        50
    );
}

#[test]
fn a_peek_reads_the_header_and_checksum_a_full_load_verifies() {
    let folder = tempfile::tempdir().unwrap();
    let key = Key {
        passphrase: Passphrase::new("secret"),
        work_factor: Some(4),
    };
    for (name, style, key) in [
        ("demo.tap", Style::Tap, None),
        ("demo.tas", Style::Tas, None),
        ("demo.etap", Style::Tap, Some(key.clone())),
        ("demo.etas", Style::Tas, Some(key.clone())),
    ] {
        let path = folder.path().join(name);
        let parent = Parent::from_checksum("sha256:aa".into(), Some(3), &["sha256:bb".into()]);
        let options = SaveOptions {
            key: key.clone(),
            parent: Some(parent.clone()),
            ..SaveOptions::default()
        };
        let header = rtwisted_persist::save_as(&app(2), &path, style, &options).unwrap();
        let passphrase = key.as_ref().map(|key| &key.passphrase);
        let peeked = rtwisted_persist::peek::peek(&path, passphrase).unwrap();
        assert_eq!(peeked.checksum, header.checksum, "{name}");
        assert_eq!(peeked.fields, header.fields, "{name}");
        assert_eq!(peeked.fields.parent.as_ref(), Some(&parent));
        assert_eq!(peeked.encrypted, key.is_some());
        assert!(peeked.descends_from("sha256:bb"));
        assert!(!peeked.descends_from("sha256:cc"));
        let loaded = rtwisted_persist::load_with(&path, passphrase).unwrap();
        assert_eq!(loaded.header.checksum, peeked.checksum);
    }
}

#[test]
fn a_snapshot_without_a_parent_has_no_parent_field() {
    let (bytes, header) = rtwisted_persist::encode(&app(1), Style::Tas).unwrap();
    assert!(header.fields.parent.is_none());
    assert!(!String::from_utf8(bytes).unwrap().contains("\"parent\""));
}

#[test]
fn the_store_refuses_an_edit_and_marks_a_daemon_save_when_a_newer_snapshot_landed() {
    let folder = tempfile::tempdir().unwrap();
    let store = SledStore::open_or_create(&folder.path().join("store")).unwrap();
    let bytes = rtwisted_persist::encode(&app(1), Style::Tap).unwrap().0;
    store.put("demo", &bytes, None).unwrap(); // demo@1
    store.put("demo", &bytes, None).unwrap(); // demo@2, saved while something read demo@1
    let error = store
        .put_child("demo", &bytes, None, Some(1), Some(1), OnNewer::Refuse)
        .unwrap_err();
    assert!(
        matches!(
            error,
            StoreError::Changed {
                read: 1,
                latest: 2,
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(store.log("demo").unwrap().len(), 2, "nothing was written");
    let entry = store
        .put_child(
            "demo",
            &bytes,
            None,
            Some(1),
            Some(1),
            OnNewer::MarkDiverged,
        )
        .unwrap();
    assert_eq!(
        (entry.number, entry.parent, entry.diverged_from),
        (3, Some(1), Some(2))
    );
    let next = store
        .put_child(
            "demo",
            &bytes,
            None,
            Some(3),
            Some(3),
            OnNewer::MarkDiverged,
        )
        .unwrap();
    assert_eq!(next.diverged_from, None);
}

#[test]
fn a_store_hold_names_this_process_until_released() {
    let folder = tempfile::tempdir().unwrap();
    let store = SledStore::open_or_create(&folder.path().join("store")).unwrap();
    assert!(store.holder("demo").unwrap().is_none());
    store.hold("demo", Some(1)).unwrap();
    let hold = store.holder("demo").unwrap().unwrap();
    assert_eq!(hold.pid, std::process::id());
    // This process may edit what it holds; the check is for others.
    store.check_not_held("demo", false).unwrap();
    store.release("demo").unwrap();
    assert!(store.holder("demo").unwrap().is_none());
}
