//! Live checkpoints: a running daemon saves its tree, live state included, on a timer and on
//! SIGUSR2, so a `kill -9` loses at most one interval.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;

use nix::sys::signal::Signal;
use rtwisted_tests::{Scratch, memcache_get, memcache_store, nodes};

#[test]
fn sigusr2_checkpoints_the_live_state_and_kill_9_loses_nothing_before_it() {
    let scratch = Scratch::new();
    let (mut daemon, address) = scratch.serve_saved("kv", &[]);
    memcache_store(address, "before", "saved");
    daemon.signal(Signal::SIGUSR2);
    daemon.wait_for_line("Checkpoint (SIGUSR2) saved to kv-checkpoint.tap");
    let status = daemon.kill();
    assert_eq!(status.code(), None, "killed by a signal");
    assert!(!scratch.join("kv-shutdown.tap").exists());

    let doc = scratch.inspect_json("kv-checkpoint.tap");
    assert!(
        nodes(&doc["services"])
            .iter()
            .all(|n| n["running"] == false)
    );
    scratch.assert_relaunch_serves("kv-checkpoint.tap", "before", "saved");
}

#[test]
fn a_timer_checkpoints_so_a_crash_loses_at_most_one_interval() {
    let scratch = Scratch::new();
    // Within an interval a timer checkpoint holds the key (no signal asked for it).
    let daemon = scratch.spawn_saved("kv", &["--checkpoint-every", "100ms"]);
    scratch.assert_checkpoint_outlives_a_crash(daemon, "key", "value");
}

#[test]
fn a_bad_checkpoint_interval_is_a_usage_error() {
    let scratch = Scratch::new();
    let output = scratch
        .command("rtwistd")
        .args(["-n", "--checkpoint-every", "soon", "echo"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("'soon' is not a duration like 30s, 5m or 1h")
    );
}

#[test]
fn kill_9_in_the_middle_of_saves_always_leaves_a_whole_snapshot() {
    let scratch = Scratch::new();
    scratch.save_on_loopback("kv", &[]);
    // A large value makes every checkpoint write megabytes, so kills land mid-save.
    let big = "x".repeat(256 * 1024);
    let mut generation = 0;
    let mut file = "kv.tap".to_owned();
    for round in 0..8 {
        let mut daemon =
            scratch.spawn_rtwistd(&["-n", "-o", "-f", &file, "--checkpoint-every", "10ms"]);
        let address = daemon.listening_address();
        generation += 1;
        let request = format!(
            "set big{round} 0 0 {}\r\n{big}\r\nset generation 0 0 {}\r\n{generation}\r\n",
            big.len(),
            generation.to_string().len()
        );
        let mut stream = TcpStream::connect(address).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut reader = BufReader::new(stream);
        for _ in 0..2 {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            assert_eq!(line, "STORED\r\n");
        }
        // Wait until a checkpoint holds this round's key, so the key must survive the kill.
        scratch.wait_until_inspection_contains("kv-checkpoint.tap", &format!("big{round}"));
        // A chaos delay (not a readiness wait): land the kill at varied points of the saves.
        std::thread::sleep(std::time::Duration::from_millis((round * 7 % 23) as u64));
        daemon.kill();
        // Whatever moment the kill hit, the checkpoint is a whole snapshot, old or new.
        let output = scratch.rtap(&["inspect", "--json", "kv-checkpoint.tap"]);
        assert!(
            output.status.success(),
            "round {round}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        file = "kv-checkpoint.tap".to_owned();
    }
    // The last checkpoint has every round's key: state carried through 8 crashes.
    let mut daemon = scratch.spawn_rtwistd(&["-n", "-o", "-f", "kv-checkpoint.tap"]);
    let address = daemon.listening_address();
    for round in 0..8 {
        assert!(
            memcache_get(address, &format!("big{round}")).is_some(),
            "big{round} lost"
        );
    }
    daemon.stop();
}
