//! Many writers into one store: `rtap set --store` edits while rtwistd checkpoints into the
//! same store every 50 ms. Writers queue for the store (none fails busy), every save that
//! reported success is in the history with its true parent, and none is silently superseded:
//! a daemon checkpoint made from an older snapshot is marked diverged.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use rtwisted_tests::{Scratch, text};
use serde_json::Value;

const STORE: &str = "st";

#[test]
fn edits_and_checkpoints_into_one_store_all_land_with_their_true_parents() {
    let scratch = Scratch::new();
    scratch.save_on_loopback("kv", &["--store", STORE]);
    let mut daemon = scratch.spawn_rtwistd(&[
        "-n",
        "--store",
        STORE,
        "-f",
        "kv",
        "--checkpoint-every",
        "50ms",
    ]);
    daemon.listening_address();
    daemon.wait_for_line("waiting for SIGTERM or SIGINT");
    let mut edits = Vec::new();
    for round in 0..30 {
        let value = format!("factory.max_value_bytes={}", 1000 + round);
        let output = scratch.rtap(&["set", "kv", "--store", STORE, "--force", "kv", &value]);
        let stderr = text(&output.stderr);
        assert!(output.status.success(), "edit {round} failed: {stderr}");
        // `wrote kv@N in the store ...`
        let stdout = text(&output.stdout);
        let address = stdout.split_whitespace().nth(1).unwrap().to_owned();
        edits.push(address);
    }
    daemon.stop();

    let log = scratch.rtap_ok(&["store", "log", "kv", "--store", STORE, "--json"]);
    let log: Value = serde_json::from_slice(&log.stdout).unwrap();
    let entries: BTreeMap<String, &Value> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| (entry["address"].as_str().unwrap().to_owned(), entry))
        .collect();
    let mut diverged = 0;
    for address in &edits {
        let entry = entries
            .get(address)
            .unwrap_or_else(|| panic!("{address} reported saved but missing"));
        let number = entry["number"].as_u64().unwrap();
        // An edit holds the store from its read to its write: its parent is the snapshot
        // just before it, and it never diverges.
        assert_eq!(entry["parent"].as_u64(), Some(number - 1), "{entry}");
        assert!(entry.get("diverged_from").is_none(), "{entry}");
    }
    for entry in entries.values() {
        let number = entry["number"].as_u64().unwrap();
        if edits.contains(&entry["address"].as_str().unwrap().to_owned()) || number == 1 {
            continue;
        }
        // The daemon's saves: from its own last snapshot; marked diverged when an edit came
        // between, never silently on top of it.
        let parent = entry["parent"].as_u64().unwrap();
        if parent != number - 1 {
            assert_eq!(entry["diverged_from"].as_u64(), Some(number - 1), "{entry}");
            diverged += 1;
        }
    }
    assert!(
        diverged > 0,
        "no checkpoint ever followed an edit: {}",
        serde_json::to_string_pretty(&log).unwrap()
    );
    let verified = scratch.rtap_ok(&["store", "verify", "--store", STORE]);
    assert!(text(&verified.stdout).contains("is sound"));
}
