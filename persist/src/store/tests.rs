#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use rtwisted_core::{Application, MultiService, Style};

use super::*;
use crate::{Key, Passphrase};

fn snapshot(app_name: &str, children: &[&str], style: Style) -> Vec<u8> {
    let mut app = Application::new(app_name).unwrap();
    for child in children {
        app.services_mut()
            .insert_named(*child, Box::new(MultiService::new()))
            .unwrap();
    }
    crate::encode(&app, style).unwrap().0
}

fn echo(children: &[&str]) -> Vec<u8> {
    snapshot("echo", children, Style::Tap)
}

fn addr(text: &str) -> StoreAddress {
    text.parse().unwrap()
}

fn store_in(folder: &tempfile::TempDir) -> SledStore {
    SledStore::open_or_create(&folder.path().join("store")).unwrap()
}

/// A new store in `folder` holding `count` snapshots of the echo application, numbered from 1.
fn store_with_echoes(folder: &tempfile::TempDir, count: u64) -> SledStore {
    let store = store_in(folder);
    for _ in 0..count {
        store.put("echo", &echo(&[]), None).unwrap();
    }
    store
}

/// Tags the snapshot at `address` (refusing a tag another snapshot has).
fn tag(store: &SledStore, address: &str, tag: &str) {
    store.tag(&addr(address), tag, TagConflict::Refuse).unwrap();
}

fn numbers(store: &SledStore, app: &str) -> Vec<u64> {
    store.log(app).unwrap().iter().map(|e| e.number).collect()
}

#[test]
fn put_and_get_round_trip_the_exact_bytes() {
    let folder = tempfile::tempdir().unwrap();
    let store = store_in(&folder);
    for style in [Style::Tap, Style::Tas] {
        let bytes = snapshot("echo", &["web"], style);
        let entry = store.put("echo", &bytes, None).unwrap();
        let (got, read) = store
            .get(&StoreAddress::number("echo", entry.number))
            .unwrap();
        assert_eq!(read, bytes);
        assert_eq!(got, entry);
        assert_eq!(entry.size, bytes.len() as u64);
        assert_eq!(entry.style, Some(style));
        assert!(
            entry.producer.starts_with("rtwisted "),
            "{}",
            entry.producer
        );
        assert!(!entry.encrypted);
        assert!(entry.created.is_some());
        assert!(
            humantime::parse_rfc3339(&entry.saved).is_ok(),
            "{}",
            entry.saved
        );
        assert_eq!(entry.sha256, crate::header::checksum(&[&bytes]));
    }
}

#[test]
fn numbers_count_up_per_application_and_latest_is_the_newest() {
    let folder = tempfile::tempdir().unwrap();
    let store = store_in(&folder);
    let web = echo(&["web"]);
    let first = store.put("echo", &echo(&[]), None).unwrap();
    let second = store.put("echo", &web, None).unwrap();
    let other = store
        .put("kv", &snapshot("kv", &[], Style::Tap), None)
        .unwrap();
    assert_eq!((first.number, second.number, other.number), (1, 2, 1));
    assert_eq!(first.address(), "echo@1");
    assert_eq!(store.resolve(&addr("echo")).unwrap().number, 2);
    assert_eq!(store.resolve(&addr("echo@latest")).unwrap().number, 2);
    let (entry, bytes) = store.latest_bytes("echo").unwrap();
    assert_eq!((entry.number, bytes), (2, web));
    assert_eq!(numbers(&store, "echo"), [1, 2]);
}

#[test]
fn addresses_pick_by_number_and_tag_with_clear_errors() {
    let folder = tempfile::tempdir().unwrap();
    let store = store_with_echoes(&folder, 5);
    tag(&store, "echo@3", "stable");
    assert_eq!(store.resolve(&addr("echo@4")).unwrap().number, 4);
    assert_eq!(store.resolve(&addr("echo@stable")).unwrap().number, 3);
    assert_eq!(
        store.resolve(&addr("echo@7")).unwrap_err().to_string(),
        "no snapshot 'echo@7' in the store (echo has 1..5)"
    );
    assert_eq!(
        store.resolve(&addr("echo@beta")).unwrap_err().to_string(),
        "no snapshot 'echo@beta' in the store (echo's tags: stable)"
    );
    for text in ["x", "x@1", "x@stable"] {
        assert_eq!(
            store.resolve(&addr(text)).unwrap_err().to_string(),
            "no application 'x' in the store"
        );
    }
    assert!(matches!(store.log("x"), Err(StoreError::NoApp { .. })));
}

#[test]
fn address_parsing_and_display() {
    assert_eq!(addr("echo@12"), StoreAddress::number("echo", 12));
    assert_eq!(addr("echo@v1.2"), StoreAddress::tagged("echo", "v1.2"));
    assert_eq!(addr("mail@home@latest"), StoreAddress::latest("mail@home"));
    assert_eq!(addr("mail@home@2"), StoreAddress::number("mail@home", 2));
    for text in ["echo", "echo@3", "echo@stable", "mail@home@latest"] {
        assert_eq!(addr(text).to_string(), text);
    }
    for (text, reason) in [
        ("echo@", "nothing after '@'"),
        ("@3", "no application name"),
        ("", "no application name"),
        ("echo@0", "snapshot numbers start at 1"),
        ("echo@99999999999999999999", "too large"),
        ("echo@a b", "tags are letters, digits"),
        ("a/b@1", "not a valid application name"),
        (".hidden", "not a valid application name"),
    ] {
        let error = text.parse::<StoreAddress>().unwrap_err().to_string();
        assert!(
            error.starts_with(&format!("invalid store address '{text}': ")),
            "{error}"
        );
        assert!(error.contains(reason), "{text}: {error}");
    }
    assert!(check_tag("latest").is_err());
    assert!(check_tag("123").is_err());
    assert!(check_tag(&"a".repeat(MAX_TAG_LEN + 1)).is_err());
    assert!(check_tag("release-1.0_rc").is_ok());
}

#[test]
fn tags_are_unique_per_application() {
    let folder = tempfile::tempdir().unwrap();
    let store = store_with_echoes(&folder, 3);
    store
        .put("kv", &snapshot("kv", &[], Style::Tap), None)
        .unwrap();
    tag(&store, "echo@1", "stable");
    // Another application may use the same tag.
    tag(&store, "kv@1", "stable");
    // Tagging again with the same tag is a no-op.
    let same = store
        .tag(&addr("echo@1"), "stable", TagConflict::Refuse)
        .unwrap();
    assert_eq!((same.moved_from, same.replaced), (None, None));

    let error = store
        .tag(&addr("echo@2"), "stable", TagConflict::Refuse)
        .unwrap_err();
    assert!(
        matches!(error, StoreError::TagTaken { number: 1, .. }),
        "{error}"
    );
    assert!(error.to_string().contains("already on echo@1"), "{error}");
    assert_eq!(store.resolve(&addr("echo@stable")).unwrap().number, 1);

    let moved = store
        .tag(&addr("echo@2"), "stable", TagConflict::Move)
        .unwrap();
    assert_eq!(moved.moved_from, Some(1));
    assert_eq!(store.resolve(&addr("echo@stable")).unwrap().number, 2);
    assert_eq!(store.resolve(&addr("echo@1")).unwrap().tag, None);

    // A snapshot has one tag: a new one replaces the old, which is free again.
    let retagged = store
        .tag(&addr("echo@2"), "prod", TagConflict::Refuse)
        .unwrap();
    assert_eq!(retagged.replaced.as_deref(), Some("stable"));
    assert!(store.resolve(&addr("echo@stable")).is_err());
    tag(&store, "echo@3", "stable");

    let (entry, removed) = store.untag(&addr("echo@prod")).unwrap();
    assert_eq!(
        (entry.number, entry.tag, removed.as_str()),
        (2, None, "prod")
    );
    assert!(matches!(
        store.untag(&addr("echo@2")),
        Err(StoreError::NotTagged { .. })
    ));
    assert!(matches!(
        store.tag(&addr("echo@1"), "9", TagConflict::Refuse),
        Err(StoreError::InvalidTag { .. })
    ));

    // put with a tag that is taken stores nothing.
    let error = store.put("echo", &echo(&[]), Some("stable")).unwrap_err();
    assert!(
        matches!(error, StoreError::TagTaken { number: 3, .. }),
        "{error}"
    );
    assert_eq!(numbers(&store, "echo"), [1, 2, 3]);
    let tagged = store.put("echo", &echo(&[]), Some("next")).unwrap();
    assert_eq!((tagged.number, tagged.tag.as_deref()), (4, Some("next")));
    assert_eq!(store.resolve(&addr("echo@next")).unwrap().number, 4);
}

#[test]
fn gc_keeps_the_newest_and_the_tagged_and_numbers_are_never_reused() {
    let folder = tempfile::tempdir().unwrap();
    let store = store_with_echoes(&folder, 5);
    tag(&store, "echo@2", "keep-me");
    assert!(matches!(store.gc("echo", 0), Err(StoreError::KeepNothing)));
    let removed: Vec<u64> = store
        .gc("echo", 2)
        .unwrap()
        .iter()
        .map(|e| e.number)
        .collect();
    assert_eq!(removed, [1, 3]);
    assert_eq!(numbers(&store, "echo"), [2, 4, 5]);
    assert!(store.get(&addr("echo@1")).is_err());
    assert!(store.gc("echo", 2).unwrap().is_empty());
    assert_eq!(
        store.resolve(&addr("echo@3")).unwrap_err().to_string(),
        "no snapshot 'echo@3' in the store (echo has 2, 4..5)"
    );

    store.untag(&addr("echo@keep-me")).unwrap();
    assert_eq!(store.gc("echo", 1).unwrap().len(), 2);
    assert_eq!(numbers(&store, "echo"), [5]);
    assert_eq!(store.put("echo", &echo(&[]), None).unwrap().number, 6);
    assert!(matches!(store.gc("nope", 1), Err(StoreError::NoApp { .. })));
}

#[test]
fn list_counts_and_sizes_every_application() {
    let folder = tempfile::tempdir().unwrap();
    let store = store_in(&folder);
    assert!(store.list().unwrap().is_empty());
    let a = echo(&[]);
    let b = echo(&["web", "db"]);
    let kv = snapshot("kv", &[], Style::Tas);
    store.put("echo", &a, None).unwrap();
    store.put("echo", &b, None).unwrap();
    store.put("kv", &kv, None).unwrap();
    // A name that sorts right after "echo" must not be counted with it.
    store
        .put("echo2", &snapshot("echo2", &[], Style::Tap), None)
        .unwrap();
    let list = store.list().unwrap();
    let names: Vec<&str> = list.iter().map(|s| s.app.as_str()).collect();
    assert_eq!(names, ["echo", "echo2", "kv"]);
    assert_eq!(list[0].count, 2);
    assert_eq!(list[0].total_bytes, (a.len() + b.len()) as u64);
    assert_eq!(list[0].latest.number, 2);
    assert_eq!(list[2].count, 1);
    assert_eq!(list[2].total_bytes, kv.len() as u64);
    assert_eq!(numbers(&store, "echo"), [1, 2]);
}

#[test]
fn a_reopened_store_sees_everything() {
    let folder = tempfile::tempdir().unwrap();
    let dir = folder.path().join("store");
    let bytes = echo(&["web"]);
    {
        let store = SledStore::open_or_create(&dir).unwrap();
        store.put("echo", &bytes, None).unwrap();
        store.put("echo", &bytes, Some("stable")).unwrap();
        store.put("echo", &bytes, None).unwrap();
        store.gc("echo", 1).unwrap();
    }
    let store = SledStore::open(&dir).unwrap();
    assert_eq!(numbers(&store, "echo"), [2, 3]);
    assert_eq!(store.get(&addr("echo@stable")).unwrap().1, bytes);
    assert_eq!(store.put("echo", &bytes, None).unwrap().number, 4);
    drop(store);
    let (entry, read) = load_from(&dir, &addr("echo")).unwrap();
    assert_eq!((entry.number, read), (4, bytes.clone()));
    assert_eq!(save_to(&dir, "echo", &bytes, None).unwrap().number, 5);
}

#[test]
fn an_open_waits_for_a_store_another_holder_releases() {
    let folder = tempfile::tempdir().unwrap();
    let dir = folder.path().join("store");
    let held = SledStore::open_or_create(&dir).unwrap();
    held.put("echo", &echo(&[]), None).unwrap();
    let (opened, open) = std::sync::mpsc::channel();
    let other_dir = dir.clone();
    let started = Instant::now();
    let waiter = std::thread::spawn(move || {
        let store = SledStore::open(&other_dir);
        opened.send(()).unwrap();
        store.map(|store| numbers(&store, "echo"))
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(open.try_recv().is_err(), "opened while the store was held");
    drop(held);
    assert_eq!(waiter.join().unwrap().unwrap(), [1]);
    assert!(started.elapsed() < DEFAULT_BUSY_TIMEOUT + Duration::from_secs(1));
}

#[test]
fn an_open_gives_up_on_a_store_held_too_long() {
    let folder = tempfile::tempdir().unwrap();
    let dir = folder.path().join("store");
    let _held = SledStore::open_or_create(&dir).unwrap();
    let started = Instant::now();
    let error = SledStore::open_with(
        &dir,
        &OpenOptions {
            create: false,
            busy_timeout: Duration::from_millis(200),
            ..OpenOptions::default()
        },
    )
    .unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(
        error.to_string(),
        format!(
            "the store {} is busy (another rtap or rtwistd is writing to it); try again, or wait longer with --wait SECONDS",
            dir.display()
        )
    );
}

#[test]
fn encrypted_bytes_are_stored_verbatim() {
    let folder = tempfile::tempdir().unwrap();
    let store = store_in(&folder);
    let app = Application::new("echo").unwrap();
    let key = Key {
        passphrase: Passphrase::new("secret"),
        work_factor: Some(1),
    };
    let (bytes, _) = crate::encode_with(&app, Style::Tap, Some(&key)).unwrap();
    let entry = store.put("echo", &bytes, None).unwrap();
    assert!(entry.encrypted);
    assert_eq!(entry.producer, "encrypted");
    assert_eq!((entry.style, entry.created.as_deref()), (None, None));
    let (_, read) = store.get(&addr("echo")).unwrap();
    assert_eq!(read, bytes);
    let raw = crate::decode_raw_with(&read, Some(&key.passphrase)).unwrap();
    assert_eq!(raw.header.fields.app, "echo");
}

#[test]
fn put_refuses_what_is_not_a_snapshot_of_the_app() {
    let folder = tempfile::tempdir().unwrap();
    let store = store_in(&folder);
    assert!(matches!(
        store.put("echo", b"hello", None),
        Err(StoreError::NotASnapshot(_))
    ));
    let error = store.put("other", &echo(&[]), None).unwrap_err();
    assert_eq!(
        error.to_string(),
        "the snapshot is of application 'echo', not 'other'"
    );
    assert!(matches!(
        store.put("a/b", &echo(&[]), None),
        Err(StoreError::InvalidApp { .. })
    ));
    assert!(matches!(
        store.put("echo", &echo(&[]), Some("latest")),
        Err(StoreError::InvalidTag { .. })
    ));
    assert!(store.list().unwrap().is_empty());
}

#[test]
fn damaged_bytes_are_detected_on_read() {
    let folder = tempfile::tempdir().unwrap();
    let store = store_in(&folder);
    store.put("echo", &echo(&[]), None).unwrap();
    let entry = store.resolve(&addr("echo@1")).unwrap();
    let file = files::path_for(store.dir(), &entry);
    std::fs::write(&file, b"tampered").unwrap();
    let error = store.get(&addr("echo@1")).unwrap_err().to_string();
    assert!(error.contains("is damaged"), "{error}");
    assert!(
        error.contains("the file of echo@1")
            && error.contains("does not match its recorded SHA-256"),
        "{error}"
    );
    let verified = store.verify().unwrap();
    assert_eq!(verified.problems.len(), 2, "{:?}", verified.problems);
}

fn expect_error(result: Result<SledStore, StoreError>) -> StoreError {
    match result {
        Ok(store) => panic!("opened {store:?}"),
        Err(error) => error,
    }
}

#[test]
fn only_store_folders_are_opened() {
    let folder = tempfile::tempdir().unwrap();
    let missing = folder.path().join("missing");
    let error = expect_error(SledStore::open(&missing));
    assert_eq!(
        error.to_string(),
        format!("no store at '{}'", missing.display())
    );
    assert!(!missing.exists());

    let empty = folder.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert!(matches!(
        expect_error(SledStore::open(&empty)),
        StoreError::NoStore { .. }
    ));

    let busy_folder = folder.path().join("documents");
    std::fs::create_dir(&busy_folder).unwrap();
    std::fs::write(busy_folder.join("notes.txt"), "mine").unwrap();
    for open in [SledStore::open, SledStore::open_or_create] {
        let error = expect_error(open(&busy_folder)).to_string();
        assert!(
            error.contains("is not an rtwisted snapshot store"),
            "{error}"
        );
    }
    assert_eq!(std::fs::read_dir(&busy_folder).unwrap().count(), 1);

    let file = folder.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let error = expect_error(SledStore::open_or_create(&file)).to_string();
    assert!(error.contains("it is not a folder"), "{error}");

    // A sled database of someone else's.
    let foreign = folder.path().join("foreign");
    {
        let db = sled::open(&foreign).unwrap();
        db.insert(b"key", b"value".to_vec()).unwrap();
        db.flush().unwrap();
    }
    let error = expect_error(SledStore::open_or_create(&foreign)).to_string();
    assert!(error.contains("holds other data"), "{error}");
    assert!(foreign.join("db").is_file() && !foreign.join("journal").exists());

    let created = folder.path().join("new/store");
    drop(SledStore::open_or_create(&created).unwrap());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&created).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    assert!(
        SledStore::open(&created)
            .unwrap()
            .list()
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        SledStore::open(&created).unwrap().dir(),
        Path::new(&created)
    );
}

fn copy_golden_store(to: &Path) {
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/golden/store-v1");
    std::fs::create_dir_all(to).unwrap();
    for name in ["db", "conf"] {
        std::fs::copy(golden.join(name), to.join(name)).unwrap();
    }
}

#[test]
fn a_format_1_store_is_migrated_to_files_on_first_open() {
    let folder = tempfile::tempdir().unwrap();
    let dir = folder.path().join("old");
    copy_golden_store(&dir);
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/golden");
    let tap = std::fs::read(golden.join("echo-format1.tap")).unwrap();
    let tas = std::fs::read(golden.join("echo-format1.tas")).unwrap();
    let reader = ReadStore::open(&dir).unwrap();
    assert_eq!(numbers_of(&reader, "echo"), [1, 3, 4]);
    assert_eq!(reader.get(&addr("echo@stable")).unwrap().1, tap);
    assert_eq!(reader.get(&addr("echo@3")).unwrap().1, tap);
    assert_eq!(reader.get(&addr("echo@4")).unwrap().1, tas);
    assert!(!dir.join("db").exists(), "the old database is gone");
    assert!(dir.join("journal").is_file() && dir.join("index").is_dir());
    assert!(reader.verify().unwrap().problems.is_empty());
    let store = SledStore::open(&dir).unwrap();
    assert_eq!(store.put("echo", &tap, None).unwrap().number, 5);
    assert!(store.verify().unwrap().problems.is_empty());
    // Two entries, one file each for two distinct byte strings.
    assert_eq!(files::list(&dir).unwrap().len(), 2);
}

fn numbers_of(store: &dyn Store, app: &str) -> Vec<u64> {
    store.log(app).unwrap().iter().map(|e| e.number).collect()
}

#[test]
fn a_deleted_or_damaged_index_is_rebuilt_from_the_journal_and_files() {
    let folder = tempfile::tempdir().unwrap();
    let dir = folder.path().join("store");
    // Kept to store again as echo@4: a header's time has whole seconds, so bytes made anew
    // in a later second would be another file.
    let first = echo(&[]);
    {
        let store = SledStore::open_or_create(&dir).unwrap();
        store.put("echo", &first, Some("stable")).unwrap();
        store.put("echo", &echo(&["web"]), None).unwrap();
        store.put("echo", &echo(&["web", "dns"]), None).unwrap();
    }
    std::fs::remove_dir_all(dir.join("index")).unwrap();
    assert_eq!(
        numbers_of(&ReadStore::open(&dir).unwrap(), "echo"),
        [1, 2, 3]
    );
    let rebuilt = rebuild(&dir, &OpenOptions::default()).unwrap();
    assert_eq!((rebuilt.snapshots, rebuilt.adopted.len()), (3, 0));
    let store = SledStore::open(&dir).unwrap();
    assert_eq!(numbers(&store, "echo"), [1, 2, 3]);
    assert_eq!(store.resolve(&addr("echo@stable")).unwrap().number, 1);
    assert!(store.verify().unwrap().problems.is_empty());
    drop(store);

    // Garbage over sled's files: the next writer recreates the index from the journal.
    for entry in std::fs::read_dir(dir.join("index")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::write(&path, vec![0xA5; 4096]).unwrap();
        }
    }
    let store = SledStore::open(&dir).unwrap();
    assert_eq!(numbers(&store, "echo"), [1, 2, 3]);
    assert_eq!(store.put("echo", &first, None).unwrap().number, 4);
    drop(store);

    // The journal lost too: every file is adopted again, oldest first.
    std::fs::remove_file(dir.join("journal")).unwrap();
    std::fs::remove_dir_all(dir.join("index")).unwrap();
    let rebuilt = rebuild(&dir, &OpenOptions::default()).unwrap();
    assert_eq!(rebuilt.snapshots, 3, "{rebuilt:?}"); // echo@4 has echo@1's bytes
    let reader = ReadStore::open(&dir).unwrap();
    assert_eq!(numbers_of(&reader, "echo"), [1, 2, 3]);
    assert!(reader.verify().unwrap().problems.is_empty());
}

#[test]
fn gc_removes_the_files_no_snapshot_needs() {
    let folder = tempfile::tempdir().unwrap();
    let store = store_in(&folder);
    for children in [&["a"][..], &["b"], &["c"], &["d"]] {
        store.put("echo", &echo(children), None).unwrap();
    }
    assert_eq!(files::list(store.dir()).unwrap().len(), 4);
    let journal_before = std::fs::metadata(store.dir().join("journal"))
        .unwrap()
        .len();
    store.gc("echo", 1).unwrap();
    assert_eq!(files::list(store.dir()).unwrap().len(), 1);
    assert!(
        std::fs::metadata(store.dir().join("journal"))
            .unwrap()
            .len()
            < journal_before
    );
    assert_eq!(store.put("echo", &echo(&[]), None).unwrap().number, 5);
    drop(store);
    let reader = ReadStore::open(&folder.path().join("store")).unwrap();
    assert_eq!(numbers_of(&reader, "echo"), [4, 5]);
}

#[test]
fn a_torn_journal_line_is_never_a_record() {
    let folder = tempfile::tempdir().unwrap();
    let dir = folder.path().join("store");
    save_to(&dir, "echo", &echo(&[]), None).unwrap();
    let journal = dir.join("journal");
    let mut bytes = std::fs::read(&journal).unwrap();
    bytes.extend_from_slice(b"{\"save\":{\"app\":\"echo\",\"num");
    std::fs::write(&journal, &bytes).unwrap();
    assert_eq!(numbers_of(&ReadStore::open(&dir).unwrap(), "echo"), [1]);
    assert_eq!(
        save_to(&dir, "echo", &echo(&["x"]), None).unwrap().number,
        2
    );
    let reader = ReadStore::open(&dir).unwrap();
    assert_eq!(numbers_of(&reader, "echo"), [1, 2]);
    assert!(reader.verify().unwrap().problems.is_empty());
}
