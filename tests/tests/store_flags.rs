//! `--store` on rtap save, inspect and the edits, and on rtwistd: snapshots come from and go to
//! the store, whose history keeps every save.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpStream;

use nix::sys::signal::Signal;
use rtwisted_tests::{DEADLINE, Scratch, fails_with, text};

fn log_lines(scratch: &Scratch) -> Vec<String> {
    let output = scratch.rtap_ok(&["store", "log", "echo", "--store", "db"]);
    text(&output.stdout)
        .lines()
        .skip(1)
        .map(str::to_owned)
        .collect()
}

#[test]
fn save_inspect_and_edit_through_the_store() {
    let scratch = Scratch::new();
    let output = scratch.rtap_ok(&[
        "save", "echo", "--port", "tcp:7001", "--store", "db", "--tag", "first",
    ]);
    assert!(
        text(&output.stdout).contains("as echo@1 in the store 'db'"),
        "{}",
        text(&output.stdout)
    );
    scratch.rtap_ok(&["set", "echo", "--store", "db", "echo", "endpoint=tcp:7002"]);
    let doc = scratch.inspect_json_with(&["echo", "--store", "db"]);
    assert_eq!(
        doc["services"]["children"][0]["fields"]["endpoint"],
        "tcp:7002"
    );
    let first = scratch.inspect_json_with(&["echo@first", "--store", "db"]);
    assert_eq!(
        first["services"]["children"][0]["fields"]["endpoint"],
        "tcp:7001"
    );
    assert_eq!(log_lines(&scratch).len(), 2);
    let output = scratch.rtap(&["inspect", "echo@7", "--store", "db"]);
    fails_with(
        &output,
        1,
        "no snapshot 'echo@7' in the store (echo has 1..2)",
    );
}

#[test]
fn add_takes_an_application_named_like_a_plugin() {
    // `rtap save echo --store` names the application `echo`, like the plugin: `rtap add`
    // reads its first word as the application all the same.
    let scratch = Scratch::new();
    scratch.rtap_ok(&["save", "echo", "--port", "tcp:7001", "--store", "db"]);
    let output = scratch.rtap_ok(&["add", "--store", "db", "echo", "kv", "--port", "tcp:7003"]);
    assert!(
        text(&output.stdout).contains("+ kv  [rtwisted.StreamServer]"),
        "{}",
        text(&output.stdout)
    );
    let doc = scratch.inspect_json_with(&["echo", "--store", "db"]);
    assert_eq!(doc["services"]["children"][1]["name"], "kv");
    // A second service named like the first is refused by name, not as a stray argument.
    let output = scratch.rtap(&["add", "--store", "db", "echo", "echo", "--port", "tcp:7002"]);
    fails_with(
        &output,
        1,
        "cannot have two services with the same name 'echo'",
    );
    // --name gives it another name; a name no service may have is a usage error.
    let output = scratch.rtap_ok(&[
        "add", "--store", "db", "echo", "echo", "--port", "tcp:7002", "--name", "second",
    ]);
    assert!(
        text(&output.stdout).contains("+ second  [rtwisted.StreamServer]"),
        "{}",
        text(&output.stdout)
    );
    let output = scratch.rtap(&["add", "--store", "db", "echo", "--name", "a/b", "echo"]);
    fails_with(&output, 2, "a/b");
    // A line that is wrong either way reports the first reading's error.
    let output = scratch.rtap(&["add", "--store", "db", "echo"]);
    fails_with(&output, 2, "<FILE>");
    assert_eq!(log_lines(&scratch).len(), 3);
}

#[test]
fn rtwistd_runs_from_the_store_and_saves_its_shutdown_and_checkpoints_into_it() {
    let scratch = Scratch::new();
    scratch.save_on_loopback("kv", &["--store", "db"]);
    let mut daemon = scratch.spawn_rtwistd(&["-n", "--store", "db", "-f", "kv"]);
    daemon.wait_for_line("Loading kv in the store");
    let address = daemon.listening_address();
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    stream.write_all(b"set kept 0 0 4\r\nsafe\r\n").unwrap();
    let mut reply = [0u8; 8];
    stream.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"STORED\r\n");
    drop(stream);
    daemon.signal(Signal::SIGUSR2);
    daemon.wait_for_line("Checkpoint (SIGUSR2) saved as kv@2 in the store");
    daemon.kill();

    // Relaunched from the latest snapshot in the store: the checkpoint.
    let mut relaunched = scratch.spawn_rtwistd(&["-n", "--store", "db", "-f", "kv"]);
    let address = relaunched.listening_address();
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    stream.write_all(b"get kept\r\nquit\r\n").unwrap();
    let mut got = String::new();
    stream.read_to_string(&mut got).unwrap();
    assert_eq!(got, "VALUE kept 0 4\r\nsafe\r\nEND\r\n");
    let out = relaunched.stop();
    assert!(
        out.iter()
            .any(|l| l.contains("Saved the kv application as kv@3 in the store")),
        "{out:#?}"
    );
    let output = scratch.rtap_ok(&["store", "log", "kv", "--store", "db"]);
    assert_eq!(
        text(&output.stdout).lines().count(),
        4,
        "{}",
        text(&output.stdout)
    );
}

#[test]
fn kill_9_during_checkpoints_into_the_store_leaves_every_snapshot_whole() {
    let scratch = Scratch::new();
    scratch.save_on_loopback("kv", &["--store", "db"]);
    let big = "y".repeat(128 * 1024);
    for round in 0..5 {
        let mut daemon = scratch.spawn_rtwistd(&[
            "-n",
            "--store",
            "db",
            "-f",
            "kv",
            "--checkpoint-every",
            "10ms",
        ]);
        let address = daemon.listening_address();
        let mut stream = TcpStream::connect(address).unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        stream
            .write_all(format!("set k{round} 0 0 {}\r\n{big}\r\n", big.len()).as_bytes())
            .unwrap();
        let mut reply = [0u8; 8];
        stream.read_exact(&mut reply).unwrap();
        assert_eq!(&reply, b"STORED\r\n", "round {round}");
        drop(stream);
        daemon.wait_for_line("Checkpoint (timer) saved as");
        daemon.wait_for_line("Checkpoint (timer) saved as");
        // A chaos delay (not a readiness wait): kill at varied points of the saves.
        std::thread::sleep(std::time::Duration::from_millis((round * 5 % 17) as u64));
        daemon.kill();
        // The store opens, it holds the first save and at least the two checkpoints of each
        // round so far, and every snapshot in it is whole.
        let log = scratch.rtap_ok(&["store", "log", "kv", "--store", "db"]);
        let addresses: Vec<String> = text(&log.stdout)
            .lines()
            .skip(1)
            .map(|line| line.split_whitespace().next().unwrap().to_owned())
            .collect();
        assert!(
            addresses.len() > 2 * (round + 1),
            "round {round}: {addresses:?}"
        );
        for address in &addresses {
            let doc = scratch.inspect_json_with(&[address, "--store", "db"]);
            assert_eq!(doc["app"], "kv", "{address}");
        }
    }
}
