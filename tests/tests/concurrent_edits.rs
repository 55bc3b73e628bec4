//! Edits are serialized: two `rtap set` at the same instant on different services of one file
//! (or one application in the store) both land, every time. Each edit takes the lock before it
//! reads and keeps it until it has written, so the second re-reads what the first wrote.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rtwisted_tests::{Scratch, nodes, text};

const TRIALS: u16 = 100;

fn endpoints(doc: &serde_json::Value) -> Vec<(String, String)> {
    nodes(&doc["services"])[1..]
        .iter()
        .map(|node| {
            (
                node["path"].as_str().unwrap().to_owned(),
                node["fields"]["endpoint"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Starts both edits before waiting for either; asserts both succeeded.
fn race(scratch: &Scratch, first: &[&str], second: &[&str]) {
    let mut one = scratch.command("rtap");
    one.args(first);
    let mut two = scratch.command("rtap");
    two.args(second);
    let one = one
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let two = two
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    for (child, args) in [(one, first), (two, second)] {
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            text(&output.stderr)
        );
    }
}

#[test]
fn two_concurrent_sets_of_one_file_both_land_every_time() {
    let scratch = Scratch::new();
    scratch.rtap_ok(&["save", "echo", "--port", "tcp:1", "-o", "app.tap"]);
    scratch.rtap_ok(&["save", "kv", "--port", "tcp:2", "--append", "app.tap"]);
    for trial in 0..TRIALS {
        let (a, b) = (
            format!("endpoint=tcp:{}", 10_000 + trial),
            format!("endpoint=tcp:{}", 20_000 + trial),
        );
        race(
            &scratch,
            &["set", "app.tap", "echo", &a],
            &["set", "app.tap", "kv", &b],
        );
        assert_eq!(
            endpoints(&scratch.inspect_json("app.tap")),
            [
                ("echo".to_owned(), format!("tcp:{}", 10_000 + trial)),
                ("kv".to_owned(), format!("tcp:{}", 20_000 + trial)),
            ],
            "trial {trial} lost a change"
        );
    }
}

#[test]
fn two_concurrent_sets_in_the_store_both_land() {
    let scratch = Scratch::new();
    scratch.rtap_ok(&["save", "echo", "--port", "tcp:1", "--store", "db"]);
    // "echo" alone would read as the echo plugin: the address names the snapshot.
    scratch.rtap_ok(&[
        "add",
        "echo@latest",
        "--store",
        "db",
        "kv",
        "--port",
        "tcp:2",
    ]);
    for trial in 0..TRIALS / 5 {
        let (a, b) = (
            format!("endpoint=tcp:{}", 10_000 + trial),
            format!("endpoint=tcp:{}", 20_000 + trial),
        );
        race(
            &scratch,
            &["set", "echo", "--store", "db", "echo", &a],
            &["set", "echo", "--store", "db", "kv", &b],
        );
        assert_eq!(
            endpoints(&scratch.inspect_json_with(&["echo", "--store", "db"])),
            [
                ("echo".to_owned(), format!("tcp:{}", 10_000 + trial)),
                ("kv".to_owned(), format!("tcp:{}", 20_000 + trial)),
            ],
            "trial {trial} lost a change"
        );
    }
}
