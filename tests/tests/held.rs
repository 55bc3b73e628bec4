//! Held snapshots: while rtwistd runs from a snapshot, rtap refuses to edit it (the daemon would
//! save over the change, or resume past it) unless forced; in the store, a forced edit and the
//! daemon's later save both stay, the save marked diverged. Never a silent revert.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rtwisted_tests::{Scratch, file_names, text};

fn held_line(file: &str, pid: i32) -> String {
    format!(
        "rtap: error: cannot edit '{file}': held by rtwistd PID {pid}, stop it or apply the change to the running daemon, or --force to edit anyway\n"
    )
}

#[test]
fn every_edit_of_a_held_snapshot_is_refused_in_one_line_until_forced() {
    let scratch = Scratch::new();
    scratch.save_on_loopback("echo", &[]);
    let before = std::fs::read(scratch.join("echo.tap")).unwrap();
    let mut daemon = scratch.spawn_rtwistd(&["-n", "-f", "echo.tap"]);
    daemon.listening_address();
    for args in [
        vec!["set", "echo.tap", "echo", "endpoint=tcp:7009"],
        vec!["set", "echo.tap", "--uid", "1"],
        vec!["remove", "echo.tap", "echo"],
        vec!["rename", "echo.tap", "echo", "other"],
        vec!["add", "echo.tap", "echo", "--port", "tcp:7010"],
        vec!["edit", "echo.tap"],
        vec!["save", "discard", "--append", "echo.tap"],
    ] {
        let output = scratch.rtap(&args);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        assert_eq!(
            text(&output.stderr),
            held_line("echo.tap", daemon.pid()),
            "{args:?}"
        );
    }
    assert_eq!(std::fs::read(scratch.join("echo.tap")).unwrap(), before);
    scratch.rtap_ok(&["set", "echo.tap", "--force", "echo", "endpoint=tcp:7009"]);
    assert_ne!(std::fs::read(scratch.join("echo.tap")).unwrap(), before);
    daemon.stop();
    // Stopped: nothing holds it.
    scratch.rtap_ok(&["set", "echo.tap", "echo", "endpoint=tcp:7011"]);
}

#[test]
fn a_killed_daemon_holds_nothing() {
    let scratch = Scratch::new();
    let (daemon, _) = scratch.serve_saved("echo", &[]);
    daemon.kill();
    scratch.rtap_ok(&["set", "echo.tap", "echo", "endpoint=tcp:7012"]);
    let names = file_names(scratch.path());
    assert!(
        !names.iter().any(|name| name.contains(".held.")),
        "the dead daemon's mark is left: {names:?}"
    );
}

#[test]
fn a_resumed_run_holds_the_base_file_and_the_file_it_loaded() {
    let scratch = Scratch::new();
    let (first, _) = scratch.serve_saved("echo", &[]);
    first.stop();
    let mut daemon = scratch.spawn_rtwistd(&["-n", "--resume", "-f", "echo.tap"]);
    daemon.listening_address();
    for file in ["echo.tap", "echo-shutdown.tap"] {
        let output = scratch.rtap(&["set", file, "echo", "endpoint=tcp:7013"]);
        assert_eq!(text(&output.stderr), held_line(file, daemon.pid()));
    }
    daemon.stop();
}

#[test]
fn in_the_store_a_forced_edit_and_the_daemons_save_both_stay() {
    let scratch = Scratch::new();
    scratch.save_on_loopback("echo", &["--store", "db"]);
    let mut daemon = scratch.spawn_rtwistd(&["-n", "--store", "db", "-f", "echo"]);
    daemon.listening_address();
    let output = scratch.rtap(&["set", "echo", "--store", "db", "echo", "endpoint=tcp:7014"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        text(&output.stderr),
        format!(
            "rtap: error: cannot edit echo in the store: held by rtwistd PID {}, stop it or apply the change to the running daemon, or --force to edit anyway\n",
            daemon.pid()
        )
    );
    scratch.rtap_ok(&[
        "set",
        "echo",
        "--store",
        "db",
        "--force",
        "echo",
        "endpoint=tcp:7014",
    ]);
    let out = daemon.stop();
    assert!(
        out.iter().any(|l| l.contains(
            "echo@3 was saved from echo@1 while echo@2 was newer: it is kept, marked diverged, and nothing was reverted (compare them with rtap store diff echo@2 echo@3)"
        )),
        "{out:#?}"
    );
    let log = text(
        &scratch
            .rtap_ok(&["store", "log", "echo", "--store", "db"])
            .stdout,
    );
    let third = log.lines().find(|l| l.starts_with("echo@3")).unwrap();
    assert!(
        third.ends_with("(diverged: saved from echo@1 while echo@2 was newer)"),
        "{log}"
    );
    // The forced edit is still there.
    let doc = scratch.inspect_json_with(&["echo@2", "--store", "db"]);
    assert_eq!(
        doc["services"]["children"][0]["fields"]["endpoint"],
        "tcp:7014"
    );
    // And once the daemon is gone, edits need no force.
    scratch.rtap_ok(&["set", "echo", "--store", "db", "echo", "endpoint=tcp:7015"]);
}
