//! One set of limits for saves and loads: a save past them is refused before the old file is
//! touched, with the limit and the way to raise it named; a daemon whose save fails keeps its
//! previous snapshot and never exits 0 after losing state. The limits here are lowered so the
//! tests stay small; the defaults (512 MiB, 50,000,000 values) behave the same.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use nix::sys::signal::Signal;
use rtwisted_tests::{DEADLINE, Scratch, fails_with, file_names, text};

const RAISE: &str =
    "raise the limit with --max-snapshot-bytes BYTES or RTWISTED_MAX_SNAPSHOT_BYTES=BYTES";

fn store(address: SocketAddr, key: &str, size: usize) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let value = "v".repeat(size);
    stream
        .write_all(format!("set {key} 0 0 {size}\r\n{value}\r\n").as_bytes())
        .unwrap();
    let mut reply = [0u8; 8];
    stream.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"STORED\r\n");
}

#[test]
fn a_shutdown_save_past_the_limit_keeps_the_previous_snapshot_and_exits_1() {
    let scratch = Scratch::new();
    scratch.save_on_loopback("kv", &[]);
    // A first run leaves a shutdown snapshot that holds a little.
    let mut daemon = scratch.spawn_rtwistd(&["-n", "-f", "kv.tap"]);
    store(daemon.listening_address(), "small", 10);
    daemon.stop();
    let before = std::fs::read(scratch.join("kv-shutdown.tap")).unwrap();

    // A second, resumed run holds 2 MB, past a 1 MB limit.
    let mut daemon = scratch.spawn_rtwistd(&[
        "-n",
        "--resume",
        "-f",
        "kv.tap",
        "--max-snapshot-bytes",
        "1MB",
    ]);
    let address = daemon.listening_address();
    store(address, "big", 1_000_000);
    store(address, "bigger", 1_000_000);
    daemon.signal(Signal::SIGTERM);
    let (status, out, err) = daemon.wait_exit();
    assert_eq!(status.code(), Some(1), "{out:#?}");
    let reason = "the shutdown save failed, the previous snapshot is kept whole: cannot save snapshot 'kv-shutdown.tap': the snapshot is";
    assert!(
        err.iter().any(|l| l.contains(reason)
            && l.contains("more than the 1000000 bytes")
            && l.contains(RAISE)),
        "{err:#?}"
    );
    assert_eq!(err.len(), 1, "one line: {err:#?}");
    assert_eq!(
        std::fs::read(scratch.join("kv-shutdown.tap")).unwrap(),
        before
    );
    let names = file_names(scratch.path());
    assert!(
        !names.iter().any(|name| name.ends_with(".tmp")),
        "a temporary file is left: {names:?}"
    );

    // The same run with the limit raised by the environment saves, and the snapshot loads.
    let mut daemon = scratch.spawn(
        scratch
            .command("rtwistd")
            .args(["-n", "--resume", "-f", "kv.tap"])
            .env("RTWISTED_MAX_SNAPSHOT_BYTES", "10MB"),
    );
    let address = daemon.listening_address();
    store(address, "big", 1_000_000);
    store(address, "bigger", 1_000_000);
    daemon.stop();
    let doc = scratch.inspect_json("kv-shutdown.tap");
    assert_eq!(doc["app"], "kv");
}

#[test]
fn a_load_past_the_limit_names_it_and_how_to_raise_it() {
    let scratch = Scratch::new();
    scratch.save_on_loopback("kv", &[]);
    let output = scratch.rtap(&["inspect", "kv.tap", "--max-snapshot-bytes", "100"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("cannot load snapshot 'kv.tap': the snapshot is")
            && stderr.contains("more than the 100 bytes a snapshot may have")
            && stderr.contains(RAISE),
        "{stderr}"
    );
    let output = scratch.rtwistd(&["-n", "-f", "kv.tap", "--max-snapshot-values", "3"]);
    fails_with(
        &output,
        1,
        "holds more than the 3 values a snapshot may have (raise the limit with --max-snapshot-values N or RTWISTED_MAX_SNAPSHOT_VALUES=N)",
    );
    let output = scratch.rtap(&["inspect", "kv.tap", "--max-snapshot-bytes", "lots"]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn rtap_refuses_to_write_what_would_not_load_and_leaves_the_file() {
    let scratch = Scratch::new();
    scratch.save_on_loopback("kv", &[]);
    let before = std::fs::read(scratch.join("kv.tap")).unwrap();
    let output = scratch.rtap(&[
        "set",
        "kv.tap",
        "kv",
        "endpoint=tcp:0:interface=127.0.0.1",
        "--max-snapshot-values",
        "10",
    ]);
    fails_with(&output, 1, "more than the 10 values a snapshot may have");
    assert_eq!(std::fs::read(scratch.join("kv.tap")).unwrap(), before);
}

#[test]
fn a_failed_checkpoint_is_one_line_the_daemon_goes_on_and_its_exit_says_state_was_lost() {
    let scratch = Scratch::new();
    scratch.save_on_loopback("kv", &[]);
    let mut daemon = scratch.spawn_rtwistd(&[
        "-n",
        "-o",
        "-f",
        "kv.tap",
        "--checkpoint-every",
        "50ms",
        "--max-snapshot-bytes",
        "1MB",
    ]);
    let address = daemon.listening_address();
    daemon.wait_for_line("Checkpoint (timer) saved");
    store(address, "big", 600_000);
    store(address, "bigger", 600_000);
    let line = daemon.wait_for_line("Checkpoint (timer) failed");
    assert!(
        line.contains("the previous snapshot is kept whole") && line.contains(RAISE),
        "{line}"
    );
    // Still serving.
    store(address, "later", 1);
    daemon.signal(Signal::SIGTERM);
    daemon.wait_failure(1, "the last checkpoint failed");
    // The last good checkpoint is whole.
    assert_eq!(scratch.inspect_json("kv-checkpoint.tap")["app"], "kv");
}
